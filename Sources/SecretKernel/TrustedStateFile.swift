import BundleSeal
import Foundation
import SecretCore
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
        try checkFolder(of: path)
        // O_NONBLOCK: a FIFO put in its place must not hang the loader before it is refused.
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
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
        guard let bytes = FileBytes.read(descriptor, status) else { throw failure(path, "cannot be read whole") }
        do throws(BundleSealError) {
            return try TrustedHistory(parsing: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw failure(path, "is not a trusted-state file: \(error)")
        }
    }

    /// Replaces `path` with `history`: a new file (created exclusively, never
    /// through a link, mode 0600) in the same folder, flushed, renamed over it.
    static func write(_ history: TrustedHistory, to path: String) throws(SecretKernelError) {
        try checkFolder(of: path)
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

    /// Runs `body` holding an exclusive lock on `PATH.lock`, so that two
    /// loaders sharing the file never let an older bundle's history
    /// overwrite a newer one's (read, check, write happen under it).
    static func withLock<T>(_ path: String, _ body: () throws(SecretKernelError) -> T) throws(SecretKernelError) -> T {
        try checkFolder(of: path)
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0o600)
        guard descriptor >= 0 else {
            throw failure(lockPath, errno == ELOOP ? "is a symbolic link" : "cannot be opened (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw failure(lockPath, "is not a regular file")
        }
        // In a sticky folder another user may have made the lock file first
        // and hold it for ever: only this user's (or root's) is waited on,
        // and never without end.
        guard status.st_uid == geteuid() || status.st_uid == 0 else {
            throw failure(lockPath, "belongs to another user (uid \(status.st_uid)); remove it or choose another folder")
        }
        let deadline = Date().addingTimeInterval(lockWait)
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            guard reason == EWOULDBLOCK || reason == EINTR else { throw failure(lockPath, "cannot be locked") }
            guard Date() < deadline else {
                throw failure(lockPath, "has been held by another process for \(Int(lockWait)) s (another loader stuck?)")
            }
            usleep(10_000)
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    /// How long a loader waits for another to release the lock (seconds).
    static let lockWait: Double = 5

    /// The file's folder must be this user's (or root's) and writable by no
    /// one else, unless sticky (as /tmp): else another user could remove
    /// the state and have the next load trust whatever it is given.
    private static func checkFolder(of path: String) throws(SecretKernelError) {
        let folder = (path as NSString).deletingLastPathComponent
        var status = stat()
        guard stat(folder.isEmpty ? "." : folder, &status) == 0 else { throw failure(path, "is in a folder that cannot be examined") }
        guard status.st_uid == geteuid() || status.st_uid == 0 else {
            throw failure(path, "is in a folder that belongs to another user")
        }
        guard status.st_mode & 0o022 == 0 || status.st_mode & S_ISVTX != 0 else {
            throw failure(path, "is in a folder others may write (chmod go-w, or use a folder of your own)")
        }
    }

    private static func failure(_ path: String, _ reason: String) -> SecretKernelError {
        SecretKernelError(.misconfigured, "trusted-state file \(path) \(reason)")
    }
}
