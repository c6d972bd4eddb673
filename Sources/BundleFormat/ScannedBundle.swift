import SecretCore

/// A bundle checked against the grammar and canonical order (exactly as
/// strictly as ``SecretBundle/init(parsing:)``, which is built on it), whose
/// epoch and slot lines are kept as positions in the bundle bytes instead of
/// being copied into strings and arrays.
///
/// A loader reads 100,000 slot lines once; materializing each into a
/// ``SlotLine`` (three strings, a value array) costs more than verifying
/// and decrypting it. ``SecretBundle`` is for writers, this for readers.
public struct ScannedBundle: Sendable {
    /// The bundle's bytes; every range below indexes them.
    public let bytes: [UInt8]
    /// The lines up to the policy (environment, recipients, admins, users,
    /// keys, fields, policy); its `epochs` and `slots` are empty.
    public let header: SecretBundle
    public let epochs: [ScannedEpoch]
    /// Positions only (plain values, cheap to read from many threads).
    public let slots: [ScannedSlot]
    /// Each slot's attributes, parallel to ``slots``.
    public let attributes: [SlotAttributes]

    init(bytes: [UInt8], header: SecretBundle, epochs: [ScannedEpoch], slots: [ScannedSlot], attributes: [SlotAttributes]) {
        self.bytes = bytes
        self.header = header
        self.epochs = epochs
        self.slots = slots
        self.attributes = attributes
    }

    /// Checks `bytes` against the grammar and canonical order.
    /// - Throws: ``BundleFormatError`` naming the first offending line.
    public init(scanning bytes: [UInt8]) throws(BundleFormatError) {
        var parser = BundleParser()
        self = try parser.scan(bytes)
    }

    /// The text of a range of the bundle (names are ASCII by their grammar).
    public func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }

    /// The slot at `index`, as a ``SlotKey``.
    public func slotKey(_ index: Int) -> SlotKey {
        let slot = slots[index]
        return SlotKey(
            owner: slot.isDeploymentWide(in: bytes) ? nil : text(slot.owner), plugin: text(slot.plugin), key: text(slot.key))
    }

    /// The position of `slot` among the slot lines (binary search: they are canonical).
    public func position(of slot: SlotKey) -> Int? {
        let wanted = BundleSplice.names(slot)
        var low = 0
        var high = slots.count
        while low < high {
            let middle = (low + high) / 2
            let line = slots[middle]
            let order = BundleSplice.order([line.owner, line.plugin, line.key], wanted, in: bytes)
            if order == 0 { return middle }
            if order < 0 { low = middle + 1 } else { high = middle }
        }
        return nil
    }

    /// The value of slot `index` (epoch id and nonce ‖ ciphertext ‖ tag), decoded.
    public func sealedValue(_ index: Int) -> SealedValue? {
        guard let (epoch, base64) = slots[index].valueParts else { return nil }
        return SealedValue(epoch: text(epoch), bytes: Base64.decode(bytes[base64]) ?? [])
    }

    /// The bytes a base64 range of the bundle holds (ranges from a scan are valid base64).
    public func decodedBase64(_ range: Range<Int>) -> [UInt8]? { Base64.decode(bytes[range]) }

    /// Decodes the base64 at `range` of `bytes` (this bundle's, borrowed) into
    /// `out`, reusing its storage; false when it is not canonical base64.
    public static func decodeBase64(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [UInt8]) -> Bool {
        Base64.decode(UnsafeBufferPointer(rebasing: bytes[range]), into: &out)
    }

    /// The payload the policy signature covers (§4), copied from the lines as
    /// they are (they are canonical) with each value replaced by `*`.
    public func policyPayload() -> [UInt8] {
        var out: [UInt8] = []
        policyPayload { out += $0 }
        return out
    }

    /// ``policyPayload()`` handed to `body` in pieces of up to 64 KiB, in
    /// order, rendered into one reused buffer: the loader only hashes it.
    public func policyPayload(pieces body: (UnsafeRawBufferPointer) -> Void) {
        PieceBuffer.render(to: body) { out in
            out.append(header.policyPayload())  // no slots: the first lines and the header lines
            bytes.withUnsafeBytes { bytes in
                for slot in slots {
                    out.append(UnsafeRawBufferPointer(rebasing: bytes[slot.lineStart..<slot.valueStart]))
                    out.append(UInt8(ascii: "*"))
                    out.append(UnsafeRawBufferPointer(rebasing: bytes[slot.valueEnd...slot.lineEnd]))  // the attributes and the LF
                }
            }
        }
    }

    /// The payload epoch `index`'s writer signed (§4), handed to `body` in
    /// pieces, as ``policyPayload(pieces:)`` is.
    public func epochPayload(_ index: Int, dataKeyDigest: String, pieces body: (UnsafeRawBufferPointer) -> Void) {
        let epoch = epochs[index]
        PieceBuffer.render(to: body) { out in
            out.append(Array(Epoch.payloadHeader(
                environment: header.environment, id: epoch.id, time: epoch.time, writer: epoch.writer, policy: epoch.policy,
                parents: epoch.parents, dataKeyDigest: dataKeyDigest, formatVersion: header.formatVersion).utf8))
            // `owner/plugin/KEY=digest` becomes `claim owner plugin KEY digest`:
            // the claim's bytes, its three separators made spaces.
            bytes.withUnsafeBytes { bytes in
                for claim in epoch.claims {
                    out.append(Self.claimPrefix)
                    out.append(
                        UnsafeRawBufferPointer(rebasing: bytes[claim.start..<claim.end]),
                        spaces: (claim.firstSlash - claim.start, claim.secondSlash - claim.start, claim.equals - claim.start))
                    out.append(UInt8(ascii: "\n"))
                }
            }
        }
    }

    private static let claimPrefix = Array("claim ".utf8)


    /// Materializes everything: what writers edit.
    public func materialized() -> SecretBundle {
        var bundle = header
        bundle.epochs = epochs.map { epoch in
            Epoch(
                time: epoch.time, id: epoch.id, writer: epoch.writer, policy: epoch.policy, parents: epoch.parents,
                dataKeyMessage: epoch.dataKeyMessage,
                signature: epoch.signature,
                claims: epoch.claims.map { claim in
                    Claim(
                        slot: SlotKey(
                            owner: claim.isDeploymentWide(in: bytes) ? nil : text(claim.start..<claim.firstSlash),
                            plugin: text((claim.firstSlash + 1)..<claim.secondSlash),
                            key: text((claim.secondSlash + 1)..<claim.equals)),
                        digest: claim.digest.map { Base64.decode(bytes[$0]) ?? [] })
                })
        }
        bundle.slots = slots.indices.map { index in
            SlotLine(slot: slotKey(index), value: sealedValue(index), attributes: attributes[index])
        }
        return bundle
    }
}

