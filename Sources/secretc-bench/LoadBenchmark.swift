import ArgumentParser
import BundleFormat
import BundleSeal
import CLinux
import Crypto
import Foundation
import GPG
import Logging
import SecretKernel
import Synchronization

/// The runtime: `SecretKernel` load of an N-slot bundle, lookup latency from
/// 8 threads, and the memory the loaded bundle holds.
struct LoadBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Time SecretKernel's load of an N-slot, one-epoch bundle and its lookups from 8 threads.")

    @Option(help: "Slots in the bundle (5 per user, one environment).") var slots = 100_000
    @Option(help: "Timed loads (the median is reported).") var runs = 5
    @Option(help: "Lookup threads.") var threads = 8
    @Option(help: "Lookups per thread.") var lookups = 200_000
    @Option(help: "Writes that filled the slots: 1, or a history of N epochs.") var epochs = 1
    @Flag(help: "Give the runtime key in the process (SECRETC_GPG_KEY), not in a GnuPG home.")
    var keyInProcess = false
    @Option(help: "Where generated data sets are kept between runs.") var cache = ".bench"
    @Flag(help: "Leave out the building blocks timed one after another (to profile the loads alone).")
    var skipBlocks = false
    @Option(help: "Also write the results to this JSON file.") var json: String?

    func run() throws {
        let large = try LargeBundle.prepare(slots: slots, epochs: epochs, cache: cache)
        defer { large.remove() }
        let phases = PhaseRecorder()
        let keySource: SecretKernel.KeySource =
            keyInProcess
            ? .armoredSecretKey(SecureBytes(Array(try Data(contentsOf: LargeBundle.exampleSecretKey("runtime-production")))))
            : .gnupgHome(large.runtimeHome.path)
        let configuration = SecretKernel.Configuration(
            bundle: .path(large.bundle.path), keys: keySource, trustedAdmins: [large.admin],
            fallbackEnvironment: [:], logger: Logger(label: "secretc.kernel") { _ in phases })
        secretc_release_free_memory()  // as the load does: only live memory counts on both sides
        let baseline = residentBytes()
        var kernel = try SecretKernel(configuration)  // warms gpg-agent and the page cache
        let loaded = residentBytes()
        var times: [Double] = []
        var cpu = (process: 0.0, gpg: 0.0)
        phases.clear()
        for _ in 0..<runs {
            var fresh: SecretKernel?
            let before = (CPUTime.process(), CPUTime.children())
            times.append(try Clock.time { fresh = try SecretKernel(configuration) })
            cpu.process += CPUTime.process() - before.0
            cpu.gpg += CPUTime.children() - before.1
            kernel = fresh!  // the previous kernel is freed here, outside the timed load
        }
        let keys = sampleKeys(large)
        let (p50, p99) = lookupLatency(kernel, keys)
        print("load-\(slots / 1000)k: \(kernel.info.slots) slots, \(kernel.info.values) values, \(kernel.info.epochs) epoch(s)")
        print("  SecretKernel load + verify (in-process)  median \(Clock.milliseconds(Clock.median(times)))  (target ≤ 250 ms)")
        print("  resident memory of the first load        \((loaded - baseline) / 1_048_576) MiB above baseline  (target ≤ 64 MiB)")
        print("  CPU time per load (mean)                 \(Clock.milliseconds(cpu.process / Double(runs))) in this process, "
            + "\(Clock.milliseconds(cpu.gpg / Double(runs))) in gpg and gpg-agent's other children")
        print("  lookup, \(threads) threads × \(lookups)            p50 \(p50) ns, p99 \(p99) ns  (targets ≤ 200 ns, ≤ 1000 ns)")
        withExtendedLifetime(kernel) {}
        try writeResults(
            ["load_ms": Clock.median(times) * 1000, "lookup_p50_ns": Double(p50), "lookup_p99_ns": Double(p99),
             "resident_mib": Double(loaded - baseline) / 1_048_576, "slots": Double(kernel.info.slots)],
            to: json)
        print("  a load's steps (medians, ms; \"checks\" runs the signatures, the lookup layout, the claim table, the digest, the names and gpg at once): " + phases.medians())
        if !skipBlocks, epochs == 1 { try printPhases(large) }  // the blocks run gpg once per epoch
    }

    /// Where a load's time goes, phase by phase, with the public building blocks.
    private func printPhases(_ large: LargeBundle) throws {
        let bytes = Array(try Data(contentsOf: large.bundle))
        var bundle: SecretBundle?
        let parse = try Clock.time { bundle = try SecretBundle(parsing: bytes) }
        var verified: BundleVerifier.Verified?
        let verify = try Clock.time { verified = try BundleVerifier(trustedAdmins: [large.admin]).verify(bundle!) }
        let policy = Clock.time { _ = bundle!.policyPayload() }
        let context = try Context(home: large.runtimeHome.path)
        var keys: [String: SymmetricKey] = [:]
        let dataKeys = try Clock.time { keys = try BundleOpener.dataKeys(verified!, with: context) }
        let open = try Clock.time {
            for slot in bundle!.slots {
                guard let sealed = slot.value else { continue }
                try BundleOpener.open(sealed, of: slot.slot, environment: bundle!.environment, key: keys[sealed.epoch]!) { _ in }
            }
        }
        print("  building blocks one after another (one thread): parse \(Clock.milliseconds(parse)), verify \(Clock.milliseconds(verify)) "
            + "(of which rendering the policy payload \(Clock.milliseconds(policy))), data keys \(Clock.milliseconds(dataKeys)), "
            + "open values \(Clock.milliseconds(open))")
    }

    /// Real slots of the bundle: users' own, deployment-wide, and a fallback.
    private func sampleKeys(_ large: LargeBundle) -> [(String, String, String?)] {
        let users = max(1, slots / 5)
        var generator = SystemRandomNumberGenerator()
        return (0..<4096).map { _ in
            let user = String(format: "u%05d", Int.random(in: 1...users, using: &generator))
            switch Int.random(in: 0..<5, using: &generator) {
            case 0: return ("shopify", "STORE_DOMAIN", user)
            case 1: return ("shopify", "ADMIN_TOKEN", user)
            case 2: return ("stripe", "SECRET_KEY", user)
            case 3: return ("github", "TOKEN", user)
            default: return ("github", "APP_ID", user)  // falls through to the deployment-wide slot
            }
        }
    }

    /// Times every lookup on its own (the clock reads are included), from
    /// `threads` threads of their own, all started before any looks up.
    /// (`concurrentPerform` would run the 8 lookers on as many threads as
    /// there are cores, a few after each other.)
    private func lookupLatency(_ kernel: SecretKernel, _ keys: [(String, String, String?)]) -> (Int, Int) {
        let perThread = lookups
        var samples = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: threads * perThread)
        defer { samples.deallocate() }
        nonisolated(unsafe) let shared = samples
        let misses = Atomic<Int>(0)
        let ready = Atomic<Int>(0)
        let count = threads
        let finished = DispatchGroup()
        for thread in 0..<threads {
            finished.enter()
            Thread.detachNewThread {
                defer { finished.leave() }
                ready.add(1, ordering: .sequentiallyConsistent)
                while ready.load(ordering: .sequentiallyConsistent) < count { sched_yield() }
                var index = thread * 7919
                for sample in 0..<perThread {
                    let (plugin, key, user) = keys[index & 4095]
                    index &+= 1
                    let start = DispatchTime.now().uptimeNanoseconds
                    let value = kernel.getSecret(plugin: plugin, key: key, for: SecretOwner(user: user))
                    let end = DispatchTime.now().uptimeNanoseconds
                    if value == nil { misses.add(1, ordering: .relaxed) }
                    shared[thread * perThread + sample] = end - start
                }
            }
        }
        finished.wait()
        precondition(misses.load(ordering: .relaxed) == 0, "a lookup of a set slot returned nil")
        samples.sort()
        print("  (reading the clock costs \(Self.clockOverhead()) ns; every lookup time includes one read)")
        return (Int(samples[samples.count / 2]), Int(samples[samples.count * 99 / 100]))
    }

    /// The median time between two back-to-back clock reads.
    private static func clockOverhead() -> UInt64 {
        var costs = (0..<10_001).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            return DispatchTime.now().uptimeNanoseconds - start
        }
        costs.sort()
        return costs[costs.count / 2]
    }

    private func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }
}

