import Foundation
import GPG
import TestSupport
import Testing

/// The in-process check must agree with gpg's own verification, signature by
/// signature, and refuse whatever gpg refuses.
@Suite("in-process Ed25519 signature checks")
struct Ed25519SigningKeyTests {
    /// A signer's home, its fingerprint, and its public key as a bundle's `key` line holds it (binary).
    private func signer(
        _ name: String = "admin", algorithm: String = "future-default", usage: String = "default", expire: String = "never"
    ) throws -> (TemporaryGPGHome, String, [UInt8]) {
        let home = try TemporaryGPGHome()
        let fingerprint = try home.generateKey(name, algorithm: algorithm, usage: usage, expire: expire)
        return (home, fingerprint, try home.gpg(["--export", fingerprint]))
    }

    private func sign(_ data: [UInt8], in home: TemporaryGPGHome, as fingerprint: String) throws -> [UInt8] {
        try Context(home: home.path).signDetached(data, as: fingerprint)
    }

    @Test func agreesWithGPGOnGoodAndChangedData() throws {
        let (home, fingerprint, key) = try signer()
        defer { home.close() }
        let verifier = try #require(Ed25519SigningKey(transferable: key))
        #expect(verifier.fingerprint == fingerprint)
        let gpg = try Context(home: home.path)
        for size in [0, 1, 55, 4096, 100_000] {
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ size) }
            let signature = try sign(data, in: home, as: fingerprint)
            let inProcess = verifier.check(signature: signature, over: data)
            #expect(inProcess.status == .good, "size \(size)")
            #expect(inProcess.signer == fingerprint)
            #expect(try gpg.verifyDetached(signature: signature, data: data).map(\.status) == [.good])

