import BundleFormat
import CLinux
import Foundation
import SecretCore
import Synchronization

/// Reading and atomically replacing a bundle file, under an exclusive lock.
public struct BundleFile: Sendable {
    public let url: URL

    public init(url: URL) { self.url = url }

    public var displayPath: String {
        let path = url.standardizedFileURL.path
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: url.path) }

    /// The file's bytes, or nil when it does not exist.
    public func read() throws(CompilerError) -> [UInt8]? {
        guard exists else { return nil }
        guard let bytes = FileBytes.read(atPath: url.path) else { throw CompilerError(.unavailable, "cannot read \(displayPath)") }
        return bytes
    }

    /// The file's bytes and their ``BundleDigest``, read and hashed together;
    /// nil when it does not exist.
    func readDigested() throws(CompilerError) -> (bytes: [UInt8], digest: BundleDigest)? {
        guard exists else { return nil }
        if let read = BundleDigest.read(url.path) { return read }
        // Changed while being read (by something that does not take the lock): read it whole.
        guard let bytes = try read() else { return nil }
        return (bytes, BundleDigest(bytes))
    }

    /// Parses the file; nil when it does not exist.
    public func load() throws(CompilerError) -> SecretBundle? {
        guard let bytes = try read() else { return nil }
        return try formatted { () throws(BundleFormatError) in try SecretBundle(parsing: bytes) }
    }

    /// Runs `body`, which reads this file's bytes, naming its format errors after the file.
    func formatted<T>(_ body: () throws(BundleFormatError) -> T) throws(CompilerError) -> T {
        do throws(BundleFormatError) {
            return try body()
        } catch {
            throw CompilerError(.invalidInput, "\(displayPath): \(error)")
        }
    }

    /// Runs `body` holding an exclusive lock on `<bundle>.lock`, so two writers
    /// never lose each other's update (the second waits, then re-reads).
    public func withLock<T>(_ body: () throws(CompilerError) -> T) throws(CompilerError) -> T {
        let lockPath = url.path + ".lock"
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw CompilerError(.unavailable, "cannot create \(url.deletingLastPathComponent().path)")
        }
        // Never through a symbolic link someone left in its place.
        let fd = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let why = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
            throw CompilerError(.unavailable, "cannot open \(lockPath): \(why)")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw CompilerError(.unavailable, "cannot lock \(lockPath): it is not a regular file")
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw CompilerError(.unavailable, "cannot lock \(lockPath)") }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// The file's bytes when it is still the version `identity` names; nil
    /// when it is not (or cannot be read).
    public func read(ifIdentity identity: FileIdentity) -> [UInt8]? {
        let readOnly: @Sendable (Int, UnsafeRawBufferPointer) -> Void = { _, _ in }
        return Self.readChunked(url.path) { $0 == identity ? readOnly : nil }?.bytes
    }

    /// True when the file at the path is still the version `identity` names.
    public func isStill(_ identity: FileIdentity) -> Bool { FileIdentity(atPath: url.path) == identity }

    /// Reads the regular file at `path` whole, one ``BundleDigest/chunkSize``
    /// chunk per task on every core (the first touch of each page of a new
    /// array costs as much as the copy), into an array that is not zeroed
    /// first. `handler` sees the file's identity before anything is read
    /// and returns what to do with each chunk as it is read, or nil to read
    /// nothing. Nil when the file cannot be read, is refused, or changes
    /// meanwhile (which changes its identity).
    static func readChunked(
        _ path: String, handler: (FileIdentity) -> (@Sendable (Int, UnsafeRawBufferPointer) -> Void)?
    ) -> (bytes: [UInt8], identity: FileIdentity)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var before = stat()
        guard fstat(fd, &before) == 0, (before.st_mode & S_IFMT) == S_IFREG else { return nil }
        let identity = FileIdentity(before)
        guard let each = handler(identity) else { return nil }
        guard let bytes = FileBytes.read(fd, count: identity.size, chunkSize: BundleDigest.chunkSize, each: each) else { return nil }
        var after = stat()
        guard fstat(fd, &after) == 0, FileIdentity(after) == identity else { return nil }
        return (bytes, identity)
    }

    /// Replaces the file atomically: a temporary file in the same folder,
    /// flushed to disk, renamed over the bundle, and the folder flushed.
    @discardableResult
    public func replace(with bytes: [UInt8], spare: URL? = nil) throws(CompilerError) -> FileIdentity? {
        try replace(with: [bytes[...]], spare: spare)
    }

    /// How much is written before its write-back to disk is started.
    static let writeBackStep = 4 << 20

    /// ``replace(with:spare:)`` with the new contents given as pieces, written in order.
    ///
    /// - Parameter spare: where the version being replaced is kept (hard
    ///   linked: nothing is copied) for the next replacement to write over,
    ///   when it is on the same file system. Writing over a file's blocks
    ///   costs less than half of what a new file's does (no blocks to
    ///   allocate, none of the old file's to free and discard), and the
    ///   kept version is written whole and flushed before the rename, so
    ///   the replacement is exactly as atomic. A spare is only written
    ///   over when it is a regular file of this user with no other name.
    /// - Returns: the identity of the file written, taken from its own
    ///   descriptor after the rename (nil when it cannot be had).
    @discardableResult
    public func replace(with pieces: [ArraySlice<UInt8>], spare: URL? = nil) throws(CompilerError) -> FileIdentity? {
        let folder = url.deletingLastPathComponent()
        // The bundle keeps its permissions (a new one: 0644), as `sed -i` and git keep a file's.
        var current = stat()
        let mode = lstat(url.path, &current) == 0 && current.st_mode & S_IFMT == S_IFREG ? current.st_mode & 0o7777 : 0o644
        if let spare, let fd = Self.openSpare(spare.path) {
            defer { close(fd) }
            if fchmod(fd, mode) == 0, Self.write(pieces, to: fd),
               let identity = try install(fd, from: spare.path, keeping: spare.path)
            {
                return identity
            }
            // Not written, or not movable here (another file system): a new file instead.
        }
        // A new file with a name no one can guess, never through a link: a
        // symbolic link left at a predictable name would have been followed.
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UInt64.random(in: 0...UInt64.max)).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CompilerError(.unavailable, "cannot write \(temporary.path)") }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else {
            unlink(temporary.path)
            throw CompilerError(.unavailable, "cannot write \(temporary.path)")
        }
        guard Self.write(pieces, to: fd), let identity = try install(fd, from: temporary.path, keeping: spare?.path) else {
            unlink(temporary.path)
            throw CompilerError(.unavailable, "cannot replace \(displayPath): \(String(cString: strerror(errno)))")
        }
        return identity
    }

    /// Writes `pieces` from the start of `fd`, cuts the file there and
    /// flushes it to disk; false when any of that fails.
    private static func write(_ pieces: [ArraySlice<UInt8>], to fd: Int32) -> Bool {
        var flushed = 0
        var total = 0
        let ok = pieces.allSatisfy { piece in
            piece.withUnsafeBytes { buffer -> Bool in
                var offset = 0
                while offset < buffer.count {
                    let written = pwrite(fd, buffer.baseAddress! + offset, buffer.count - offset, off_t(total + offset))
                    if written < 0, errno == EINTR { continue }
                    if written <= 0 { return false }
                    offset += written
                }
                total += buffer.count
                // Start writing back what is written so far, so that the
                // flush below waits for less (Linux only).
                if total - flushed >= writeBackStep {
                    _ = secretc_start_write_back(fd, Int64(flushed), Int64(total - flushed))
                    flushed = total
                }
                return true
            }
        }
        return ok && ftruncate(fd, off_t(total)) == 0 && fsync(fd) == 0
    }

    /// Renames the flushed file `fd` at `path` over the bundle, first
    /// linking the version it replaces as `keeping` (when given and
    /// possible), and flushes the folder. Nil when `path` cannot be renamed
    /// to the bundle because it is on another file system; throws on other failures.
    private func install(_ fd: Int32, from path: String, keeping: String?) throws(CompilerError) -> FileIdentity? {
        let next = keeping.map { $0 + ".next" }
        var linked = false
        if let next {
            unlink(next)
            linked = link(url.path, next) == 0
        }
        guard rename(path, url.path) == 0 else {
            let failure = errno
            if let next, linked { unlink(next) }
            if failure == EXDEV { return nil }
            throw CompilerError(.unavailable, "cannot replace \(displayPath): \(String(cString: strerror(failure)))")
        }
        if linked, let next, let keeping {
            // The kept version is no one's bundle any more: only its owner reads it.
            if rename(next, keeping) == 0 { chmod(keeping, 0o600) } else { unlink(next) }
        }
        let directory = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
        // Of the file this wrote, whatever has happened to its path since
        // (the rename itself changed its ctime).
        var info = stat()
        return fstat(fd, &info) == 0 ? FileIdentity(info) : nil
    }

    /// The spare at `path` opened for writing over, when it is a regular
    /// file of this user that no other name (a bundle, a copy someone made
    /// with `cp -l`) shares; nil otherwise.
    private static func openSpare(_ path: String) -> Int32? {
        let fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink == 1, info.st_uid == geteuid() else {
            close(fd)
            return nil
        }
        return fd
    }
}
