import Foundation

/// One version of a file, as its metadata tells it apart: device, inode,
/// size, and modification and change times in nanoseconds. Any write to a
/// file changes its ctime, which no caller can set back; a file replaced by
/// a rename (as git and every secretc writer do) is a new inode.
public struct FileIdentity: Equatable, Sendable, LosslessStringConvertible {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int
    public var modified: Int64
    public var changed: Int64

    public init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }

    /// The identity of the file now at `path` (links followed); nil when there is none.
    public init?(atPath path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }

    public init?(_ description: String) {
        let parts = description.split(separator: ":")
        guard parts.count == 5, let device = UInt64(parts[0]), let inode = UInt64(parts[1]), let size = Int(parts[2]),
              let modified = Int64(parts[3]), let changed = Int64(parts[4])
        else { return nil }
        (self.device, self.inode, self.size, self.modified, self.changed) = (device, inode, size, modified, changed)
    }

    public var description: String { "\(device):\(inode):\(size):\(modified):\(changed)" }
}
