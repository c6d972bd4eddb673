import BundleFormat
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GPG
import SecretCore

/// One verified, decrypted bundle, immutable once built. Lookups read it
/// without locks; the kernel swaps whole snapshots on reload.
///
/// Values live in one arena that is zeroed when the snapshot dies.
final class Snapshot: @unchecked Sendable {
    /// What serving one slot needs: plain values only, so a lookup copies
    /// no reference (no retain/release on the hot path).
    struct Serving: Sendable {
        /// Arena range of the value; `length < 0` when none is held.
        var offset: Int32
        var length: Int32
        /// Seconds since 1970; `Int.max` when it never expires.
        var expires: Int
        var hasValue: Bool
        var inactive: Bool
        var inScope: Bool
    }

    /// What only status answers need.
    struct Metadata: Sendable {
        var reserved: Bool
        var scopes: [String]?
        var description: String?
        /// Who last wrote the slot (a user id or a fingerprint) and when.
        var writer: String?
        var writtenAt: Int?
    }

    struct PluginKey: Hashable {
        var plugin: String
        var key: String
    }

    let environment: String
    /// Every slot, in canonical order; `serving` and `metadata` are parallel.
    let slots: [SlotKey]
    let serving: [Serving]
    let metadata: [Metadata]
    let table: LookupTable
    /// The environment variable of each declared plugin key.
    let environmentVariables: [PluginKey: String]
    /// Each plugin's declared schema, in manifest order.
    let declared: [String: [DeclaredSecret]]
    let epochCount: Int
    let valueCount: Int
    let digest: String
    let loadedAt: Date

    /// - Parameter arena: the values, at the offsets `serving` gives; copied
    ///   into the lookup records, then zeroed and freed.
    init(
        environment: String, slots: [SlotKey], serving: [Serving], metadata: [Metadata],
        environmentVariables: [PluginKey: String],
        declared: [String: [DeclaredSecret]], epochCount: Int, digest: String, loadedAt: Date,
        arena: UnsafeMutableRawBufferPointer
    ) {
        self.environment = environment
        self.slots = slots
        let table = LookupTable(slots: slots, serving: serving, values: arena)
        wipe(arena)
        arena.deallocate()
        self.table = table
        // Values are read from the records from now on.
        self.serving = zip(serving, table.valueOffsets).map { entry, offset in
            var moved = entry
            moved.offset = offset
            return moved
        }
        self.metadata = metadata
        self.environmentVariables = environmentVariables
        self.declared = declared
        self.epochCount = epochCount
        self.valueCount = serving.count { $0.length >= 0 }
        self.digest = digest
        self.loadedAt = loadedAt
    }

    deinit {
        wipe(table.records)
        table.records.deallocate()
    }

