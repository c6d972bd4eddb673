/// The hash of a slot's three names (owner, plugin, key) that the loader's
/// tables use: multiply-xorshift, eight bytes at a time, each name's length
/// mixed in with its last word (so no two name triples are the same word
/// stream). A deployment-wide owner is hashed as `-`, as the bundle writes it.
/// Byte-wise FNV-1a cost a dependent multiply per byte.
public enum NameHash {
    @inlinable @inline(__always)
    public static func hash(_ owner: UnsafeRawBufferPointer, _ plugin: UnsafeRawBufferPointer, _ key: UnsafeRawBufferPointer)
        -> UInt64
    {
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        @inline(__always) func mix(_ word: UInt64) {
            hash = (hash ^ word) &* 0x9E37_79B9_7F4A_7C15
            hash ^= hash >> 29
        }
        @inline(__always) func mix(_ bytes: UnsafeRawBufferPointer) {
            var index = 0
            if let base = bytes.baseAddress {
                while index + 8 <= bytes.count {
                    mix(base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                    index += 8
                }
            }
            var last = UInt64(truncatingIfNeeded: bytes.count) << 56
            var shift: UInt64 = 0
            while index < bytes.count {
                last |= UInt64(bytes[index]) << shift
                shift += 8
                index += 1
            }
            mix(last)
        }
        mix(owner)
        mix(plugin)
        mix(key)
        hash = (hash ^ (hash >> 32)) &* 0xD6E8_FEB8_6659_FD93  // a table's bucket takes low bits, a tag high ones
        return hash ^ (hash >> 32)
    }
}
