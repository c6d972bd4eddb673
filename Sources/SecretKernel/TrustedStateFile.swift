import BundleSeal
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The trusted-state file: the history of the last bundle a loader served
/// (``TrustedHistory/text``), so that after a restart it still refuses a
/// bundle that does not extend it — as TUF clients keep their last trusted
/// metadata. Read and written as ssh and git treat such files: never through
/// a symbolic link, never when others may write it, replaced atomically.
enum TrustedStateFile {
    /// Large enough for a history of a million writes.
    static let maximumSize = 256 << 20

    /// The history in `path`, or nil when there is no file yet (first use).
    static func read(_ path: String) throws(SecretKernelError) -> TrustedHistory? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT { return nil }
            throw failure(path, errno == ELOOP ? "is a symbolic link" : "cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw failure(path, "is not a regular file")
        }
        guard status.st_mode & 0o022 == 0 else { throw failure(path, "may be written by others (chmod go-w)") }
        guard status.st_uid == getuid() || status.st_uid == 0 else { throw failure(path, "belongs to another user") }
        guard Int(status.st_size) <= maximumSize else { throw failure(path, "is larger than \(maximumSize) bytes") }
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw failure(path, "cannot be read whole") }
            filled += count
        }
        do throws(BundleSealError) {
            return try TrustedHistory(parsing: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw failure(path, "is not a trusted-state file: \(error)")
        }
    }

    /// Replaces `path` with `history`: a new file (created exclusively, never
    /// through a link, mode 0600) in the same folder, flushed, renamed over it.
    static func write(_ history: TrustedHistory, to path: String) throws(SecretKernelError) {
        let folder = (path as NSString).deletingLastPathComponent
        let temporary = (folder.isEmpty ? "." : folder) + "/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure(path, "cannot be written (\(String(cString: strerror(errno))))") }
        var written = false
        defer {
            close(descriptor)
            if !written { unlink(temporary) }
        }
        let bytes = Array(history.text.utf8)
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw failure(path, "cannot be written (\(String(cString: strerror(errno))))") }
            done += count
        }
        guard fsync(descriptor) == 0, rename(temporary, path) == 0 else {
            throw failure(path, "cannot be replaced (\(String(cString: strerror(errno))))")
        }
        written = true
        let directory = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }

    private static func failure(_ path: String, _ reason: String) -> SecretKernelError {
        SecretKernelError(.misconfigured, "trusted-state file \(path) \(reason)")
    }
}
