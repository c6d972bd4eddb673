import Crypto
import Foundation

/// An OpenPGP v4 primary key on Ed25519 (EdDSA, algorithm 22), able to check
/// detached signatures in process — no gpg run, no keyring.
///
/// gpg costs one process (and a keyring to import into) per check; a loader
/// verifying a bundle at boot would spend most of its time there. This type
/// does what gpg's verification does for the keys secretc's own `init`
/// creates (gpg's default: an Ed25519 primary key that signs):
///
/// * the key's self-signatures are checked; the key must have a valid user
///   id certification, and the newest one gives its expiry and key flags,
///   which must allow signing when present;
/// * a valid key revocation signature makes every check `keyRevoked`;
/// * a signature is `good` only when it is a binary-document signature by
///   this very key (issuer fingerprint), with SHA-256/384/512, no unknown
///   critical subpacket, a valid Ed25519 signature over the digest, made no
///   earlier than the key, neither it nor the key has expired, and it is in
///   ``SignatureForm``'s canonical form (no unsigned byte can change).
///
/// Any other key (RSA, ECDSA, v5/v6) is not handled, nor a signature by a
/// signing subkey (``check(signature:over:)`` says `missingKey`, and the
/// bundle verifier asks gpg):
/// ``init(transferable:)`` returns nil and callers ask gpg instead.
public struct Ed25519SigningKey: Sendable {
    /// Upper-case hex v4 fingerprint of the primary key.
    public let fingerprint: String
    private let fingerprintBytes: [UInt8]
    private let publicKey: Curve25519.Signing.PublicKey
    private let created: Int
    /// Seconds since 1970 after which the key is expired, if it expires.
    private let expires: Int?
    private let revoked: Bool

    /// OID 1.3.6.1.4.1.11591.15.1 (Ed25519), as OpenPGP writes it.
    private static let ed25519OID: [UInt8] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01]

    /// Reads a binary transferable public key (as a bundle's `key` line holds).
    /// Returns nil when it is not an Ed25519 primary key with a valid
    /// self-certification: the caller then verifies with gpg.
    public init?(transferable bytes: [UInt8]) {
        var packets: [PacketHeader] = []
        var offset = 0
        while offset < bytes.count {
            guard let packet = try? PacketHeader(in: bytes, at: offset) else { return nil }
            packets.append(packet)
            offset = packet.end
        }
        guard let primary = packets.first, primary.tag == 6 else { return nil }
        let body = Array(bytes[primary.bodyStart..<primary.end])
        guard body.count == 6 + 1 + Self.ed25519OID.count + 2 + 33, body[0] == 4, body[5] == 22,
              Int(body[6]) == Self.ed25519OID.count, Array(body[7..<16]) == Self.ed25519OID,
              body[16] == 0x01, body[17] == 0x07, body[18] == 0x40,  // 263-bit MPI: 0x40 prefix + 32-byte point
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: body[19...])
        else { return nil }
        publicKey = key
        created = Int(body[1]) << 24 | Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4])
        let keyPrefix = [0x99, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        fingerprintBytes = Array(Insecure.SHA1.hash(data: keyPrefix))
        fingerprint = fingerprintBytes.map { String(format: "%02X", $0) }.joined()

        // Self-signatures: revocations on the key, certifications on user ids.
        var revoked = false
        var newest: Signature?
        var userID: [UInt8]?
        for packet in packets.dropFirst() {
            switch packet.tag {
            case 13:
                userID = Array(bytes[packet.bodyStart..<packet.end])
                continue
            case 2:
                break
            case 14, 17:
                userID = nil  // subkeys and user attributes: their signatures are not ours to read
                continue
            default:
                continue
            }
            guard let signature = Signature(Array(bytes[packet.bodyStart..<packet.end])) else { continue }
            var prefix = keyPrefix
            switch signature.type {
            case 0x20 where userID == nil:
                break
            case 0x10...0x13:
                guard let userID else { continue }
                prefix += [0xB4] + Self.bigEndian32(userID.count) + userID
            default:
                continue
            }
            guard signature.isValid(over: SignedData(prefix), by: key, issuer: fingerprintBytes) else { continue }
            if signature.type == 0x20 {
                revoked = true
            } else if signature.created >= (newest?.created ?? 0) {
                newest = signature
            }
        }
        guard let certification = newest else { return nil }  // gpg would call the key unusable
        if let flags = certification.subpacket(27)?.first, flags & 0x02 == 0 { return nil }  // may not sign
        if let lifetime = certification.subpacket(9).map(Self.integer), lifetime > 0 {
            expires = created + lifetime
        } else {
            expires = nil
        }
        self.revoked = revoked
    }

    /// Checks a detached signature over `data`, as gpg would report it.
    /// - Parameters:
    ///   - signature: one binary signature packet (a bundle's signature field).
    ///   - now: the time against which expiry is judged.
    public func check(signature bytes: [UInt8], over data: [UInt8], now: Date = Date()) -> SignatureCheck {
        check(signature: bytes, over: SignedData(data), now: now)
    }

    /// ``check(signature:over:now:)`` for data handed over in pieces.
    public func check(signature bytes: [UInt8], over data: SignedData, now: Date = Date()) -> SignatureCheck {
        guard let header = try? PacketHeader(in: bytes, at: 0), header.tag == 2, header.end == bytes.count,
              let signature = Signature(Array(bytes[header.bodyStart..<header.end]))
        else { return SignatureCheck(status: .error("not an OpenPGP signature"), signer: "", timestamp: 0) }
        let signer =
            signature.issuerFingerprint == fingerprintBytes
            ? fingerprint : signature.issuerFingerprint.map { $0.map { String(format: "%02X", $0) }.joined() } ?? ""
        func result(_ status: SignatureCheck.Status) -> SignatureCheck {
            var check = SignatureCheck(status: status, signer: signer, timestamp: signature.created)
            check.keyExpires = expires
            return check
        }
        guard signature.issuerFingerprint == fingerprintBytes else { return result(.missingKey) }
        guard signature.type == 0x00 else { return result(.error("not a signature of a binary document")) }
        guard signature.isValid(over: data, by: publicKey, issuer: fingerprintBytes) else { return result(.bad) }
        // The unhashed area and the MPIs' encoding are not signed: a changed
        // byte there must not leave a good signature (see SignatureForm).
        guard SignatureForm.isCanonicalForm(ofCheckedSignature: bytes) else {
            return result(.error("the signature is not in canonical form (altered bytes?)"))
        }
        guard signature.created >= created else { return result(.error("the signature predates its key")) }
        let moment = Int(now.timeIntervalSince1970)
        if revoked { return result(.keyRevoked) }
        // A key's expiry stops new signatures; one made while it was valid stays good.
        if let expires, expires <= signature.created { return result(.keyExpired) }
        if let lifetime = signature.subpacket(3).map(Self.integer), lifetime > 0, signature.created + lifetime <= moment {
            return result(.signatureExpired)
        }
        return result(.good)
    }

    private static func bigEndian32(_ value: Int) -> [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    private static func integer(_ bytes: ArraySlice<UInt8>) -> Int { bytes.reduce(0) { $0 << 8 | Int($1) } }
}