/// An epoch line: its small fields decoded, its claims as positions.
public struct ScannedEpoch: Sendable {
    public let time: Int
    public let id: String
    public let writer: String
    public let policy: PolicyReference
    public let parents: EpochParents
    public let dataKeyMessage: [UInt8]
    public let signature: [UInt8]
    public let claims: [ScannedClaim]
}

/// One claim `owner/plugin/KEY=digest`, as positions in the bundle bytes.
public struct ScannedClaim: Sendable {
    /// The claim's first byte and the positions of its separators.
    public let start: Int
    public let firstSlash: Int
    public let secondSlash: Int
    public let equals: Int
    /// One past the claim's last byte.
    public let end: Int

    /// `owner/plugin/KEY`, the slot it claims.
    public var path: Range<Int> { start..<equals }
    /// The base64 SHA-256 of the value; nil for `-` (deleted).
    public var digest: Range<Int>? { end - equals == 2 ? nil : (equals + 1)..<end }

    func isDeploymentWide(in bytes: [UInt8]) -> Bool { firstSlash == start + 1 && bytes[start] == UInt8(ascii: "-") }
}

/// One slot line, as positions in the bundle bytes (its attributes are in
/// ``ScannedBundle/attributes``).
public struct ScannedSlot: Sendable {
    /// The line's first byte (`s` of `slot`) and its LF.
    public let lineStart: Int
    public let lineEnd: Int
    public let owner: Range<Int>
    public let plugin: Range<Int>
    public let key: Range<Int>
    /// The value field: `-`, or `epoch-id.base64`.
    public let valueStart: Int
    public let valueEnd: Int

    public var hasValue: Bool { valueEnd - valueStart != 1 }

    /// The value's epoch id and base64 text, when it has one.
    public var valueParts: (epoch: Range<Int>, base64: Range<Int>)? {
        hasValue ? (valueStart..<(valueStart + 16), (valueStart + 17)..<valueEnd) : nil
    }

    public func isDeploymentWide(in bytes: [UInt8]) -> Bool { owner.count == 1 && bytes[owner.lowerBound] == UInt8(ascii: "-") }

    /// How many bytes the value decodes to (nonce ‖ ciphertext ‖ tag); 0 without a value.
    /// - Parameter bytes: the bundle's bytes, borrowed (a loader's per-slot loop).
    @inlinable
    public func sealedByteCount(in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        guard valueEnd - valueStart != 1 else { return 0 }
        let end = valueEnd, count = valueEnd - valueStart - 17  // past `epoch-id.`
        let padding = (bytes[end - 1] == UInt8(ascii: "=") ? 1 : 0) + (bytes[end - 2] == UInt8(ascii: "=") ? 1 : 0)
        return count / 4 * 3 - padding
    }
}