/// Keeps the step timings of each "secret bundle loaded" log line (the
/// kernel's `*_ms` metadata); prints nothing.
final class PhaseRecorder: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var runs: [[String: Double]] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.message.description == "secret bundle loaded", let given = event.metadata else { return }
        var steps: [String: Double] = [:]
        for (key, value) in given where key.hasSuffix("_ms") { steps[String(key.dropLast(3))] = Double(value.description) }
        lock.withLock { runs.append(steps) }
    }

    func clear() { lock.withLock { runs = [] } }

    /// Each step's median over the loads since ``clear()``, in load order.
    func medians() -> String {
        let runs = lock.withLock { self.runs }
        return ["read", "scan", "checks", "open", "build"].compactMap { step in
            let times = runs.compactMap { $0[step] }
            return times.isEmpty ? nil : "\(step) \(String(format: "%.1f", Clock.median(times)))"
        }.joined(separator: ", ")
    }
}

/// CPU time (user and system) spent so far, in seconds.
enum CPUTime {
    static func process() -> Double { seconds(RUSAGE_SELF) }
    /// Only children that were waited for: gpgme's gpg runs.
    static func children() -> Double { seconds(RUSAGE_CHILDREN) }

    private static func seconds(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        func value(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return value(usage.ru_utime) + value(usage.ru_stime)
    }
}
