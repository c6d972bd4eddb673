import BundleFormat
import Crypto
import Dispatch
import Foundation
import GPG
import SecretCore
import Synchronization

/// Verification of a ``ScannedBundle`` (docs/bundle-format.md §6, steps
/// 3–6) for loaders: the same rules as ``BundleVerifier``, on positions in
/// the bundle bytes, with step 6 split per slot so that it can run in
/// parallel, next to each value's decryption.
///
/// ``init(_:trustedAdmins:)`` checks signatures itself, for bundles whose
/// signers all have Ed25519 keys (checked in process), and returns nil
/// otherwise. Its errors are terse: a caller that meets one, or a nil, runs
/// ``BundleVerifier`` on the materialized bundle (gpg for other keys, and
/// the exact message for any problem) and then ``Signatures/init(verifiedAs:)``.
public struct ScanVerifier: Sendable {
    public let scan: ScannedBundle
    /// Claim → bucket table of the latest claim of each claimed slot.
    private let table: ClaimTable
    /// Every epoch's id, 16 bytes each, in order.
    private let epochIDs: [UInt8]
    /// How many matches the slots' checks must add up to (their
    /// ``Scratch/matches``) when every claim names a slot.
    public var expectedMatches: Int { table.expectedMatches }

    /// Steps 3–5 and the claim table, one after the other: see
    /// ``checkSignatures(_:trustedAdmins:)``; nil when that declines.
    public init?(_ scan: ScannedBundle, trustedAdmins: Set<String>) throws(BundleSealError) {
        guard let signatures = try Self.checkSignatures(scan, trustedAdmins: trustedAdmins) else { return nil }
        self.init(scan, signatures, claims: Claims(scan))
    }

    /// A verifier from its two halves, which a loader builds at the same
    /// time on two cores: `signatures` proves steps 3–5 passed for `scan`,
    /// and `claims` is `scan`'s claim table.
    public init(_ scan: ScannedBundle, _ signatures: Signatures, claims: Claims) {
        self.scan = scan
        table = claims.table
        epochIDs = scan.epochs.flatMap { Array($0.id.utf8) }
    }

    /// That steps 3–5 passed: only ``checkSignatures(_:trustedAdmins:)``
    /// and a reference verification make one.
    public struct Signatures: Sendable {
        fileprivate init() {}

        /// The proof a ``BundleVerifier`` verification gives: `reference` is
        /// the result of verifying `scan.materialized()` (steps 3–6). The
        /// per-slot checks still run.
        public init(verifiedAs reference: BundleVerifier.Verified) {}
    }

    /// The latest claim of each claimed slot (checks nothing by itself).
    public struct Claims: Sendable {
        fileprivate let table: ClaimTable

        public init(_ scan: ScannedBundle) { table = ClaimTable(scan) }
    }

