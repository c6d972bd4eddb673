import BundleFormat
import Foundation
import SecretKernel
import Synchronization
import SecretKernelService
import ServiceLifecycleTestKit
import TestSupport
import Testing

/// The kernel as a service: it follows the bundle file as Kubernetes and
/// git change it, keeps serving through a bad bundle, and shuts down when
/// the service group does.
@Suite("SecretKernelService: reloads on change")
struct ServiceTests {
    /// A ConfigMap volume as the kubelet lays it out: the file is a link
    /// through `..data`, which points at a timestamped folder; an update
    /// writes a new folder and renames a new `..data` link over the old.
    private struct ConfigMapVolume {
        let root: URL
        var generation = 0
        var bundle: String { root.appendingPathComponent("production.bundle").path }

        init(_ root: URL, _ bytes: [UInt8]) throws {
            self.root = root
            try publish(bytes)
            try FileManager.default.createSymbolicLink(atPath: bundle, withDestinationPath: "..data/production.bundle")
        }

        mutating func publish(_ bytes: [UInt8]) throws {
            generation += 1
            let folder = root.appendingPathComponent("..2026_12_07_\(generation)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try Data(bytes).write(to: folder.appendingPathComponent("production.bundle"))
            let staged = root.appendingPathComponent("..data_tmp").path
            try FileManager.default.createSymbolicLink(atPath: staged, withDestinationPath: folder.lastPathComponent)
            guard rename(staged, root.appendingPathComponent("..data").path) == 0 else { throw TestSupportError("rename failed") }
        }
    }

    /// Waits for `condition`, up to a minute: the whole suite runs blocking
    /// tests on the same few threads the service's polling task needs.
    private func eventually(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(condition())
    }

    @Test func followsConfigMapSwapsAndRenamesAndKeepsServingThroughABadBundle() async throws {
        let fixture = try KernelFixture()
        let scratch = try TemporaryDirectory()
        var volume = try ConfigMapVolume(scratch.url, fixture.bytes)
        let appID = SlotKey(owner: nil, plugin: "github", key: "APP_ID")
        let logs = CapturedLogs()
        let kernel = try await SecretKernel.load(fixture.configuration(.path(volume.bundle), logger: logs.logger))
        #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "123456")
        let service = SecretKernelService(kernel: kernel, pollInterval: .milliseconds(20), reloadsOnHangup: false)

        try await testGracefulShutdown { shutdown in
            async let running: Void = service.run()
            // kubectl apply of a new bundle: the kubelet swaps ..data.
            let rotated = try fixture.written([appID: "654321"])
            try volume.publish(rotated)
            try await eventually { kernel.info.reloads == 1 }
            #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "654321",
                    "\(logs.all.filter { !$0.hasPrefix("debug") })")

            // A bad bundle pushed: refused, counted, and the good one keeps serving.
            try volume.publish(Array(rotated.dropLast(7)))
            try await eventually { kernel.info.reloadFailures == 1 }
            #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "654321")
            // An older bundle (a rollback) is refused the same way.
            try volume.publish(fixture.bytes)
            try await eventually { kernel.info.reloadFailures == 2 }
            #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "654321")

            // A plain atomic rename over the file (git, secretc set).
            let direct = scratch.url.appendingPathComponent("direct.bundle").path
            try Data(try fixture.written([appID: "777777"], onto: rotated)).write(to: URL(fileURLWithPath: direct + ".tmp"))
            try FileManager.default.removeItem(atPath: volume.bundle)
            #expect(rename(direct + ".tmp", volume.bundle) == 0)
            try await eventually { kernel.info.reloads == 2 }
            #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "777777")

            shutdown.triggerGracefulShutdown()
            try await running
        }
    }

    /// The example service in --serve mode, as a process: SIGHUP reloads,
    /// a ConfigMap swap reloads, SIGTERM stops it cleanly.
    @Test func theExampleServiceReloadsOnHangupAndStopsOnTerm() async throws {
        let fixture = try KernelFixture()
        let scratch = try TemporaryDirectory()
        var volume = try ConfigMapVolume(scratch.url, fixture.bytes)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Secretc.built("gridos-service"))
        process.arguments = ["--serve", volume.bundle]
        process.environment = [
            "SECRETC_TRUSTED_ADMINS": KernelFixture.admin, "GNUPGHOME": fixture.home.path,
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let text = Mutex<String>("")
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            text.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        func count(_ needle: String) -> Int { text.withLock { $0.components(separatedBy: needle).count - 1 } }
        try await eventually { count("serving;") == 1 }
        try await Task.sleep(for: .milliseconds(200))  // the signal handlers are installed as the group starts

        kill(process.processIdentifier, SIGHUP)
        try await eventually { count("secret bundle reloaded") == 1 }
        try volume.publish(try fixture.written([SlotKey(owner: nil, plugin: "github", key: "APP_ID"): "654321"]))
        try await eventually { count("secret bundle reloaded") == 2 }

        kill(process.processIdentifier, SIGTERM)
        try await eventually { !process.isRunning }
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text.withLock { $0 })")
        #expect(count("stopped: 2 reloads, 0 refused") == 1, "\(text.withLock { $0 })")
        #expect(!text.withLock { $0 }.contains("654321"), "no value in the service's output")
    }

    /// The async forms run off the cooperative threads and behave as the blocking ones.
    @Test func asyncLoadAndReload() async throws {
        let fixture = try KernelFixture()
        let kernel = try await SecretKernel.load(fixture.configuration())
        try await kernel.reload()
        await #expect(throws: SecretKernelError.self) { try await kernel.reload(bytes: Array("secretc-bundle 2\n".utf8)) }
        #expect(kernel.info.reloads == 1 && kernel.info.reloadFailures == 1)
    }
}
