import Foundation
@testable import GPG
import TestSupport
import Testing

/// gpg is the reference: every message here is also decrypted by gpg, and
/// the in-process result must be gpg's (the same plaintext, or a refusal
/// where gpg fails); only what the decryptor declines is left to gpg.
@Suite("In-process decryption with Curve25519 keys, checked against gpg")
struct Cv25519DecryptorTests {
    /// A runtime key: its home, fingerprint, unprotected armored secret key, and a decryptor over it.
    private struct RuntimeKey {
        let home: TemporaryGPGHome
        let fingerprint: String
        let decryptor: Cv25519Decryptor
        let recipient: Cv25519Recipient

        init(_ name: String) throws {
            home = try TemporaryGPGHome()
            fingerprint = try home.generateKey(name)
            decryptor = try #require(Cv25519Decryptor(secretKeys: Array(try home.exportSecret(fingerprint).utf8)))
            let lister = try TemporaryGPGHome()
            let data = Array(try home.exportPublic(fingerprint).utf8)
            let subkey = try #require(try Context(home: lister.path).keys(in: data).first?.encryptionSubkey)
            recipient = try #require(Cv25519Recipient(keyData: data, subkey: subkey))
        }

        /// gpg's verdict on `message` in this key's home: the plaintext, or nil when it fails.
        func gpgPlaintext(_ message: [UInt8]) -> [UInt8]? {
            try? Context(home: home.path).decrypt(message, limit: 64).withUnsafeBytes { Array($0) }
        }
    }

