import Foundation

/// A private GnuPG home with a short path under `/tmp`, for work that must not
/// touch the user's keyring (listing a project's keys, importing a runtime key).
/// ``remove()`` stops its agent and deletes it; `deinit` does the same.
public final class TemporaryHome: @unchecked Sendable {
    public let path: String
    private let lock = NSLock()
    private var removed = false

    /// Creates `<parent>/secretc.XXXXXX` with mode 0700.
    /// - Parameters:
    ///   - configuration: lines for the home's `gpg.conf`, if any.
    ///   - publicKeysOnly: the home will only verify, encrypt or list keys, so
    ///     gpg must not start an agent for it (starting and stopping one costs
    ///     tens of milliseconds, more than the work itself).
    ///   - parent: a folder with a short path (agent sockets live in the home).
    public init(configuration: [String] = [], publicKeysOnly: Bool = false, in parent: String = "/tmp") throws {
        let configuration = publicKeysOnly ? ["no-autostart"] + configuration : configuration
        var template = Array("\(parent)/secretc.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw GPGError.engineUnavailable(
                "cannot create a temporary GnuPG home in \(parent): \(String(cString: strerror(errno)))")
        }
        path = String(cString: made)
        if !configuration.isEmpty {
            let text = configuration.joined(separator: "\n") + "\n"
            guard FileManager.default.createFile(atPath: path + "/gpg.conf", contents: Data(text.utf8)) else {
                throw GPGError.engineUnavailable("cannot write gpg.conf in the temporary GnuPG home \(path)")
            }
        }
    }

    deinit { remove() }

    /// Stops the home's gpg-agent, if one was started, and deletes the folder.
    public func remove() {
        lock.lock()
        defer { lock.unlock() }
        guard !removed else { return }
        removed = true
        let agentSocket = path + "/S.gpg-agent"
        if FileManager.default.fileExists(atPath: agentSocket) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["gpgconf", "--homedir", path, "--kill", "all"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            if (try? process.run()) != nil { process.waitUntilExit() }
        }
        // An agent told to stop removes its sockets as it exits, which may
        // be while the folder is being removed: a removal that meets a file
        // already gone fails part way, so try again until the folder is gone.
        for attempt in 0..<20 {  // at most ~0.2 s, should something in it never go
            if (try? FileManager.default.removeItem(atPath: path)) != nil { return }
            guard FileManager.default.fileExists(atPath: path) else { return }
            if attempt > 0 { usleep(10_000) }
        }
    }
}
