import BundleFormat
import CLinux
import Foundation
import SecretCore

/// Reading and atomically replacing a bundle file, under an exclusive lock.
public struct BundleFile {
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
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CompilerError(.unavailable, "cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw CompilerError(.unavailable, "cannot lock \(lockPath)") }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// Replaces the file atomically: a temporary file in the same folder,
    /// flushed to disk, renamed over the bundle, and the folder flushed.
    public func replace(with bytes: [UInt8]) throws(CompilerError) {
        try replace(with: [bytes[...]])
    }

    /// How much is written before its write-back to disk is started.
    static let writeBackStep = 4 << 20

    /// ``replace(with:)`` with the new contents given as pieces, written in order.
    public func replace(with pieces: [ArraySlice<UInt8>]) throws(CompilerError) {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CompilerError(.unavailable, "cannot write \(temporary.path)") }
        var flushed = 0
        var total = 0
        var ok = pieces.allSatisfy { piece in
            piece.withUnsafeBytes { buffer -> Bool in
                var offset = 0
                while offset < buffer.count {
                    let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                    if written < 0, errno == EINTR { continue }
                    if written <= 0 { return false }
                    offset += written
                }
                total += buffer.count
                // Start writing back what is written so far, so that the
                // flush below waits for less (Linux only).
                if total - flushed >= Self.writeBackStep {
                    _ = secretc_start_write_back(fd, Int64(flushed), Int64(total - flushed))
                    flushed = total
                }
                return true
            }
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary.path, url.path) == 0 else {
            unlink(temporary.path)
            throw CompilerError(.unavailable, "cannot replace \(displayPath): \(String(cString: strerror(errno)))")
        }
        let directory = open(folder.path, O_RDONLY | O_DIRECTORY)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}
