import ArgumentParser
import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretCompiler
import SecretModel

/// `set` of one slot into a large bundle, and `compile` (re-seal) of it.
struct SetBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Time `secretc set` of one slot in an N-slot bundle, and `secretc compile` of it.")

    @Option(help: "Slots in the bundle (5 per user, one environment).") var slots = 100_000
    @Option(help: "Timed runs of each kind (the median is reported).") var runs = 5
    @Option(help: "Where generated data sets are kept between runs.") var cache = ".bench"

    func run() throws {
        let large = try LargeBundle.prepare(slots: slots, cache: cache)
        defer { large.remove() }
        let config = large.config
        let compiler = large.compiler
        let size = (try? FileManager.default.attributesOfItem(atPath: large.bundle.path)[.size] as? Int) ?? 0

        var compileTimes: [Double] = []
        for _ in 0..<max(1, runs / 2) {
            compileTimes.append(try Clock.time {
                guard try runQuietly(secretcExecutable, ["compile", "--config", config.path, "--env", "production"]) == 0
                else { throw BenchFailure("secretc compile failed") }
            })
        }
        var processTimes: [Double] = []
        var libraryTimes: [Double] = []
        var changedLines = 0
        for run in 0..<runs {
            let before = try Data(contentsOf: compiler.file.url)
            processTimes.append(try Clock.time {
                guard try runQuietly(secretcExecutable, [
                    "set", "shopify", "--config", config.path, "--env", "production", "--user", "u00001",
                    "STORE_DOMAIN=bench-\(run).myshopify.com",
                ]) == 0 else { throw BenchFailure("secretc set failed") }
            })
            let after = try Data(contentsOf: compiler.file.url)
            changedLines = changed(before, after)
            libraryTimes.append(try Clock.time {
                _ = try compiler.write(
                    plugin: "shopify", user: "u00002", changes: [("STORE_DOMAIN", SecureBytes("lib-\(run).myshopify.com"))],
                    as: "ops")
            })
        }
        print("set-1-of-\(slots / 1000)k: bundle \(size / 1_048_576) MiB, \(large.project.slots.count) slots")
        if let fill = large.fillSeconds { print("  fill all slots in one epoch (library)  \(Clock.milliseconds(fill))") }
        print("  secretc compile (re-seal, process)     median \(Clock.milliseconds(Clock.median(compileTimes)))")
        print("  secretc set of one slot (process)      median \(Clock.milliseconds(Clock.median(processTimes)))")
        print("  Compiler.write of one slot (library)   median \(Clock.milliseconds(Clock.median(libraryTimes)))")
        print("  lines changed in the bundle by one set: \(changedLines)  (target ≤ 3)")
    }

    private func changed(_ before: Data, _ after: Data) -> Int {
        let old = Set(String(decoding: before, as: UTF8.self).split(separator: "\n"))
        let new = Set(String(decoding: after, as: UTF8.self).split(separator: "\n"))
        return old.symmetricDifference(new).count
    }
}
