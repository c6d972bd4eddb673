import ArgumentParser
import Foundation
import SecretModel

/// `check` of a generated project, in-process and as a whole `secretc check`.
struct CheckBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Time `secretc check` on N users × 3 plugins (target: at most 1 s for 10,000).")

    @Option(help: "Number of users.") var users = 10_000
    @Option(help: "How many users have their own key.") var keyedUsers = 1_000
    @Option(help: "Timed runs of each kind (the median is reported).") var runs = 5
    @Option(help: "Where generated data sets are kept between runs.") var cache = ".bench"
    @Option(help: "Also write the results to this JSON file.") var json: String?

    func run() throws {
        let root = URL(fileURLWithPath: cache).appendingPathComponent("check-\(users)-\(keyedUsers)")
        let config = root.appendingPathComponent("secretc.yaml")
        if !FileManager.default.fileExists(atPath: config.path) {
            print("generating \(users) users × 3 plugins (\(keyedUsers) with keys) in \(root.path) …")
            try GenerateProject.generate(at: root, users: users, keyedUsers: keyedUsers)
        }
        let warm = ProjectValidator.load(config: config)
        guard let project = warm.project, !warm.log.hasErrors else {
            throw BenchFailure("the generated project does not pass check: \(warm.log.sorted().prefix(3))")
        }
        var inProcess: [Double] = []
        var wholeProcess: [Double] = []
        for _ in 0..<runs {
            inProcess.append(Clock.time { _ = ProjectValidator.load(config: config) })
            var status: Int32 = 0
            wholeProcess.append(try Clock.time { status = try runQuietly(secretcExecutable, ["check", "--config", config.path]) })
            guard status == 0 else { throw BenchFailure("secretc check exited \(status)") }
        }
        print("check-\(users / 1000)k-users: \(project.slots.count) slots, \(project.keys.count) keys")
        print("  in-process load + validate  median \(Clock.milliseconds(Clock.median(inProcess)))")
        print("  secretc check (process)     median \(Clock.milliseconds(Clock.median(wholeProcess)))  (target ≤ 1000 ms)")
        try writeResults(
            ["check_ms": Clock.median(wholeProcess) * 1000, "in_process_ms": Clock.median(inProcess) * 1000], to: json)
    }
}
