import BundleFormat
import Foundation
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
    let index: SlotIndex
    /// The environment variable of each declared plugin key.
    let environmentVariables: [PluginKey: String]
    /// Each plugin's declared schema, in manifest order.
    let declared: [String: [DeclaredSecret]]
    let epochCount: Int
    let valueCount: Int
    let digest: String
    let loadedAt: Date
    private let arena: UnsafeMutableRawBufferPointer

    /// - Parameter index: the index of `slots`, when it was built already.
    init(
        environment: String, slots: [SlotKey], index: SlotIndex? = nil, serving: [Serving], metadata: [Metadata],
        environmentVariables: [PluginKey: String],
        declared: [String: [DeclaredSecret]], epochCount: Int, digest: String, loadedAt: Date,
        arena: UnsafeMutableRawBufferPointer
    ) {
        self.environment = environment
        self.slots = slots
        self.serving = serving
        self.metadata = metadata
        self.index = index ?? SlotIndex(slots)
        self.environmentVariables = environmentVariables
        self.declared = declared
        self.epochCount = epochCount
        self.valueCount = serving.count { $0.length >= 0 }
        self.digest = digest
        self.loadedAt = loadedAt
        self.arena = arena
    }

    deinit {
        wipe(arena)
        arena.deallocate()
    }

    /// The value bytes of `entry`; valid while the snapshot lives.
    @inline(__always)
    func bytes(_ entry: Serving) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: arena[Int(entry.offset)..<Int(entry.offset) + Int(entry.length)])
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

/// Slot → position, for lookups: open addressing over FNV-1a hashes of the
/// name bytes. Cheaper than a `Dictionary<SlotKey, Int>`, whose SipHash of
/// three strings was a third of a lookup's time.
struct SlotIndex {
    /// Position + 1 per bucket (0: empty).
    private let buckets: [Int32]
    /// The hash's high bits per bucket, so that most misses compare no string.
    private let tags: [UInt32]
    private let mask: Int

    init(_ slots: [SlotKey]) {
        var capacity = 16
        while capacity < slots.count * 2 { capacity <<= 1 }
        var buckets = [Int32](repeating: 0, count: capacity)
        var tags = [UInt32](repeating: 0, count: capacity)
        mask = capacity - 1
        for (position, slot) in slots.enumerated() {
            let hash = Self.hash(owner: slot.owner, plugin: slot.plugin, key: slot.key)
            var bucket = Int(truncatingIfNeeded: hash) & mask
            while buckets[bucket] != 0 { bucket = (bucket + 1) & mask }
            buckets[bucket] = Int32(position + 1)
            tags[bucket] = UInt32(truncatingIfNeeded: hash >> 32)
        }
        self.buckets = buckets
        self.tags = tags
    }

    @inline(__always)
    func position(owner: String?, plugin: String, key: String, in slots: [SlotKey]) -> Int? {
        let hash = Self.hash(owner: owner, plugin: plugin, key: key)
        let tag = UInt32(truncatingIfNeeded: hash >> 32)
        var bucket = Int(truncatingIfNeeded: hash) & mask
        while true {
            let entry = Int(buckets[bucket])
            if entry == 0 { return nil }
            if tags[bucket] == tag {
                let slot = slots[entry - 1]
                if slot.key == key, slot.plugin == plugin, slot.owner == owner { return entry - 1 }
            }
            bucket = (bucket + 1) & mask
        }
    }

    /// FNV-1a (64-bit) over owner, plugin and key, each followed by a 0 byte
    /// (no name holds one), the owner of a deployment-wide slot as "-".
    @inline(__always)
    static func hash(owner: String?, plugin: String, key: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        @inline(__always) func mix(_ text: String) {
            for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
            hash = hash &* 0x0000_0100_0000_01B3
        }
        mix(owner ?? "-")
        mix(plugin)
        mix(key)
        // FNV's low bits mix poorly for short keys: fold the high half in.
        return hash ^ (hash >> 29)
    }
}