/// One v4 EdDSA signature packet body, split into what verification needs.
private struct Signature {
    var type: UInt8
    var hashAlgorithm: UInt8
    /// Version through the end of the hashed subpackets: what the signature hashes after the data.
    var hashedPart: [UInt8]
    var hashedSubpackets: [Subpacket]
    var quickCheck: [UInt8]
    /// R and S, each left-padded to 32 bytes.
    var rawSignature: [UInt8]
    var created: Int
    var issuerFingerprint: [UInt8]?

    /// Subpackets gpg understands in a hashed area; any other one marked
    /// critical makes the signature invalid (RFC 4880 §5.2.3.1).
    private static let understood: Set<UInt8> = [2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 16, 20, 21, 22, 23, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 37]

    init?(_ body: [UInt8]) {
        var reader = ByteReader(bytes: body, index: 0, end: body.count)
        guard reader.byte() == 4, let type = reader.byte(), reader.byte() == 22, let hash = reader.byte(),
              let hashedLength = reader.uint16(), let hashed = reader.take(hashedLength)
        else { return nil }
        hashedPart = Array(body[0..<reader.index])
        guard let unhashedLength = reader.uint16(), reader.take(unhashedLength) != nil, let check = reader.take(2)
        else { return nil }
        var raw: [UInt8] = []
        for _ in 0..<2 {
            guard let bits = reader.uint16(), (1...256).contains(bits), let value = reader.take((bits + 7) / 8) else {
                return nil
            }
            raw += [UInt8](repeating: 0, count: 32 - value.count) + value
        }
        guard reader.index == reader.end, let subpackets = Subpacket.parse(hashed) else { return nil }
        self.type = type
        hashAlgorithm = hash
        hashedSubpackets = subpackets
        quickCheck = Array(check)
        rawSignature = raw
        guard let time = subpackets.first(where: { $0.type == 2 })?.body, time.count == 4 else { return nil }
        created = time.reduce(0) { $0 << 8 | Int($1) }
        issuerFingerprint = subpackets.first(where: { $0.type == 33 }).flatMap { packet in
            packet.body.count == 21 && packet.body.first == 4 ? Array(packet.body.dropFirst()) : nil
        }
    }

    func subpacket(_ type: UInt8) -> ArraySlice<UInt8>? { hashedSubpackets.first { $0.type == type }?.body }

    /// True when this is a signature by `key` (named by `issuer`) over
    /// `prefix` followed by the hashed part and trailer.
    func isValid(over prefix: SignedData, by key: Curve25519.Signing.PublicKey, issuer: [UInt8]) -> Bool {
        guard issuerFingerprint == issuer,
              !hashedSubpackets.contains(where: { $0.critical && !Self.understood.contains($0.type) }),
              let digest = digest(prefix), Array(digest.prefix(2)) == quickCheck
        else { return false }
        return key.isValidSignature(rawSignature, for: digest)
    }

    private func digest(_ data: SignedData) -> [UInt8]? {
        SignatureForm.signatureHash(hashAlgorithm, data: data, hashedPart: hashedPart[...])
    }
}