    private static let dataKey = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 29 &+ 3) }

    private func plaintext(_ outcome: Cv25519Decryptor.Outcome) -> [UInt8]? {
        guard case .plaintext(let bytes) = outcome else { return nil }
        return bytes.withUnsafeBytes { Array($0) }
    }

    @Test func opensWhatTheInProcessWriterEncryptsToEachRecipient() throws {
        let first = try RuntimeKey("runtime-a")
        let second = try RuntimeKey("runtime-b")
        let stranger = try RuntimeKey("stranger")
        let encryptor = Cv25519Encryptor(recipients: [first.fingerprint: first.recipient, second.fingerprint: second.recipient])
        let message = try Self.dataKey.withUnsafeBytes { try encryptor.encrypt($0, to: [first.fingerprint, second.fingerprint]) }
        for key in [first, second] {
            #expect(plaintext(key.decryptor.decrypt(message, limit: 32)) == Self.dataKey)
            #expect(key.gpgPlaintext(message) == Self.dataKey)
        }
        guard case .refused = stranger.decryptor.decrypt(message, limit: 32) else {
            Issue.record("a key the message is not encrypted to opened it")
            return
        }
        #expect(stranger.gpgPlaintext(message) == nil)
    }

    /// What gpg itself writes, with each AES key size, a hidden recipient,
    /// and gpg's default compression (declined: gpg opens that).
    @Test func opensWhatGPGEncrypts() throws {
        let key = try RuntimeKey("runtime")
        for options in [
            ["--compress-algo", "none", "--cipher-algo", "AES256"],
            ["--compress-algo", "none", "--cipher-algo", "AES192"],
            ["--compress-algo", "none", "--cipher-algo", "AES"],
            ["--compress-algo", "none", "--throw-keyids"],
        ] {
            let message = try key.home.gpg(
                ["--trust-model", "always", "--encrypt", "--recipient", key.fingerprint] + options, input: Self.dataKey)
            #expect(plaintext(key.decryptor.decrypt(message, limit: 32)) == Self.dataKey, "\(options)")
        }
        let camellia = try key.home.gpg(
            ["--trust-model", "always", "--compress-algo", "none", "--cipher-algo", "CAMELLIA256", "--encrypt",
             "--recipient", key.fingerprint], input: Self.dataKey)
        guard case .declined = key.decryptor.decrypt(camellia, limit: 32) else {
            Issue.record("a cipher other than AES was not left to gpg")
            return
        }
        let compressed = try key.home.gpg(
            ["--trust-model", "always", "--compress-algo", "zlib", "--encrypt", "--recipient", key.fingerprint],
            input: Self.dataKey)
        if case .plaintext = key.decryptor.decrypt(compressed, limit: 32) {
            Issue.record("a compressed payload was read in process")
        }
    }

    /// Every single-byte change to a message: wherever the decryptor
    /// decides, gpg decides the same (the same plaintext, or a failure).
    @Test func agreesWithGPGOnEveryAlteredByte() throws {
        let key = try RuntimeKey("runtime")
        let encryptor = Cv25519Encryptor(recipients: [key.fingerprint: key.recipient])
        let message = try Self.dataKey.withUnsafeBytes { try encryptor.encrypt($0, to: [key.fingerprint]) }
        var decided = 0
        for position in message.indices {
            var altered = message
            altered[position] ^= 0x01
            let outcome = key.decryptor.decrypt(altered, limit: 32)
            if case .declined = outcome { continue }
            decided += 1
            #expect(plaintext(outcome) == key.gpgPlaintext(altered), "byte \(position)")
        }
        #expect(decided > message.count / 2)
    }

    /// With the key in a GnuPG home, gpg-agent makes the agreement over its
    /// socket (no gpg process): the same verdicts as gpg's, byte by byte.
    @Test func theAgentRouteAgreesWithGPG() throws {
        let key = try RuntimeKey("runtime")
        let agent = try #require(Cv25519Decryptor(agentOf: key.home.path))
        #expect(agent.fingerprints == key.decryptor.fingerprints)
        let encryptor = Cv25519Encryptor(recipients: [key.fingerprint: key.recipient])
        let message = try Self.dataKey.withUnsafeBytes { try encryptor.encrypt($0, to: [key.fingerprint]) }
        #expect(plaintext(agent.decrypt(message, limit: 32)) == Self.dataKey)
        let byGPG = try key.home.gpg(
            ["--trust-model", "always", "--compress-algo", "none", "--encrypt", "--recipient", key.fingerprint], input: Self.dataKey)
        #expect(plaintext(agent.decrypt(byGPG, limit: 32)) == Self.dataKey)
        var decided = 0
        for position in message.indices {
            var altered = message
            altered[position] ^= 0x01
            let outcome = agent.decrypt(altered, limit: 32)
            if case .declined = outcome { continue }  // e.g. the agent refuses a damaged point: gpg decides
            decided += 1
            #expect(plaintext(outcome) == key.gpgPlaintext(altered), "byte \(position)")
        }
        #expect(decided > message.count / 3)
    }

    /// A protected key whose passphrase the agent does not hold never starts
    /// a pinentry: the message is declined, and gpg decides.
    @Test func theAgentRouteDeclinesALockedKey() throws {
        let home = try TemporaryGPGHome()
        let fingerprint = try home.generateKey("protected", passphrase: "secret")
        _ = try run("/usr/bin/env", ["gpgconf", "--homedir", home.path, "--reload", "gpg-agent"])  // forgets the passphrase
        let data = Array(try home.exportPublic(fingerprint).utf8)
        let lister = try TemporaryGPGHome()
        let subkey = try #require(try Context(home: lister.path).keys(in: data).first?.encryptionSubkey)
        let recipient = try #require(Cv25519Recipient(keyData: data, subkey: subkey))
        let message = try Self.dataKey.withUnsafeBytes {
            try Cv25519Encryptor(recipients: [fingerprint: recipient]).encrypt($0, to: [fingerprint])
        }
        let agent = try #require(Cv25519Decryptor(agentOf: home.path))
        guard case .declined = agent.decrypt(message, limit: 32) else {
            Issue.record("a locked key's message was decided without gpg")
            return
        }
    }

    /// A payload that is itself encrypted (gpg would ask the runtime for a
    /// passphrase) and a data key longer than the limit are refused.
    @Test func refusesNestedEncryptionAndOverlongPlaintext() throws {
        let key = try RuntimeKey("runtime")
        let encryptor = Cv25519Encryptor(recipients: [key.fingerprint: key.recipient])
        let symmetric = try key.home.gpg(["--passphrase", "p", "--symmetric"], input: Self.dataKey)
        let nested = try encryptor.encrypt(payload: symmetric, to: [key.recipient])
        guard case .refused(let reason) = key.decryptor.decrypt(nested, limit: 32) else {
            Issue.record("a nested encrypted message was not refused")
            return
        }
        #expect(reason.contains("itself encrypted"))
        let long = try [UInt8](repeating: 7, count: 33).withUnsafeBytes { try encryptor.encrypt($0, to: [key.fingerprint]) }
        guard case .refused = key.decryptor.decrypt(long, limit: 32) else {
            Issue.record("33 bytes passed a 32-byte limit")
            return
        }
    }

    /// Only unprotected Curve25519 keys are read; anything else is gpg's.
    @Test func readsOnlyUnprotectedCurve25519Keys() throws {
        let home = try TemporaryGPGHome()
        let protected = try home.generateKey("protected", passphrase: "secret")
        #expect(Cv25519Decryptor(secretKeys: Array(try home.exportSecret(protected, passphrase: "secret").utf8)) == nil)
        let rsa = try home.generateKey("rsa", algorithm: "rsa2048")
        #expect(Cv25519Decryptor(secretKeys: Array(try home.exportSecret(rsa).utf8)) == nil)
        #expect(Cv25519Decryptor(secretKeys: Array(try home.exportPublic(rsa).utf8)) == nil)
        #expect(Cv25519Decryptor(secretKeys: []) == nil)
    }

    /// With an RSA key beside the Curve25519 one, a message to the RSA key is gpg's.
    @Test func leavesMessagesToOtherSecretKeysToGPG() throws {
        let key = try RuntimeKey("runtime")
        let rsa = try key.home.generateKey("rsa", algorithm: "rsa2048", usage: "sign,encr")
        let both = Array(try key.home.exportSecret(key.fingerprint).utf8) + Array(try key.home.exportSecret(rsa).utf8)
        let decryptor = try #require(Cv25519Decryptor(secretKeys: both))
        let message = try key.home.gpg(
            ["--trust-model", "always", "--compress-algo", "none", "--encrypt", "--recipient", rsa], input: Self.dataKey)
        guard case .declined = decryptor.decrypt(message, limit: 32) else {
            Issue.record("a message to an RSA key was decided in process")
            return
        }
        #expect(key.gpgPlaintext(message) == Self.dataKey)
    }
}