    /// The value bytes of `entry`; valid while the snapshot lives.
    @inline(__always)
    func bytes(_ entry: Serving) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: table.records.baseAddress! + Int(entry.offset), count: Int(entry.length))
    }

    /// The variable the fallback reads for `plugin`/`key`.
    func environmentVariable(_ plugin: String, _ key: String) -> String {
        environmentVariables[PluginKey(plugin: plugin, key: key)]
            ?? defaultEnvironmentVariable(plugin: plugin, key: key)
    }

    /// The positions of one owner's slots of `plugin`, in canonical (key) order.
    func positions(owner: String?, plugin: String) -> Range<Int> {
        let probe = SlotKey(owner: owner, plugin: plugin, key: "")
        var low = 0
        var high = slots.count
        while low < high {
            let middle = (low + high) / 2
            if slots[middle] < probe { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < slots.count, slots[end].owner == owner, slots[end].plugin == plugin { end += 1 }
        return low..<end
    }
}

/// The lookup path's own copy of every slot: a record per slot holding its
/// serving facts, its names and its value, found through an open-addressing
/// table over a word-wise hash of the names.
///
/// Lookups are bound by memory latency (random slots of a 100,000-slot
/// table miss every cache), so a lookup touches two places: its bucket
/// (hash tag and record offset side by side) and its record (names to
/// compare, then the value right after them). Records are zeroed when the
/// snapshot dies.
struct LookupTable {
    private struct Bucket {
        /// The hash's high bits: most probes of other slots compare no name.
        var tag: UInt32
        /// Record offset + 1 (0: empty).
        var record: Int32
    }

    /// Record layout: expires (Int64), value length (Int32, -1: none held),
    /// flags (UInt8), owner/plugin/key lengths (3 × UInt8), the three names,
    /// then the value; each record starts 8-aligned.
    private static let header = 16
    static let hasValue: UInt8 = 1, inactive: UInt8 = 2, inScope: UInt8 = 4, deploymentWide: UInt8 = 8

    private let buckets: [Bucket]
    private let mask: Int
    let records: UnsafeMutableRawBufferPointer
    /// Each slot's value offset in ``records`` (for ``Snapshot/Serving``).
    let valueOffsets: [Int32]

    /// One slot as the lookup path reads it.
    struct Record {
        let base: UnsafeRawPointer
        var expires: Int { base.loadUnaligned(as: Int64.self).asInt }
        var valueLength: Int { Int(base.loadUnaligned(fromByteOffset: 8, as: Int32.self)) }
        var flags: UInt8 { base.load(fromByteOffset: 12, as: UInt8.self) }
        var value: UnsafeRawBufferPointer {
            let names = Int(base.load(fromByteOffset: 13, as: UInt8.self)) + Int(base.load(fromByteOffset: 14, as: UInt8.self))
                + Int(base.load(fromByteOffset: 15, as: UInt8.self))
            return UnsafeRawBufferPointer(start: base + LookupTable.header + names, count: max(valueLength, 0))
        }
    }

    init(slots: [SlotKey], serving: [Snapshot.Serving], values: UnsafeMutableRawBufferPointer) {
        var size = 0
        for (slot, entry) in zip(slots, serving) {
            let names = (slot.owner?.utf8.count ?? 0) + slot.plugin.utf8.count + slot.key.utf8.count
            size += (Self.header + names + max(Int(entry.length), 0) + 7) & ~7
        }
        records = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 8), alignment: 8)
        var capacity = 16
        while capacity < slots.count * 2 { capacity <<= 1 }
        var buckets = [Bucket](repeating: Bucket(tag: 0, record: 0), count: capacity)
        mask = capacity - 1
        var offsets = [Int32](repeating: 0, count: slots.count)
        var offset = 0
        for (position, (slot, entry)) in zip(slots, serving).enumerated() {
            let base = records.baseAddress! + offset
            base.storeBytes(of: Int64(entry.expires), as: Int64.self)
            base.storeBytes(of: entry.length, toByteOffset: 8, as: Int32.self)
            var flags: UInt8 = entry.hasValue ? Self.hasValue : 0
            if entry.inactive { flags |= Self.inactive }
            if entry.inScope { flags |= Self.inScope }
            if slot.owner == nil { flags |= Self.deploymentWide }
            base.storeBytes(of: flags, toByteOffset: 12, as: UInt8.self)
            var cursor = Self.header
            @inline(__always) func store(_ name: String, _ index: Int) {
                var name = name
                name.withUTF8 { bytes in
                    base.storeBytes(of: UInt8(bytes.count), toByteOffset: 13 + index, as: UInt8.self)
                    if let source = bytes.baseAddress { (base + cursor).copyMemory(from: source, byteCount: bytes.count) }
                    cursor += bytes.count
                }
            }
            store(slot.owner ?? "", 0)
            store(slot.plugin, 1)
            store(slot.key, 2)
            offsets[position] = Int32(offset + cursor)
            if entry.length > 0 {
                (base + cursor).copyMemory(from: values.baseAddress! + Int(entry.offset), byteCount: Int(entry.length))
            }
            let hash = Self.hash(owner: slot.owner, plugin: slot.plugin, key: slot.key)
            var bucket = Int(truncatingIfNeeded: hash) & mask
            while buckets[bucket].record != 0 { bucket = (bucket + 1) & mask }
            buckets[bucket] = Bucket(tag: UInt32(truncatingIfNeeded: hash >> 32), record: Int32(offset + 1))
            offset += (cursor + max(Int(entry.length), 0) + 7) & ~7
        }
        self.buckets = buckets
        valueOffsets = offsets
    }

    /// The record of `owner`/`plugin`/`key`, or nil when the bundle has no such slot.
    @inline(__always)
    func record(owner: String?, plugin: String, key: String) -> Record? {
        let hash = Self.hash(owner: owner, plugin: plugin, key: key)
        let tag = UInt32(truncatingIfNeeded: hash >> 32)
        var bucket = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = buckets[bucket]
            if entry.record == 0 { return nil }
            if entry.tag == tag {
                let base = UnsafeRawPointer(records.baseAddress! + Int(entry.record) - 1)
                if Self.matches(base, owner, plugin, key) { return Record(base: base) }
            }
            bucket = (bucket + 1) & mask
        }
    }

    @inline(__always)
    private static func matches(_ base: UnsafeRawPointer, _ owner: String?, _ plugin: String, _ key: String) -> Bool {
        let wide = base.load(fromByteOffset: 12, as: UInt8.self) & deploymentWide != 0
        guard wide == (owner == nil) else { return false }
        var cursor = header
        @inline(__always) func next(_ name: String, _ index: Int) -> Bool {
            let length = Int(base.load(fromByteOffset: 13 + index, as: UInt8.self))
            var name = name
            // Names are short: a plain loop beats a call to memcmp.
            let record = base + cursor
            let same = name.withUTF8 { bytes in
                guard bytes.count == length else { return false }
                for index in 0..<length where bytes[index] != record.load(fromByteOffset: index, as: UInt8.self) {
                    return false
                }
                return true
            }
            cursor += length
            return same
        }
        return next(owner ?? "", 0) && next(plugin, 1) && next(key, 2)
    }

    /// A multiply-xorshift hash of owner, plugin and key, eight bytes at a
    /// time, each name's length mixed in with its last word (so no two name
    /// triples are the same word stream); the owner of a deployment-wide
    /// slot hashes as "-". Byte-wise FNV-1a cost a dependent multiply per
    /// byte: about 40 ns of a lookup.
    @inline(__always)
    static func hash(owner: String?, plugin: String, key: String) -> UInt64 {
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        @inline(__always) func mix(_ word: UInt64) {
            hash = (hash ^ word) &* 0x9E37_79B9_7F4A_7C15
            hash ^= hash >> 29
        }
        @inline(__always) func mix(_ text: String) {
            var text = text
            text.withUTF8 { bytes in
                var index = 0
                if let base = UnsafeRawPointer(bytes.baseAddress) {
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
        }
        mix(owner ?? "-")
        mix(plugin)
        mix(key)
        hash = (hash ^ (hash >> 32)) &* 0xD6E8_FEB8_6659_FD93  // the bucket takes low bits, the tag high ones
        return hash ^ (hash >> 32)
    }
}

extension Int64 {
    fileprivate var asInt: Int { Int(self) }
}

