import Foundation

/// Reading whole files for the compiler and the runtime loader alike.
public enum FileBytes {
    /// A whole file, read straight into one array (no intermediate `Data`:
    /// bundles run to tens of megabytes); nil when it cannot be read.
    public static func read(atPath path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
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
}
