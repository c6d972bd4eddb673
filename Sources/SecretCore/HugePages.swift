#if canImport(Glibc)
import Glibc
#endif

/// Asks the kernel to back the whole 2 MiB pages inside `buffer` with huge
/// pages before they are first written: one fault per 2 MiB instead of 512.
/// Only advice; without transparent huge pages nothing changes.
public func adviseHugePages(_ buffer: UnsafeMutableRawBufferPointer) {
    #if os(Linux)
    guard let base = buffer.baseAddress, buffer.count >= 4 << 20 else { return }
    let huge = UInt(2 << 20)
    let start = (UInt(bitPattern: base) + huge - 1) & ~(huge - 1)
    let end = (UInt(bitPattern: base) + UInt(buffer.count)) & ~(huge - 1)
    guard end > start else { return }
    _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_HUGEPAGE)
    #endif
}
