import Dispatch
import Foundation
import Synchronization

/// Reading whole files for the compiler and the runtime loader alike.
public enum FileBytes {
    /// A whole file, read straight into one array (no intermediate `Data`:
    /// bundles run to tens of megabytes); nil when it cannot be read.
    ///
    /// A file written over while it is read (its change time moves) is read
    /// again: a writer may write over an old version of a bundle, one that a
    /// reader opened before it was replaced.
    public static func read(atPath path: String) -> [UInt8]? {
        for _ in 0..<3 {
            // O_NONBLOCK: a FIFO in a file's place would otherwise block the
            // open until a writer came (a hung `get`, a stalled reloader); it
            // is refused below as not a regular file. Reads of a regular
            // file do not see the flag.
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var before = stat()
            guard fstat(fd, &before) == 0, (before.st_mode & S_IFMT) == S_IFREG else { return nil }
            let bytes = read(fd, before)
            var after = stat()
            guard fstat(fd, &after) == 0 else { return nil }
            if after.st_ctim.tv_sec == before.st_ctim.tv_sec, after.st_ctim.tv_nsec == before.st_ctim.tv_nsec { return bytes }
        }
        return nil
    }

    /// The whole regular file `fd`, whose status is `info` (for a caller that
    /// opened and checked it itself); nil when it cannot be read.
    public static func read(_ fd: Int32, _ info: stat) -> [UInt8]? {
        // A large file is read in parallel (the kernel's copy, and the
        // faults of fresh pages, then run on every core), as long as it ends
        // where it did when it was opened.
        if info.st_size >= 4 << 20, let bytes = read(fd, count: Int(info.st_size), chunkSize: 1 << 20, each: { _, _ in }) {
            var extra: UInt8 = 0
            if pread(fd, &extra, 1, off_t(info.st_size)) == 0 { return bytes }
        }
        var bytes = [UInt8](repeating: 0, count: 0)
        var capacity = Int(info.st_size) + 1  // one more, to see the end of a file that grew
        while true {
            var failed = false
            bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
                count = 0
                while count < capacity {
                    let got = Foundation.read(fd, buffer.baseAddress! + count, capacity - count)
                    if got < 0, errno == EINTR { continue }
                    if got < 0 { failed = true }
                    if got <= 0 { break }
                    count += got
                }
            }
            guard !failed else { return nil }
            if bytes.count < capacity { return bytes }
            // The file grew while being read: start over, with room for more.
            guard lseek(fd, 0, SEEK_SET) == 0 else { return nil }
            capacity *= 2
        }
    }

    /// The first `count` bytes of `fd`, read in chunks of `chunkSize` on
    /// every core; `each` sees every chunk (its index and bytes) as soon as
    /// it is read. nil when any chunk cannot be read whole.
    public static func read(
        _ fd: Int32, count: Int, chunkSize: Int, each: @Sendable (Int, UnsafeRawBufferPointer) -> Void
    ) -> [UInt8]? {
        let failures = Atomic<Int>(0)
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            nonisolated(unsafe) let buffer = buffer
            adviseHugePages(UnsafeMutableRawBufferPointer(buffer))
            DispatchQueue.concurrentPerform(iterations: (count + chunkSize - 1) / chunkSize) { chunk in
                let start = chunk * chunkSize, length = min(count - start, chunkSize)
                var done = 0
                while done < length {
                    let got = pread(fd, buffer.baseAddress! + start + done, length - done, off_t(start + done))
                    if got < 0, errno == EINTR { continue }
                    guard got > 0 else { break }
                    done += got
                }
                guard done == length else {
                    failures.add(1, ordering: .relaxed)
                    return
                }
                each(chunk, UnsafeRawBufferPointer(start: buffer.baseAddress! + start, count: length))
            }
            initialized = failures.load(ordering: .relaxed) == 0 ? count : 0
        }
        return bytes.count == count ? bytes : nil
    }
}
