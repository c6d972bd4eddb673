import Foundation
import Logging
import SecretCore
import SecretKernel
import ServiceLifecycle
import UnixSignals

/// A ``SecretKernel`` as a swift-service-lifecycle `Service`: while it runs,
/// the bundle is reloaded when its file changes and on `SIGHUP`; it returns
/// when the service group shuts down gracefully.
///
/// ```swift
/// let kernel = try await SecretKernel.load(configuration)
/// let group = ServiceGroup(
///     services: [SecretKernelService(kernel: kernel), httpServer],
///     gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
///
/// A change is seen by the file's identity — device, inode, size and
/// modification and change times of what the path resolves to — checked
/// every `pollInterval`. That follows an atomic rename over the bundle (a
/// `git pull`, `secretc set`) and Kubernetes' ConfigMap update (the mounted
/// path is a symbolic link through `..data`, which the kubelet swaps) alike,
/// on any file system; a `stat` a second costs nothing a service notices.
/// A reload that fails keeps the bundle in service; the kernel logs it at
/// error and counts it (``SecretKernel/Info/reloadFailures``).
public struct SecretKernelService: Service {
    public let kernel: SecretKernel
    /// How often the bundle file's identity is checked.
    public var pollInterval: Duration
    /// Whether `SIGHUP` reloads too (on by default, as for most daemons).
    public var reloadsOnHangup: Bool

    public init(kernel: SecretKernel, pollInterval: Duration = .seconds(1), reloadsOnHangup: Bool = true) {
        self.kernel = kernel
        self.pollInterval = pollInterval
        self.reloadsOnHangup = reloadsOnHangup
    }

    public func run() async throws {
        guard case .path(let path) = kernel.configuration.bundle else {
            kernel.configuration.logger.info("secret bundle given as bytes: nothing to watch")
            try? await gracefulShutdown()
            return
        }
        let reloader = Reloader(kernel: kernel, path: path)
        // The file may have changed between the kernel's load and now.
        if !kernel.isServing(contentsOf: path) { await reloader.reload(because: "the bundle file changed before the watch began") }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Polls until the group is told to shut down.
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    do { try await Task.sleep(for: pollInterval) } catch { return }
                    if reloader.changed() { await reloader.reload(because: "the bundle file changed") }
                }
            }
            if reloadsOnHangup {
                group.addTask {
                    for await _ in await UnixSignalsSequence(trapping: .sighup) {
                        await reloader.reload(because: "SIGHUP")
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}

/// Reloads one at a time, remembering the identity of the file last loaded.
private final class Reloader: @unchecked Sendable {
    let kernel: SecretKernel
    let path: String
    private let lock = NSLock()
    private var loaded: FileIdentity?

    init(kernel: SecretKernel, path: String) {
        self.kernel = kernel
        self.path = path
        loaded = FileIdentity(atPath: path)
    }

    /// Whether the path now resolves to another file, or the file changed.
    func changed() -> Bool {
        let now = FileIdentity(atPath: path)
        return lock.withLock { now != nil && now != loaded }
    }

    func reload(because reason: String) async {
        let seen = FileIdentity(atPath: path)
        do {
            try await kernel.reload()
        } catch {
            // The kernel logged and counted it; the bundle in service stays.
        }
        // A bad file is not retried until it changes again.
        lock.withLock { loaded = seen }
        kernel.configuration.logger.debug("secret bundle reload attempted", metadata: ["reason": "\(reason)"])
    }
}
