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
    let index: [SlotKey: Int]
    /// The environment variable of each declared plugin key.
    let environmentVariables: [PluginKey: String]
    /// Each plugin's declared schema, in manifest order.
    let declared: [String: [DeclaredSecret]]
    let epochCount: Int
    let valueCount: Int
    let digest: String
    let loadedAt: Date
    private let arena: UnsafeMutableRawBufferPointer

    init(
        environment: String, slots: [SlotKey], serving: [Serving], metadata: [Metadata], environmentVariables: [PluginKey: String],
        declared: [String: [DeclaredSecret]], epochCount: Int, digest: String, loadedAt: Date,
        arena: UnsafeMutableRawBufferPointer
    ) {
        self.environment = environment
        self.slots = slots
        self.serving = serving
        self.metadata = metadata
        var index: [SlotKey: Int] = [:]
        index.reserveCapacity(slots.count)
        for (position, slot) in slots.enumerated() { index[slot] = position }
        self.index = index
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
