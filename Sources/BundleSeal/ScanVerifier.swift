import BundleFormat
import Crypto
import Foundation
import GPG

/// Verification of a ``ScannedBundle`` (docs/bundle-format.md §6, steps
/// 3–6) for loaders: the same rules as ``BundleVerifier``, on positions in
/// the bundle bytes, with step 6 split per slot so that it can run in
/// parallel, next to each value's decryption.
///
/// Only for bundles whose signers all have Ed25519 keys (checked in
/// process); ``init(_:trustedAdmins:)`` returns nil otherwise and the caller
/// uses ``BundleVerifier``. Its errors are terse: a caller that meets one
/// runs ``BundleVerifier`` on the materialized bundle for the full message.
public struct ScanVerifier: Sendable {
    public let scan: ScannedBundle
    /// Claim → bucket table of the latest claim of each claimed slot.
    private let table: ClaimTable
    /// How many slots some epoch claims.
    public var claimedSlots: Int { table.count }

    /// Steps 3–5: keys, the policy signature against the pins, every epoch's
    /// signature and authorization. Builds the claim table for step 6.
    public init?(_ scan: ScannedBundle, trustedAdmins: Set<String>) throws(BundleSealError) {
        let header = scan.header
        let checker = try SignatureChecker(header)
        defer { checker.close() }
        let signers = [header.policy?.signer].compactMap { $0 } + scan.epochs.map(\.writer)
        guard signers.allSatisfy(checker.checksInProcess) else { return nil }
        let verifier = BundleVerifier(trustedAdmins: trustedAdmins)
        try verifier.verifyPolicy(header, payload: scan.policyPayload(), checker)
        let admins = Set(header.admins)
        for (index, epoch) in scan.epochs.enumerated() {
            let payload = scan.epochPayload(index, dataKeyDigest: Digest.sha256Hex(epoch.dataKeyMessage))
            try verifier.requireGood(signature: epoch.signature, over: payload, by: epoch.writer, checker) {
                .badEpochSignature(epoch: epoch.id, reason: $0)
            }
            guard !admins.contains(epoch.writer) else { continue }
            // A user's key claims only that user's slots.
            let owners = header.users.filter { $0.value == epoch.writer }.map { Array($0.key.utf8) }
            for claim in epoch.claims {
                let owner = scan.bytes[claim.start..<claim.firstSlash]
                guard owners.contains(where: { $0.elementsEqual(owner) }) else {
                    throw .unauthorizedWriter(
                        epoch: epoch.id, writer: epoch.writer, slot: scan.text(claim.path))
                }
            }
        }
        self.scan = scan
        table = ClaimTable(scan)
    }

    /// Step 6 for one slot: its latest claim must match its value. Returns
    /// the index of the epoch holding the slot's latest claim (nil when no
    /// epoch claims it) and the value's bytes (nonce ‖ ciphertext ‖ tag; nil
    /// when the slot holds none).
    public func checkValue(ofSlot index: Int) throws(BundleSealError) -> (epoch: Int?, sealed: [UInt8]?) {
        let slot = scan.slots[index]
        guard let (epochIndex, claim) = table.latest(owner: slot.owner.lowerBound, end: slot.key.upperBound, in: scan) else {
            if slot.hasValue { throw .inconsistent(slot: name(index), reason: "holds a value that no epoch claims") }
            return (nil, nil)
        }
        let epoch = scan.epochs[epochIndex]
        guard let (valueEpoch, base64) = slot.valueParts else {
            guard claim.digest == nil else {
                throw .inconsistent(slot: name(index), reason: "epoch \(epoch.id) set a value that is missing (dropped?)")
            }
            return (epochIndex, nil)
        }
        guard scan.bytes[valueEpoch].elementsEqual(epoch.id.utf8) else {
            throw .inconsistent(slot: name(index), reason: "holds a value from an earlier epoch than the one that wrote it")
        }
        guard let digest = claim.digest else {
            throw .inconsistent(slot: name(index), reason: "epoch \(epoch.id) deleted it, yet it holds a value")
        }
        guard let bytes = scan.decodedBase64(base64), let signed = scan.decodedBase64(digest),
              SHA256.hash(data: bytes).elementsEqual(signed)
        else { throw .inconsistent(slot: name(index), reason: "its value does not match what epoch \(epoch.id) signed") }
        return (epochIndex, bytes)
    }

    private func name(_ index: Int) -> String { scan.slotKey(index).description }
}

/// The latest claim of each claimed slot, by the slot's name bytes: open
/// addressing over an FNV-1a hash in which the separators `/` (claims) and
/// ` ` (slot lines) count as the same byte; names hold neither.
private struct ClaimTable: Sendable {
    /// (epoch index + 1, claim index) per bucket; epoch 0 marks an empty bucket.
    private var buckets: [(epoch: Int32, claim: Int32)]
    private let mask: Int
    private(set) var count = 0

    init(_ scan: ScannedBundle) {
        let total = scan.epochs.reduce(0) { $0 + $1.claims.count }
        var capacity = 16
        while capacity < total * 2 { capacity <<= 1 }
        mask = capacity - 1
        buckets = Array(repeating: (0, 0), count: capacity)
        // Canonical order: a later epoch's claim replaces an earlier one.
        for (epochIndex, epoch) in scan.epochs.enumerated() {
            for (claimIndex, claim) in epoch.claims.enumerated() {
                var bucket = Self.hash(scan.bytes, claim.start, claim.equals) & mask
                while buckets[bucket].epoch != 0 {
                    let other = scan.epochs[Int(buckets[bucket].epoch) - 1].claims[Int(buckets[bucket].claim)]
                    if Self.same(scan.bytes, other.start, other.equals, claim.start, claim.equals) { break }
                    bucket = (bucket + 1) & mask
                }
                if buckets[bucket].epoch == 0 { count += 1 }
                buckets[bucket] = (Int32(epochIndex + 1), Int32(claimIndex))
            }
        }
    }

    /// The latest claim of the slot whose `owner plugin key` spans `start..<end`.
    func latest(owner start: Int, end: Int, in scan: ScannedBundle) -> (Int, ScannedClaim)? {
        var bucket = Self.hash(scan.bytes, start, end) & mask
        while buckets[bucket].epoch != 0 {
            let epoch = Int(buckets[bucket].epoch) - 1
            let claim = scan.epochs[epoch].claims[Int(buckets[bucket].claim)]
            if Self.same(scan.bytes, claim.start, claim.equals, start, end) { return (epoch, claim) }
            bucket = (bucket + 1) & mask
        }
        return nil
    }

    private static func hash(_ bytes: [UInt8], _ start: Int, _ end: Int) -> Int {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for index in start..<end {
            let byte = bytes[index] == UInt8(ascii: " ") ? UInt8(ascii: "/") : bytes[index]
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return Int(truncatingIfNeeded: hash ^ (hash >> 29))
    }

    private static func same(_ bytes: [UInt8], _ start: Int, _ end: Int, _ otherStart: Int, _ otherEnd: Int) -> Bool {
        guard end - start == otherEnd - otherStart else { return false }
        for offset in 0..<(end - start) {
            let left = bytes[start + offset], right = bytes[otherStart + offset]
            if left != right, !(left == UInt8(ascii: " ") && right == UInt8(ascii: "/")),
               !(left == UInt8(ascii: "/") && right == UInt8(ascii: " ")) { return false }
        }
        return true
    }
}
