import BundleFormat
import BundleSeal
import CLinux
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import GPG
import SecretCore

/// One verified, decrypted bundle, immutable once built. Lookups read it
/// without locks; the kernel swaps whole snapshots on reload.
///
/// Values live in the lookup records, which are zeroed when the snapshot dies.
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
        /// Its writer's epoch made the value unusable (see ``Failure``): nothing is served for it.
        var unavailable = false
    }

    /// Values one user's epoch signed that could not be used, for the log.
    struct Failure: Sendable {
        var epoch: Int
        var reason: Loader.Unusable
        var detail: String
        var slots: Int
    }

    /// What only status answers need.
    struct Metadata: Sendable {
        var reserved: Bool
        var scopes: [String]?
        var description: String?
    }

    struct PluginKey: Hashable {
        var plugin: String
        var key: String
    }

    let environment: String
    /// How many slots; `serving`, `metadata` and `writers` hold one per
    /// slot, in canonical order (``slot(at:)`` names each).
    var slotCount: Int { serving.count }
    let serving: [Serving]
    let metadata: [Metadata]
    /// The epoch that last wrote each slot (-1: none), parallel to `serving`.
    let writers: [Int32]
    /// Each epoch's writer (a user id, or a fingerprint) and time.
    let epochWriters: [String]
    let epochTimes: [Int]
    let table: LookupTable
    /// Where each slot's record starts in `table`, in canonical order: status
    /// and `secretc exec` read slot names from the records. (Kept out of
    /// the table, which every lookup reads.)
    let slotRecords: [Int32]
    /// The environment variable of each declared plugin key.
    let environmentVariables: [PluginKey: String]
    /// Each plugin's declared schema, in manifest order.
    let declared: [String: [DeclaredSecret]]
    /// Every plugin key the schema declares or a slot names: a lookup of anything else is a typo.
    let declaredKeys: Set<PluginKey>
    /// The epochs (by users) whose values are unavailable, and why.
    let failures: [Failure]
    var epochCount: Int { epochTimes.count }
    let valueCount: Int
    let digest: String
    let loadedAt: Date
    /// Where the load's time went (milliseconds), for the "loaded" log line.
    var phases: [(name: String, milliseconds: Double)] = []
    /// The verified bundle's history: the next bundle must extend it.
    var history: TrustedHistory?

    /// - Parameters:
    ///   - serving: each slot's facts, its `offset` that of its value in `table`'s records.
    ///   - table: the lookup records, values in place; freed (zeroed first) when the snapshot dies.
    init(
        environment: String, serving: [Serving], metadata: [Metadata],
        writers: [Int32], epochWriters: [String], epochTimes: [Int], table: LookupTable, slotRecords: [Int32],
        environmentVariables: [PluginKey: String],
        declared: [String: [DeclaredSecret]], failures: [Failure] = [], digest: String, loadedAt: Date
    ) {
        self.environment = environment
        self.serving = serving
        self.table = table
        self.slotRecords = slotRecords
        self.metadata = metadata
        self.writers = writers
        self.epochWriters = epochWriters
        self.epochTimes = epochTimes
        self.environmentVariables = environmentVariables
        self.declared = declared
        // The schema's keys, and every key a slot names (a slot is a declaration too).
        declaredKeys = Set(declared.flatMap { plugin, keys in keys.map { PluginKey(plugin: plugin, key: $0.key) } })
            .union(environmentVariables.keys)
        self.failures = failures
        self.valueCount = serving.count { $0.length >= 0 }
        self.digest = digest
        self.loadedAt = loadedAt
    }

    deinit { table.free() }

    /// The value bytes of `entry`; valid while the snapshot lives.
    @inline(__always)
    func bytes(_ entry: Serving) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: table.records.baseAddress! + Int(entry.offset), count: Int(entry.length))
    }

    /// Who last wrote the slot at `position` (a user id or a fingerprint), and when.
    func written(_ position: Int) -> (writer: String, at: Int)? {
        let epoch = Int(writers[position])
        return epoch < 0 ? nil : (epochWriters[epoch], epochTimes[epoch])
    }

    /// Whether the signed schema declares `plugin`'s `key`.
    @inline(__always)
    func declares(_ plugin: String, _ key: String) -> Bool { declaredKeys.contains(PluginKey(plugin: plugin, key: key)) }

    /// The variable the fallback reads for `plugin`/`key`.
    func environmentVariable(_ plugin: String, _ key: String) -> String {
        environmentVariables[PluginKey(plugin: plugin, key: key)]
            ?? defaultEnvironmentVariable(plugin: plugin, key: key)
    }

    /// The slot at `position` in canonical order, named from its lookup record.
    func slot(at position: Int) -> SlotKey { table.slotKey(atRecord: slotRecords[position]) }

    /// The positions of one owner's slots (of `plugin`, when given), in canonical order.
    func positions(owner: String?, plugin: String? = nil) -> Range<Int> {
        let probe = SlotKey(owner: owner, plugin: plugin ?? "", key: "")
        var low = 0
        var high = slotCount
        while low < high {
            let middle = (low + high) / 2
            if slot(at: middle) < probe { low = middle + 1 } else { high = middle }
        }
        var end = low
        while end < slotCount {
            let next = slot(at: end)
            guard next.owner == owner, plugin == nil || next.plugin == plugin else { break }
            end += 1
        }
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
struct LookupTable: @unchecked Sendable {  // immutable once its values are in place
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
    static let unavailable: UInt8 = 16

    private let buckets: [Bucket]
    private let mask: Int
    let records: UnsafeMutableRawBufferPointer

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

    /// Lays out a record per slot of `scan`, names copied from its bytes,
    /// with room for each value `serving` says is served; sets each entry's
    /// `offset` to where its value goes, and each slot's record offset in
    /// `slotRecords`. The caller fills the values.
    init(_ scan: ScannedBundle, serving: inout [Snapshot.Serving], slotRecords: inout [Int32]) {
        var capacity = 16
        while capacity < scan.slots.count * 2 { capacity <<= 1 }
        let mask = capacity - 1
        var buckets = [Bucket](repeating: Bucket(tag: 0, record: 0), count: capacity)
        slotRecords = [Int32](repeating: 0, count: scan.slots.count)
        // Every array is borrowed once: reading one per slot retained and
        // released its storage, shared with the load's other tasks.
        records = scan.bytes.withUnsafeBufferPointer { bytes in
            scan.slots.withUnsafeBufferPointer { slots in
                serving.withUnsafeMutableBufferPointer { serving in
                    buckets.withUnsafeMutableBufferPointer { buckets in
                        slotRecords.withUnsafeMutableBufferPointer { slotRecords in
                            Self.layOut(bytes, slots, &serving, &buckets, &slotRecords, mask: mask)
                        }
                    }
                }
            }
        }
        self.buckets = buckets
        self.mask = mask
    }

    private static func layOut(
        _ bytes: UnsafeBufferPointer<UInt8>, _ slots: UnsafeBufferPointer<ScannedSlot>,
        _ serving: inout UnsafeMutableBufferPointer<Snapshot.Serving>, _ buckets: inout UnsafeMutableBufferPointer<Bucket>,
        _ slotRecords: inout UnsafeMutableBufferPointer<Int32>, mask: Int
    ) -> UnsafeMutableRawBufferPointer {
        @inline(__always) func isDeploymentWide(_ slot: ScannedSlot) -> Bool {
            slot.owner.count == 1 && bytes[slot.owner.lowerBound] == UInt8(ascii: "-")
        }
        var size = 0
        for (slot, entry) in zip(slots, serving) {
            let owner = isDeploymentWide(slot) ? 0 : slot.owner.count
            size += (header + owner + slot.plugin.count + slot.key.count + max(Int(entry.length), 0) + 7) & ~7
        }
        let records = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 8), alignment: 8)
        adviseHugePages(records)  // written once, below and as the values are opened
        // The values live here: never in a core file (as gpg-agent keeps its keys).
        _ = secretc_exclude_from_core_dumps(records.baseAddress, UInt(records.count))
        let raw = UnsafeRawBufferPointer(bytes)
        var offset = 0
        for position in slots.indices {
            let slot = slots[position]
            let entry = serving[position]
            let base = records.baseAddress! + offset
            slotRecords[position] = Int32(offset)
            let wide = isDeploymentWide(slot)
            base.storeBytes(of: Int64(entry.expires), as: Int64.self)
            base.storeBytes(of: entry.length, toByteOffset: 8, as: Int32.self)
            var flags: UInt8 = entry.hasValue ? hasValue : 0
            if entry.inactive { flags |= inactive }
            if entry.inScope { flags |= inScope }
            if wide { flags |= deploymentWide }
            base.storeBytes(of: flags, toByteOffset: 12, as: UInt8.self)
            var cursor = header
            @inline(__always) func store(_ range: Range<Int>, _ index: Int) {
                base.storeBytes(of: UInt8(range.count), toByteOffset: 13 + index, as: UInt8.self)
                (base + cursor).copyMemory(from: raw.baseAddress! + range.lowerBound, byteCount: range.count)
                cursor += range.count
            }
            store(wide ? slot.owner.lowerBound..<slot.owner.lowerBound : slot.owner, 0)  // stored empty, flagged
            store(slot.plugin, 1)
            store(slot.key, 2)
            serving[position].offset = Int32(offset + cursor)
            // A deployment-wide slot's owner is `-` in the bundle, as the hash takes it.
            let hash = NameHash.hash(
                UnsafeRawBufferPointer(rebasing: raw[slot.owner]), UnsafeRawBufferPointer(rebasing: raw[slot.plugin]),
                UnsafeRawBufferPointer(rebasing: raw[slot.key]))
            var bucket = Int(truncatingIfNeeded: hash) & mask
            while buckets[bucket].record != 0 { bucket = (bucket + 1) & mask }
            buckets[bucket] = Bucket(tag: UInt32(truncatingIfNeeded: hash >> 32), record: Int32(offset + 1))
            offset += (cursor + max(Int(entry.length), 0) + 7) & ~7
        }
        return records
    }

    /// The names in the record at `offset`.
    func slotKey(atRecord offset: Int32) -> SlotKey {
        let base = UnsafeRawPointer(records.baseAddress! + Int(offset))
        var cursor = Self.header
        func name(_ index: Int) -> String {
            let length = Int(base.load(fromByteOffset: 13 + index, as: UInt8.self))
            defer { cursor += length }
            return String(decoding: UnsafeRawBufferPointer(start: base + cursor, count: length), as: UTF8.self)
        }
        let owner = name(0), plugin = name(1), key = name(2)
        let wide = base.load(fromByteOffset: 12, as: UInt8.self) & Self.deploymentWide != 0
        return SlotKey(owner: wide ? nil : owner, plugin: plugin, key: key)
    }

    /// Flags the record at `offset` unavailable and drops its value (the
    /// caller has wiped the value's bytes). Only while the table is being built.
    func markUnavailable(atRecord offset: Int32) {
        let base = records.baseAddress! + Int(offset)
        base.storeBytes(of: Int32(-1), toByteOffset: 8, as: Int32.self)
        base.storeBytes(of: base.load(fromByteOffset: 12, as: UInt8.self) | Self.unavailable, toByteOffset: 12, as: UInt8.self)
    }

    /// Zeroes and frees the records; the table is not used afterwards.
    func free() {
        wipe(records)
        records.deallocate()
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

    /// ``NameHash`` of owner, plugin and key; the owner of a deployment-wide
    /// slot hashes as "-". (Byte-wise FNV-1a cost about 40 ns of a lookup.)
    @inline(__always)
    static func hash(owner: String?, plugin: String, key: String) -> UInt64 {
        var owner = owner ?? "-", plugin = plugin, key = key
        return owner.withUTF8 { owner in
            plugin.withUTF8 { plugin in
                key.withUTF8 { key in
                    NameHash.hash(UnsafeRawBufferPointer(owner), UnsafeRawBufferPointer(plugin), UnsafeRawBufferPointer(key))
                }
            }
        }
    }
}

extension Int64 {
    fileprivate var asInt: Int { Int(self) }
}