    /// Steps 3–5: keys, the policy signature against the pins, every epoch's
    /// signature and authorization. nil when a signer's key is not Ed25519
    /// (only those are checked in process).
    public static func checkSignatures(_ scan: ScannedBundle, trustedAdmins: Set<String>) throws(BundleSealError) -> Signatures? {
        let header = scan.header
        try History.requireCurrentVersion(header)
        let checker = try SignatureChecker(header)
        defer { checker.close() }
        let signers = [header.policy?.signer].compactMap { $0 } + scan.epochs.map(\.writer)
        guard signers.allSatisfy(checker.checksInProcess) else { return nil }
        let verifier = BundleVerifier(trustedAdmins: trustedAdmins)
        // Both payloads are hashed as they are rendered, never built whole.
        try verifier.verifyPolicy(header, payload: SignedData(pieces: scan.policyPayload(pieces:)), checker)
        let admins = Set(header.admins)
        var ownersByKey: [String: [[UInt8]]] = [:]
        for (user, key) in header.users { ownersByKey[key, default: []].append(Array(user.utf8)) }
        let owners = ownersByKey
        // Every epoch's signature on every core (thousands of epochs is a
        // team's ordinary history); the first failure in bundle order is
        // reported, as a check one after another would.
        let epochs = scan.epochs
        let inherited = inheritedTimes(epochs)
        var failures = [BundleSealError?](repeating: nil, count: epochs.count)
        var signedAt = [SignatureCheck](repeating: SignatureCheck(status: .good, signer: "", timestamp: 0), count: epochs.count)
        let chunks = min(epochs.count, ProcessInfo.processInfo.activeProcessorCount * 4)
        failures.withUnsafeMutableBufferPointer { buffer in
            signedAt.withUnsafeMutableBufferPointer { times in
                nonisolated(unsafe) let (failures, times, checker, verifier) = (buffer, times, checker, verifier)
                DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                    for index in stride(from: chunk, to: epochs.count, by: chunks) {
                        do throws(BundleSealError) {
                            times[index] = try checkEpoch(
                                index, scan, verifier, checker, admins: admins, owners: owners[epochs[index].writer] ?? [],
                                inherited: inherited[index])
                        } catch {
                            failures[index] = error
                        }
                    }
                }
            }
        }
        if let failure = failures.first(where: { $0 != nil }) { throw failure! }
        try History.check(header, scan.epochs, admins: admins, signedAt: signedAt)
        return Signatures()
    }

    /// Steps 4–5 for one epoch: its signature, its time, and a user's
    /// claims on that user's slots alone (`owners`: the user ids whose key wrote it).
    private static func checkEpoch(
        _ index: Int, _ scan: ScannedBundle, _ verifier: BundleVerifier, _ checker: SignatureChecker, admins: Set<String>,
        owners: [[UInt8]], inherited: Int?
    ) throws(BundleSealError) -> SignatureCheck {
        let epoch = scan.epochs[index]
        let dataKeyDigest = Digest.sha256Hex(epoch.dataKeyMessage)
        let payload = SignedData { scan.epochPayload(index, dataKeyDigest: dataKeyDigest, pieces: $0) }
        let check = try verifier.requireGood(signature: epoch.signature, over: payload, by: epoch.writer, checker) {
            .badEpochSignature(epoch: epoch.id, reason: $0)
        }
        try History.checkTime(epoch, signedAt: check.timestamp, inherited: inherited)
        guard !admins.contains(epoch.writer) else { return check }
        for claim in epoch.claims {
            let owner = scan.bytes[claim.start..<claim.firstSlash]
            guard owners.contains(where: { $0.elementsEqual(owner) }) else {
                throw .unauthorizedWriter(epoch: epoch.id, writer: epoch.writer, slot: scan.text(claim.path))
            }
        }
        return check
    }

    /// Step 6 for one slot: its latest claim must match its value. Returns
    /// the index of the epoch holding the slot's latest claim (nil when no
    /// epoch claims it); when the slot holds a value, its bytes (nonce ‖
    /// ciphertext ‖ tag) are left in `scratch.sealed`.
    ///
    /// - Parameters:
    ///   - bytes: ``ScannedBundle/bytes``, borrowed by the caller for a whole chunk of slots.
    ///   - scratch: buffers reused from slot to slot (one per thread).
    public func checkValue(ofSlot index: Int, bytes: UnsafeBufferPointer<UInt8>, scratch: inout Scratch)
        throws(BundleSealError) -> Int?
    {
        scratch.sealed.removeAll(keepingCapacity: true)
        let slot = scan.slots[index]
        guard let claim = table.latest(ofSlot: index, slot, in: bytes, scratch: &scratch) else {
            if slot.hasValue { throw .inconsistent(slot: name(index), reason: "holds a value that no epoch claims") }
            return nil
        }
        let epoch = Int(claim.epoch)
        let deleted = claim.end - claim.equals == 2
        guard let (valueEpoch, base64) = slot.valueParts else {
            guard deleted else {
                throw .inconsistent(slot: name(index), reason: "epoch \(scan.epochs[epoch].id) set a value that is missing (dropped?)")
            }
            return epoch
        }
        guard epochIDs.withUnsafeBufferPointer({ ids in
            (0..<16).allSatisfy { ids[epoch * 16 + $0] == bytes[valueEpoch.lowerBound + $0] }
        }) else {
            throw .inconsistent(slot: name(index), reason: "holds a value from an earlier epoch than the one that wrote it")
        }
        guard !deleted else {
            throw .inconsistent(slot: name(index), reason: "epoch \(scan.epochs[epoch].id) deleted it, yet it holds a value")
        }
        guard ScannedBundle.decodeBase64(bytes, base64, into: &scratch.sealed),
              ScannedBundle.decodeBase64(bytes, Int(claim.equals + 1)..<Int(claim.end), into: &scratch.digest),
              SHA256.hash(data: scratch.sealed).elementsEqual(scratch.digest)
        else {
            throw .inconsistent(slot: name(index), reason: "its value does not match what epoch \(scan.epochs[epoch].id) signed")
        }
        return epoch
    }

    /// Step 6 for every slot, on every core: what a reader that decrypts
    /// only some values still has to check of all of them.
    public func checkAllValues() throws(BundleSealError) {
        let chunks = min(16, max(1, scan.slots.count / 4096))
        let claimed = Atomic<Int>(0)
        let failure = Mutex<BundleSealError?>(nil)
        scan.bytes.withUnsafeBufferPointer { bytes in
            nonisolated(unsafe) let bytes = bytes
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                var scratch = Scratch()
                defer { claimed.add(scratch.matches, ordering: .relaxed) }
                for index in (scan.slots.count * chunk / chunks)..<(scan.slots.count * (chunk + 1) / chunks) {
                    do throws(BundleSealError) {
                        _ = try checkValue(ofSlot: index, bytes: bytes, scratch: &scratch)
                    } catch {
                        // Any one problem: callers that must name the first check step by step.
                        failure.withLock { found in if found == nil { found = error } }
                        return
                    }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        guard claimed.load(ordering: .relaxed) == expectedMatches else { throw .inconsistent(slot: "?", reason: "a claim names no slot") }
    }

    /// Per-thread buffers for ``checkValue(ofSlot:bytes:scratch:)``.
    public struct Scratch {
        public var sealed: [UInt8] = []
        var digest: [UInt8] = []
        /// Claims matched so far: callers add them up over all slots and
        /// compare with ``ScanVerifier/expectedMatches``.
        public internal(set) var matches = 0
        /// Where each walkedClaims epoch's walk stands, valid for slot `next`.
        var cursors: [Int] = []
        var next = -1

        public init() {}
    }

    private func name(_ index: Int) -> String { scan.slotKey(index).description }
}

/// The latest claim of each claimed slot, by the slot's name bytes.
///
/// Each epoch's claims are sorted by their whole text `owner/plugin/key=…`;
/// the slot lines by owner, plugin and key. The two orders agree unless a
/// name is a prefix of another followed by a byte below `/` (`a` and `a.b`)
/// or, for keys, below `=` (`K1` and `K10`). When they agree,
/// the large epochs (a re-seal claims every slot) are walked in step with
/// the slots, so a slot's check reads the claims next to the last one it
/// read; the other epochs' claims, and every claim when the orders differ,
/// go into an open-addressing table over ``NameHash`` of the three names
/// (which hold neither `/`, the claims' separator, nor ` `, the slot lines').
fileprivate struct ClaimTable: Sendable {
    /// A claim's epoch (index + 1; 0 marks an empty bucket) and positions.
    struct Entry {
        var epoch: Int32
        var start: Int32
        var equals: Int32
        var end: Int32
    }

    private var buckets: [Entry]
    private let mask: Int
    /// Distinct claimed paths in `buckets`.
    private var count = 0
    /// The walked epochs' claims, epoch after epoch (`epoch` is the index + 1).
    private let walkedClaims: [Entry]
    /// Where each walked epoch's claims start in `walkedClaims`, and the end.
    private let walkStarts: [Int]
    /// Every walked claim must name a slot, and each path of the table.
    var expectedMatches: Int { walkedClaims.count + count }

    /// Epochs with at least this many claims are walked when the orders agree.
    private static let walked = 1024

    init(_ scan: ScannedBundle) {
        let walk = scan.epochs.contains { $0.claims.count >= Self.walked } && Self.ordersAgree(scan)
        var walkedClaims: [Entry] = []
        var walkStarts = [0]
        let tabled = scan.epochs.indices.filter { !walk || scan.epochs[$0].claims.count < Self.walked }
        if walk {
            walkedClaims.reserveCapacity(scan.epochs.reduce(0) { $0 + ($1.claims.count >= Self.walked ? $1.claims.count : 0) })
            for (epochIndex, epoch) in scan.epochs.enumerated() where epoch.claims.count >= Self.walked {
                for claim in epoch.claims {
                    walkedClaims.append(Entry(epoch: Int32(epochIndex + 1), start: Int32(claim.start), equals: Int32(claim.equals), end: Int32(claim.end)))
                }
                walkStarts.append(walkedClaims.count)
            }
        }
        self.walkedClaims = walkedClaims
        self.walkStarts = walkStarts
        let total = tabled.reduce(0) { $0 + scan.epochs[$1].claims.count }
        var capacity = 16
        while capacity < total * 2 { capacity <<= 1 }
        let mask = capacity - 1
        self.mask = mask
        var buckets = [Entry](repeating: Entry(epoch: 0, start: 0, equals: 0, end: 0), count: capacity)
        var count = 0
        scan.bytes.withUnsafeBufferPointer { bytes in
            // Canonical order: a later epoch's claim replaces an earlier one.
            for epochIndex in tabled {
                for claim in scan.epochs[epochIndex].claims {
                    var bucket = Self.hash(
                        bytes, claim.start..<claim.firstSlash, (claim.firstSlash + 1)..<claim.secondSlash,
                        (claim.secondSlash + 1)..<claim.equals) & mask
                    while buckets[bucket].epoch != 0 {
                        let other = buckets[bucket]
                        if Self.order(UnsafeRawBufferPointer(bytes), Int(other.start), Int(other.equals), claim.start, claim.equals) == 0 { break }
                        bucket = (bucket + 1) & mask
                    }
                    if buckets[bucket].epoch == 0 { count += 1 }
                    buckets[bucket] = Entry(
                        epoch: Int32(epochIndex + 1), start: Int32(claim.start), equals: Int32(claim.equals), end: Int32(claim.end))
                }
            }
        }
        self.buckets = buckets
        self.count = count
    }

    /// Whether the slot lines, compared as claims are (`owner/plugin/key=`,
    /// bytewise), are in increasing order.
    private static func ordersAgree(_ scan: ScannedBundle) -> Bool {
        scan.bytes.withUnsafeBytes { raw in
            scan.slots.withUnsafeBufferPointer { slots in
                guard slots.count > 1 else { return true }
                for index in 1..<slots.count
                where order(raw, slots[index - 1].owner.lowerBound, slots[index - 1].key.upperBound,
                            slots[index].owner.lowerBound, slots[index].key.upperBound) >= 0 {
                    return false
                }
                return true
            }
        }
    }

    /// The latest claim of the slot at `index` (its `epoch` is the epoch's
    /// index, not index + 1); counts the claims it matches in `scratch`.
    /// Walks are fastest when a thread checks consecutive slots.
    func latest(ofSlot index: Int, _ slot: ScannedSlot, in bytes: UnsafeBufferPointer<UInt8>, scratch: inout ScanVerifier.Scratch) -> Entry? {
        var found: Entry? = nil
        if count > 0 {
            found = latest(slot.owner, slot.plugin, slot.key, in: bytes)
            if found != nil { scratch.matches += 1 }
        }
        guard walkStarts.count > 1 else { return found }
        let raw = UnsafeRawBufferPointer(bytes)
        let start = slot.owner.lowerBound, end = slot.key.upperBound
        walkedClaims.withUnsafeBufferPointer { walkedClaims in
            if scratch.next != index {
                // A fresh walk: the first claim of each walked epoch not before this slot.
                scratch.cursors = (1..<walkStarts.count).map { epoch in
                    var low = walkStarts[epoch - 1], high = walkStarts[epoch]
                    while low < high {
                        let middle = (low + high) / 2
                        let claim = walkedClaims[middle]
                        if Self.order(raw, Int(claim.start), Int(claim.equals), start, end) < 0 { low = middle + 1 } else { high = middle }
                    }
                    return low
                }
            }
            scratch.next = index + 1
            for walk in scratch.cursors.indices {
                var cursor = scratch.cursors[walk]
                let stop = walkStarts[walk + 1]
                var order = 0
                while cursor < stop {
                    let claim = walkedClaims[cursor]
                    order = Self.order(raw, Int(claim.start), Int(claim.equals), start, end)
                    guard order < 0 else { break }
                    cursor += 1  // names no slot: the matches fall short
                }
                if cursor < stop, order == 0 {
                    var claim = walkedClaims[cursor]
                    claim.epoch -= 1
                    scratch.matches += 1
                    cursor += 1
                    // The latest claim is the one of the highest epoch index.
                    if found.map({ $0.epoch < claim.epoch }) ?? true { found = claim }
                }
                scratch.cursors[walk] = cursor
            }
        }
        return found
    }

    /// The order of claims (`owner/plugin/key=digest`, bytewise) of two
    /// paths, `a` and `b`, each written with spaces or slashes between its
    /// names (compared as slashes) and compared as if followed by `=`: a path
    /// that is a prefix of the other sorts after it when the other continues
    /// with a byte below `=` (`K10=` before `K1=`), as their claims do.
    @inline(__always)
    static func order(_ bytes: UnsafeRawBufferPointer, _ a: Int, _ aEnd: Int, _ b: Int, _ bEnd: Int) -> Int {
        let base = bytes.baseAddress!
        let common = min(aEnd - a, bEnd - b)
        var offset = 0
        while offset + 8 <= common {
            let left = slashed(base.loadUnaligned(fromByteOffset: a + offset, as: UInt64.self))
            let right = slashed(base.loadUnaligned(fromByteOffset: b + offset, as: UInt64.self))
            if left != right {
                let shift = UInt64((left ^ right).trailingZeroBitCount & ~7)  // the first differing byte (little-endian)
                return Int((left >> shift) & 0xFF) - Int((right >> shift) & 0xFF)
            }
            offset += 8
        }
        while offset < common {
            let left = slashed(base.load(fromByteOffset: a + offset, as: UInt8.self))
            let right = slashed(base.load(fromByteOffset: b + offset, as: UInt8.self))
            if left != right { return Int(left) - Int(right) }
            offset += 1
        }
        let equals = Int(UInt8(ascii: "="))
        if aEnd - a > common { return slashedAt(a + common) - equals }
        if bEnd - b > common { return equals - slashedAt(b + common) }
        return 0

        func slashedAt(_ offset: Int) -> Int { Int(slashed(base.load(fromByteOffset: offset, as: UInt8.self))) }
    }

    /// `word` with every space byte made a slash (0x20 | 0x0F = 0x2F).
    @inline(__always)
    static func slashed(_ word: UInt64) -> UInt64 {
        let low: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        let x = word ^ 0x2020_2020_2020_2020
        let spaces = ~(((x & low) &+ low) | x | low)  // 0x80 in each byte that was a space
        return word | ((spaces >> 7) &* 0x0F)
    }

    @inline(__always)
    static func slashed(_ byte: UInt8) -> UInt8 { byte == UInt8(ascii: " ") ? UInt8(ascii: "/") : byte }

    /// The latest tabled claim of the slot with these names, `owner plugin key` on
    /// its line (its `epoch` is the epoch's index, not index + 1).
    private func latest(_ owner: Range<Int>, _ plugin: Range<Int>, _ key: Range<Int>, in bytes: UnsafeBufferPointer<UInt8>) -> Entry? {
        let start = owner.lowerBound, end = key.upperBound
        let first = Self.hash(bytes, owner, plugin, key) & mask
        return buckets.withUnsafeBufferPointer { buckets in
            var bucket = first
            while buckets[bucket].epoch != 0 {
                var entry = buckets[bucket]
                if Self.order(UnsafeRawBufferPointer(bytes), Int(entry.start), Int(entry.equals), start, end) == 0 {
                    entry.epoch -= 1
                    return entry
                }
                bucket = (bucket + 1) & mask
            }
            return nil
        }
    }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>, _ owner: Range<Int>, _ plugin: Range<Int>, _ key: Range<Int>)
        -> Int
    {
        let raw = UnsafeRawBufferPointer(bytes)
        return Int(truncatingIfNeeded: NameHash.hash(
            UnsafeRawBufferPointer(rebasing: raw[owner]), UnsafeRawBufferPointer(rebasing: raw[plugin]),
            UnsafeRawBufferPointer(rebasing: raw[key])))
    }
}