            var changed = data + [0]
            #expect(verifier.check(signature: signature, over: changed).status == .bad)
            #expect(try gpg.verifyDetached(signature: signature, data: changed).map(\.status) == [.bad])
            if !data.isEmpty {
                changed = data
                changed[size / 2] ^= 0x01
                #expect(verifier.check(signature: signature, over: changed).status == .bad)
            }
        }
    }

    @Test func everySignedByteMatters() throws {
        let (home, fingerprint, key) = try signer()
        defer { home.close() }
        let verifier = try #require(Ed25519SigningKey(transferable: key))
        let data = Array("secretc-policy 1\nenvironment production\n".utf8)
        let signature = try sign(data, in: home, as: fingerprint)
        // Flipping any byte either breaks the check or leaves a non-canonical signature (which the bundle verifier refuses).
        for index in signature.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var altered = signature
                altered[index] ^= bit
                let good = verifier.check(signature: altered, over: data).status == .good
                #expect(!good || !SignatureForm.isCanonical(altered, over: data), "byte \(index) bit \(bit)")
            }
        }
    }

    @Test func anotherKeysSignatureIsNotGood() throws {
        let (home, _, key) = try signer("admin")
        defer { home.close() }
        let other = try home.generateKey("mallory")
        let verifier = try #require(Ed25519SigningKey(transferable: key))
        let data = Array("payload".utf8)
        let status = verifier.check(signature: try sign(data, in: home, as: other), over: data).status
        #expect(status == .missingKey)
    }

    /// A key's expiry stops new signatures only: a write signed while the key
    /// was valid stays good after it expires (a user cannot schedule an
    /// outage by letting a key run out).
    @Test func signaturesMadeBeforeExpiryStayGood() throws {
        let (home, fingerprint, key) = try signer(expire: "1d")
        defer { home.close() }
        let verifier = try #require(Ed25519SigningKey(transferable: key))
        let data = Array("payload".utf8)
        let signature = try sign(data, in: home, as: fingerprint)
        #expect(verifier.check(signature: signature, over: data).status == .good)
        let later = Date().addingTimeInterval(2 * 86_400)
        #expect(verifier.check(signature: signature, over: data, now: later).status == .good)
    }

    @Test func revokedKeysAreRefused() throws {
        let (home, fingerprint, _) = try signer()
        defer { home.close() }
        let data = Array("payload".utf8)
        let signature = try sign(data, in: home, as: fingerprint)
        // gpg writes a revocation certificate at key creation, its armor line disarmed by a leading ':'.
        let stored = try String(contentsOfFile: "\(home.path)/openpgp-revocs.d/\(fingerprint).rev", encoding: .utf8)
        let certificate = stored.replacingOccurrences(of: ":-----BEGIN", with: "-----BEGIN")
        try home.gpg(["--import"], input: Array(certificate.utf8))
        let revoked = try home.gpg(["--export", fingerprint])
        let verifier = try #require(Ed25519SigningKey(transferable: revoked))
        #expect(verifier.check(signature: signature, over: data).status == .keyRevoked)
        #expect(try Context(home: home.path).verifyDetached(signature: signature, data: data).map(\.status) == [.keyRevoked])
    }

    @Test func keysItCannotCheckAreLeftToGPG() throws {
        let (rsaHome, _, rsa) = try signer("rsa", algorithm: "rsa2048", usage: "sign")
        defer { rsaHome.close() }
        #expect(Ed25519SigningKey(transferable: rsa) == nil)
        let (home, _, key) = try signer("encrypt-only", algorithm: "ed25519", usage: "cert")
        defer { home.close() }
        #expect(Ed25519SigningKey(transferable: key) == nil, "a primary key whose flags do not allow signing")
        #expect(Ed25519SigningKey(transferable: Array(key.prefix(40))) == nil, "a truncated key")
    }

    /// Found by `scripts/fuzz openpgp-signature`: an empty signature trapped
    /// (the packet reader read byte 0 of nothing). The library is public, so
    /// any bytes must be refused, not crash the service that passed them.
    @Test func emptyAndOneByteInputsAreRefused() throws {
        let (home, fingerprint, key) = try signer()
        defer { home.close() }
        let verifier = try #require(Ed25519SigningKey(transferable: key))
        let data = Array("data".utf8)
        let signature = try sign(data, in: home, as: fingerprint)
        for bytes in [[], [0x88], [0xC2], Array(signature.prefix(1))] as [[UInt8]] {
            #expect(!SignatureForm.isCanonical(bytes, over: data))
            #expect(!SignatureForm.isCanonicalForm(ofCheckedSignature: bytes))
            #expect(verifier.check(signature: bytes, over: data).status != .good)
            #expect(Ed25519SigningKey(transferable: bytes) == nil)
            #expect(Cv25519Recipient(keyData: bytes, subkey: fingerprint) == nil)
            #expect(throws: GPGError.self) { try KeyFile(scanning: bytes) }
        }
    }

    /// Found by `scripts/fuzz openpgp-signature`: the unhashed area is not
    /// signed, so turning its issuer subpacket (16) into an unknown one (48)
    /// left a "good" signature with other bytes. Bundle verification refused
    /// it (requireGood checks the form), the public check did not.
    @Test func alteredUnsignedBytesAreNotGood() throws {
        let (home, fingerprint, key) = try signer()
        defer { home.close() }
        let verifier = try #require(Ed25519SigningKey(transferable: key))
        let data = Array("data".utf8)
        let signature = try sign(data, in: home, as: fingerprint)
        #expect(verifier.check(signature: signature, over: data).status == .good)
        // v4 signature body: version, type, algorithms, hashed length and area, then the unhashed area.
        let body = signature[0] & 0x40 != 0 ? 2 : 2 + Int(signature[0] & 0x03)  // new or old one-byte length
        let hashedLength = Int(signature[body + 4]) << 8 | Int(signature[body + 5])
        let unhashed = body + 6 + hashedLength  // its two-byte length, then subpackets
        #expect(signature[unhashed + 3] == 16, "gpg puts the issuer key id in the unhashed area")
        var altered = signature
        altered[unhashed + 3] = 48
        #expect(!SignatureForm.isCanonicalForm(ofCheckedSignature: altered))
        #expect(verifier.check(signature: altered, over: data).status != .good)
    }
}
