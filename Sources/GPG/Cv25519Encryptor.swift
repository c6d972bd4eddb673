import Crypto
import CryptoExtras
import Foundation

/// An OpenPGP v4 encryption subkey on Curve25519 (ECDH, algorithm 18, as
/// gpg's default keys have), to which a short message is encrypted in
/// process — no gpg run, no GnuPG home.
///
/// Which subkey to use is gpg's call, not this type's: the caller names it
/// (``KeyInfo/encryptionSubkey``, from gpg's own listing of the same key
/// bytes), and ``init(keyData:subkey:)`` only finds that subkey's packet and
/// reads its point and KDF parameters. Any other subkey (RSA, NIST curves,
/// v5/v6) gives nil, and the caller encrypts with gpg instead.
public struct Cv25519Recipient: Sendable, Equatable {
    /// The encryption subkey's fingerprint, upper-case hex.
    public let fingerprint: String
    let fingerprintBytes: [UInt8]
    let point: [UInt8]
    /// The KDF's hash (RFC 4880 hash ids: 8 SHA-256, 9 SHA-384, 10 SHA-512).
    let kdfHash: UInt8
    /// The key-encryption key's cipher (7 AES-128, 8 AES-192, 9 AES-256).
    let kekCipher: UInt8

    /// The key-encryption key's length in bytes.
    var kekLength: Int { 8 * (Int(kekCipher) - 5) }

    /// The key id a session-key packet names: the fingerprint's low 64 bits.
    var keyID: ArraySlice<UInt8> { fingerprintBytes.suffix(8) }

    /// OID 1.3.6.1.4.1.3029.1.5.1 (Curve25519 for ECDH), as OpenPGP writes it.
    static let oid: [UInt8] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01]

    /// The length of a public-subkey packet's body for this kind of key.
    static let publicBodyCount = 6 + 1 + oid.count + 2 + 33 + 4

    /// Finds the subkey whose v4 fingerprint is `subkey` in a transferable
    /// public key (armored or binary); nil when it is not there or not a
    /// Curve25519 ECDH key with parameters this type supports.
    public init?(keyData: [UInt8], subkey: String) {
        guard let bytes = try? KeyFile.binary(from: keyData) else { return nil }
        var offset = 0
        while offset < bytes.count {
            guard let packet = try? PacketHeader(in: bytes, at: offset) else { return nil }
            offset = packet.end
            guard packet.tag == 14, let parsed = Self(body: bytes[packet.bodyStart..<packet.end]),
                  parsed.fingerprint == subkey.uppercased()
            else { continue }
            self = parsed
            return
        }
        return nil
    }

    /// A public-subkey packet's body: version 4, creation time, algorithm 18,
    /// the curve's OID, the point (0x40 and 32 bytes), the KDF parameters.
    init?(body: ArraySlice<UInt8>) {
        let body = Array(body)
        let oid = Self.oid
        // 1 version + 4 time + 1 algorithm + 1 + OID + 2 bits + 33 point + 4 KDF parameters
        guard body.count == Self.publicBodyCount, body[0] == 4, body[5] == 18,
              Int(body[6]) == oid.count, Array(body[7..<(7 + oid.count)]) == oid
        else { return nil }
        var index = 7 + oid.count
        guard body[index] == 0x01, body[index + 1] == 0x07, body[index + 2] == 0x40 else { return nil }  // 263 bits
        point = Array(body[(index + 3)..<(index + 35)])
        index += 35
        guard body[index] == 3, body[index + 1] == 1, [8, 9, 10].contains(body[index + 2]),
              [7, 8, 9].contains(body[index + 3]),
              (try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: point)) != nil
        else { return nil }
        kdfHash = body[index + 2]
        kekCipher = body[index + 3]
        fingerprintBytes = KeyFile.v4Fingerprint(publicBody: body[...])
        fingerprint = fingerprintBytes.map { String(format: "%02X", $0) }.joined()
    }
}

extension Cv25519Recipient {
    /// The key-encryption key from an X25519 shared secret (RFC 6637 §7–8):
    /// the KDF over the curve, the algorithm, the key's KDF fields,
    /// "Anonymous Sender" and the recipient's fingerprint, cut to the
    /// key-encryption cipher's length. The same on both sides of the exchange.
    func keyEncryptionKey(_ shared: SharedSecret) -> SymmetricKey {
        shared.withUnsafeBytes { keyEncryptionKey(sharedX: $0) }
    }

    /// ``keyEncryptionKey(_:)`` from the shared point's 32 bytes.
    func keyEncryptionKey(sharedX: UnsafeRawBufferPointer) -> SymmetricKey {
        var kdfInput: [UInt8] = [0, 0, 0, 1]
        kdfInput += sharedX
        kdfInput += [UInt8(Self.oid.count)] + Self.oid
        kdfInput += [18, 3, 1, kdfHash, kekCipher]
        kdfInput += Array("Anonymous Sender    ".utf8) + fingerprintBytes
        defer { wipe(&kdfInput) }
        var kek: [UInt8]
        switch kdfHash {
        case 8: kek = Array(SHA256.hash(data: kdfInput))
        case 9: kek = Array(SHA384.hash(data: kdfInput))
        default: kek = Array(SHA512.hash(data: kdfInput))
        }
        defer { wipe(&kek) }
        return SymmetricKey(data: kek.prefix(kekLength))
    }
}

