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
        let users = max(1, slots / 5)
        let root = URL(fileURLWithPath: cache).appendingPathComponent("set-\(slots)")
        let config = root.appendingPathComponent("secretc.yaml")
        if !FileManager.default.fileExists(atPath: config.path) {
            print("generating \(users) users × 5 slots in one environment in \(root.path) …")
            try GenerateProject.generate(at: root, users: users, keyedUsers: 0, environments: 1)
        }
        // The example's EXAMPLE-ONLY admin and runtime keys sign and decrypt.
        let home = try TemporaryHome()
        defer { home.remove() }
        let context = try Context(home: home.path)
        for key in ["ops", "runtime-production"] {
            let url = GenerateProject.exampleRoot.appendingPathComponent("example-secret-keys/\(key).EXAMPLE-ONLY.asc")
            try context.importKeys(Array(try Data(contentsOf: url)))
        }
        setenv("GNUPGHOME", home.path, 1)

        let validation = ProjectValidator.load(config: config)
        guard let project = validation.project, !validation.log.hasErrors else { throw BenchFailure("project fails check") }
        let compiler = try Compiler(project: project, environment: "production", home: home.path)
        try? FileManager.default.removeItem(at: compiler.file.url)
        _ = try compiler.compile(as: "ops")
        let fill = try Clock.time { try fillAllSlots(compiler, context) }
        let size = (try? FileManager.default.attributesOfItem(atPath: compiler.file.url.path)[.size] as? Int) ?? 0

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
        print("set-1-of-\(slots / 1000)k: bundle \(size / 1_048_576) MiB, \(project.slots.count) slots")
        print("  fill all slots in one epoch (library)  \(Clock.milliseconds(fill))")
        print("  secretc compile (re-seal, process)     median \(Clock.milliseconds(Clock.median(compileTimes)))")
        print("  secretc set of one slot (process)      median \(Clock.milliseconds(Clock.median(processTimes)))")
        print("  Compiler.write of one slot (library)   median \(Clock.milliseconds(Clock.median(libraryTimes)))")
        print("  lines changed in the bundle by one set: \(changedLines)  (target ≤ 3)")
    }

    /// Seals a value into every declared slot, as one admin epoch.
    private func fillAllSlots(_ compiler: Compiler, _ context: Context) throws {
        guard var bundle = try compiler.file.load() else { throw BenchFailure("no bundle") }
        let recipients = try TemporaryHome()
        defer { recipients.remove() }
        let encryptor = try Context(home: recipients.path)
        try encryptor.importKeys(Array(try Data(contentsOf: GenerateProject.exampleRoot.appendingPathComponent("keys/runtime-production.asc"))))
        let changes = bundle.slots.map { line -> EpochSealer.Change in
            let value: String
            switch line.slot.key {
            case "STORE_DOMAIN": value = "fill.myshopify.com"
            case "ADMIN_TOKEN": value = "shpat_" + String(repeating: "a", count: 32)
            case "SECRET_KEY": value = "sk_live_" + String(repeating: "b", count: 24)
            case "WEBHOOK_SECRET": value = "whsec_" + String(repeating: "c", count: 32)
            case "APP_ID": value = "123456"
            default: value = "ghp_" + String(repeating: "d", count: 36)
            }
            return EpochSealer.Change(slot: line.slot, value: SecureBytes(value))
        }
        let (epoch, sealed) = try EpochSealer(environment: "production", writer: bundle.admins[0], recipients: bundle.recipients)
            .seal(changes, after: bundle.epochs, encryptor: encryptor, signer: context)
        bundle.epochs.append(epoch)
        for index in bundle.slots.indices { bundle.slots[index].value = sealed[bundle.slots[index].slot] ?? nil }
        try compiler.file.replace(with: bundle.serialized())
    }

    private func changed(_ before: Data, _ after: Data) -> Int {
        let old = Set(String(decoding: before, as: UTF8.self).split(separator: "\n"))
        let new = Set(String(decoding: after, as: UTF8.self).split(separator: "\n"))
        return old.symmetricDifference(new).count
    }
}
