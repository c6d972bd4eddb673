import ArgumentParser
import BundleFormat
import BundleSeal
import Crypto
import Foundation
import GPG
import SecretCompiler
import SecretModel

/// `set` of one slot into a large bundle, and `compile` (re-seal) of it.
struct SetBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Time `secretc set` of one slot in an N-slot bundle (cold and warm), and `secretc compile` of it.")

    @Option(help: "Slots in the bundle (5 per user, one environment).") var slots = 100_000
    @Option(help: "Timed runs of each kind (the median is reported).") var runs = 5
    @Option(help: "Timed runs of a warm set (cheap; this machine's noise needs more of them).") var warmRuns = 15
    @Option(help: "Where generated data sets are kept between runs.") var cache = ".bench"
    @Option(help: "Also write the medians (ms) as JSON to this file.") var json: String?

    func run() throws {
        let large = try LargeBundle.prepare(slots: slots, cache: cache)
        defer { large.remove() }
        // The write cache of these runs only, inherited by every secretc started.
        let writeCacheFolder = URL(fileURLWithPath: cache).appendingPathComponent("write-cache").standardizedFileURL
        setenv("SECRETC_CACHE_DIR", writeCacheFolder.path, 1)
        let writeCache = WriteCache(folder: writeCacheFolder)
        func clearWriteCache() { try? FileManager.default.removeItem(at: writeCacheFolder) }
        let config = large.config
        var compiler = large.compiler
        compiler.cache = writeCache
        let size = (try? FileManager.default.attributesOfItem(atPath: large.bundle.path)[.size] as? Int) ?? 0

        var compileTimes: [Double] = []
        for _ in 0..<max(1, runs / 2) {
            compileTimes.append(try Clock.time {
                guard try runQuietly(secretcExecutable, ["compile", "--reseal", "--config", config.path, "--env", "production"]) == 0
                else { throw BenchFailure("secretc compile failed") }
            })
        }
        var counter = 0
        func set(_ user: String) throws -> (seconds: Double, changedLines: Int) {
            counter += 1
            let before = try Data(contentsOf: compiler.file.url)
            let seconds = try Clock.time {
                guard try runQuietly(secretcExecutable, [
                    "set", "shopify", "--config", config.path, "--env", "production", "--user", user, "STORE_DOMAIN",
                ], input: Data("bench-\(counter).myshopify.com\n".utf8)) == 0 else { throw BenchFailure("secretc set failed") }
            }
            return (seconds, changed(before, try Data(contentsOf: compiler.file.url)))
        }
        // Cold: the first write after the declarations or the bundle changed
        // (a pull): it loads the project and verifies the whole bundle.
        var cold: [Double] = []
        for _ in 0..<runs {
            clearWriteCache()
            cold.append(try set("u00001").seconds)
        }
        // Warm: the write cache records the bundle as it is.
        var warm: [Double] = []
        var changedLines = 0
        for _ in 0..<warmRuns {
            let (seconds, lines) = try set("u00002")
            warm.append(seconds)
            changedLines = lines
        }
        var library: [Double] = []
        for run in 0..<runs {
            library.append(try Clock.time {
                _ = try compiler.write(
                    plugin: "shopify", user: "u00003", changes: [("STORE_DOMAIN", SecureBytes("lib-\(run).myshopify.com"))],
                    as: "ops")
            })
        }
        let phases = try warmPhases(large, writeCache)

        print("set-1-of-\(slots / 1000)k: bundle \(size / 1_048_576) MiB, \(large.project.slots.count) slots")
        if let fill = large.fillSeconds { print("  fill all slots in one epoch (library)   \(Clock.milliseconds(fill))") }
        print("  secretc compile (re-seal, process)      median \(Clock.milliseconds(Clock.median(compileTimes)))")
        print("  secretc set, cold (process)             median \(Clock.milliseconds(Clock.median(cold)))")
        print("  secretc set, warm (process)             median \(Clock.milliseconds(Clock.median(warm)))"
            + " (\(Clock.milliseconds(warm.min() ?? 0))–\(Clock.milliseconds(warm.max() ?? 0)))")
        print("  Compiler.write, cold (library)          median \(Clock.milliseconds(Clock.median(library)))")
        print("  a warm write, by phase (library, medians):")
        for (name, seconds) in phases { print("    \(name.padding(toLength: 46, withPad: " ", startingAt: 0)) \(Clock.milliseconds(seconds))") }
        print("  lines changed in the bundle by one set: \(changedLines)  (target ≤ 3)")
        var results = [
            "compile_ms": Clock.median(compileTimes) * 1000, "set_cold_ms": Clock.median(cold) * 1000,
            "set_warm_ms": Clock.median(warm) * 1000, "changed_lines": Double(changedLines),
        ]
        for (name, seconds) in phases { results["phase \(name) ms"] = seconds * 1000 }
        try writeResults(results, to: json)
    }

    /// A warm write step by step, each step timed on its own (medians of
    /// `runs`): what the process spends besides starting up.
    private func warmPhases(_ large: LargeBundle, _ writeCache: WriteCache) throws -> [(String, Double)] {
        var times: [String: [Double]] = [:]
        func time<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
            let start = DispatchTime.now().uptimeNanoseconds
            let value = try body()
            times[name, default: []].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            return value
        }
        for run in 0..<warmRuns {
            let entry = time("record: hash the project's files") { writeCache.entry(config: large.config) }
            guard entry != nil else { throw BenchFailure("the write cache has no entry for the project") }
            let bytes = time("read and digest the bundle") { BundleDigest.read(large.bundle.path)?.bytes ?? [] }
            if let written = entry?.written["production"] {
                _ = time("read it as the last write left it (no digest)") {
                    BundleFile(url: large.bundle).read(ifIdentity: written.identity)
                }
            }
            _ = try time("find the slot line") {
                try BundleSplice(bytes).slot(SlotKey(owner: "u00004", plugin: "shopify", key: "STORE_DOMAIN"))
            }
            // The data key, the signature and the file replacement, each alone
            // (in a write the data key is encrypted on another thread while the
            // project's files are hashed).
            guard let runtime = large.project.keys["runtime-production"], let subkey = runtime.info.encryptionSubkey,
                  let recipient = Cv25519Recipient(keyData: runtime.data, subkey: subkey)
            else { throw BenchFailure("the runtime key has no Curve25519 encryption subkey") }
            let dataKey = [UInt8](repeating: 7, count: 32)
            _ = try time("data key, in process (Curve25519 keys)") {
                try dataKey.withUnsafeBytes {
                    try Cv25519Encryptor(recipients: [runtime.info.fingerprint: recipient]).encrypt($0, to: [runtime.info.fingerprint])
                }
            }
            _ = try time("data key, gpg --encrypt (other keys)") { () throws -> [UInt8] in
                let encryptor = try KeyFileEncryptor(keys: [(runtime.info.fingerprint, runtime.data)])
                defer { encryptor.remove() }
                return try dataKey.withUnsafeBytes { try encryptor.encrypt($0, to: [runtime.info.fingerprint]) }
            }
            _ = try time("gpg: sign an epoch (one process, no look-up)") {
                try Context().signDetached(Array(repeating: UInt8(ascii: "a"), count: 300), as: large.admin)  // GNUPGHOME
            }
            let scratch = BundleFile(url: large.bundle.appendingPathExtension("phase"))
            let spare = writeCache.spare(for: scratch.url)
            _ = try time("write a new file, flush, rename (23 MiB)") { try scratch.replace(with: bytes) }
            try scratch.replace(with: bytes, spare: spare)  // keeps the file it replaces as the spare
            _ = try time("write over the spare, flush, rename") { try scratch.replace(with: bytes, spare: spare) }
            try? FileManager.default.removeItem(at: scratch.url)
            if let spare { try? FileManager.default.removeItem(at: spare) }
            let writer = try SlotWriter.cached(
                config: large.config, environment: "production", cache: writeCache, home: large.home.path)
            let report = try time("whole write (library)") {
                try writer?.write(
                    .upsert([("STORE_DOMAIN", SecureBytes("phase-\(run).myshopify.com"))]), plugin: "shopify", user: "u00004",
                    as: "ops")
            }
            guard report != nil else { throw BenchFailure("the warm write fell back to a full verification") }
        }
        let order = [
            "record: hash the project's files", "read and digest the bundle",
            "read it as the last write left it (no digest)", "find the slot line",
            "data key, in process (Curve25519 keys)", "data key, gpg --encrypt (other keys)",
            "gpg: sign an epoch (one process, no look-up)", "write a new file, flush, rename (23 MiB)",
            "write over the spare, flush, rename", "whole write (library)",
        ]
        return order.map { ($0, Clock.median(times[$0] ?? [])) }
    }

    private func changed(_ before: Data, _ after: Data) -> Int {
        let old = Set(String(decoding: before, as: UTF8.self).split(separator: "\n"))
        let new = Set(String(decoding: after, as: UTF8.self).split(separator: "\n"))
        return old.symmetricDifference(new).count
    }
}