/// Encrypts short messages (a data key) to Curve25519 recipients in
/// process, as gpg would: one public-key encrypted session key packet per
/// recipient (RFC 6637: an ephemeral X25519 key, the KDF, AES key wrap),
/// then the literal data in a symmetrically encrypted integrity-protected
/// packet (AES-256 in OpenPGP's CFB mode, with its SHA-1 modification
/// detection code). Any OpenPGP implementation reads the result; `gpg
/// --decrypt` does in the tests.
///
/// gpg spends a process and a private home on each encryption (25–40 ms);
/// this costs well under a millisecond.
public struct Cv25519Encryptor: Sendable {
    /// Recipients by the primary key's fingerprint.
    private let recipients: [String: Cv25519Recipient]

    public init(recipients: [String: Cv25519Recipient]) {
        self.recipients = recipients
    }

    /// Encrypts `plaintext` to the keys with these primary fingerprints.
    public func encrypt(_ plaintext: UnsafeRawBufferPointer, to primaries: [String]) throws -> [UInt8] {
        precondition(!primaries.isEmpty, "encrypt needs at least one recipient")
        let targets = try primaries.map { primary in
            guard let recipient = recipients[primary] else { throw GPGError.keyNotFound(primary) }
            return recipient
        }
        var literal = Self.header(tag: 11, length: 6 + plaintext.count) + [UInt8(ascii: "b"), 0, 0, 0, 0, 0]
        literal += plaintext
        defer { wipe(&literal) }
        return try encrypt(payload: literal, to: targets)
    }

    /// Encrypts `payload`, OpenPGP packets as they are (``encrypt(_:to:)``
    /// gives a literal data packet; test vectors build other payloads), to
    /// `targets`.
    public func encrypt(payload: [UInt8], to targets: [Cv25519Recipient]) throws -> [UInt8] {
        var sessionKey = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        defer { wipe(&sessionKey) }

        var message: [UInt8] = []
        for target in targets { message += try Self.sessionKeyPacket(sessionKey, to: target) }
        message += try Self.encryptedData(payload, key: sessionKey)
        return message
    }

    /// RFC 4880 §5.1 with RFC 6637 §8: version 3, the subkey's key id,
    /// algorithm 18, the ephemeral point, and the wrapped session key.
    private static func sessionKeyPacket(_ sessionKey: [UInt8], to recipient: Cv25519Recipient) throws -> [UInt8] {
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let shared = try ephemeral.sharedSecretFromKeyAgreement(
            with: Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipient.point))
        let kek = recipient.keyEncryptionKey(shared)
        // The session key's cipher (AES-256), the key, its checksum, PKCS#5 padding to 40 bytes.
        let checksum = sessionKey.reduce(0) { ($0 + Int($1)) & 0xFFFF }
        var padded: [UInt8] = [9] + sessionKey + [UInt8(checksum >> 8), UInt8(checksum & 0xFF)]
        padded += [UInt8](repeating: 5, count: 5)
        defer { wipe(&padded) }
        let wrapped = try AES.KeyWrap.wrap(SymmetricKey(data: padded), using: kek)

        var body: [UInt8] = [3] + recipient.keyID + [18]
        body += [0x01, 0x07, 0x40] + ephemeral.publicKey.rawRepresentation
        body += [UInt8(wrapped.count)] + wrapped
        return packet(tag: 1, body)
    }

    /// RFC 4880 §5.13: version 1, then under AES-256 in CFB mode with a zero
    /// IV: 16 random bytes, their last two again, the payload (a literal
    /// data packet: binary, no file name, no date) and the modification
    /// detection code.
    private static func encryptedData(_ payload: [UInt8], key: [UInt8]) throws -> [UInt8] {
        // Built in one buffer, wiped below: it holds the plaintext.
        var inner: [UInt8] = []
        inner.reserveCapacity(16 + 2 + payload.count + 22)
        SymmetricKey(size: .bits128).withUnsafeBytes { inner += $0 }
        inner += inner.suffix(2)
        inner += payload
        inner += [0xD3, 0x14]
        inner += Array(Insecure.SHA1.hash(data: inner))
        defer { wipe(&inner) }
        let ciphertext = try AES._CFB.encrypt(
            inner, using: SymmetricKey(data: key), iv: AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: 16)))
        return packet(tag: 18, [1] + Array(ciphertext))
    }

    /// A new-format packet with a definite length.
    static func packet(tag: UInt8, _ body: [UInt8]) -> [UInt8] {
        header(tag: tag, length: body.count) + body
    }

    /// A new-format packet header (RFC 4880 §4.2.2).
    static func header(tag: UInt8, length: Int) -> [UInt8] {
        switch length {
        case 0..<192:
            return [0xC0 | tag, UInt8(length)]
        case 192..<8384:
            let rest = length - 192
            return [0xC0 | tag, UInt8((rest >> 8) + 192), UInt8(rest & 0xFF)]
        default:
            return [0xC0 | tag, 0xFF, UInt8(length >> 24 & 0xFF), UInt8(length >> 16 & 0xFF),
                    UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        }
    }
}

/// Overwrites an array's bytes with zeros.
func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { wipe($0) }
}
