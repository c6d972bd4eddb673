import Foundation
import GPG
import TestSupport
import Testing

@Suite("gpgme wrapper against real gpg")
struct ContextTests {
    /// gpg reports a signature by a key that has expired since as
    /// `keyExpired`; the check says when the key expired, so a signature
    /// made before that can still be honoured (finding 9, gpg's path).
    @Test func aSignatureMadeBeforeItsKeyExpiredSaysWhenTheKeyExpired() throws {
        let home = try TemporaryGPGHome()
        defer { home.close() }
        let context = try Context(home: home.path)
        let key = try context.generateKey(userID: "brief <brief@example.invalid>", expires: 2)
        let payload = Array("secretc-epoch 2\n".utf8)
        let signature = try context.signDetached(payload, as: key.fingerprint)
        Thread.sleep(forTimeInterval: 3.2)
        let checks = try context.verifyDetached(signature: signature, data: payload)
        #expect(checks.count == 1)
        #expect(checks.first?.status == .keyExpired)
        #expect(checks.first?.signer == key.fingerprint)
        let expired = try #require(checks.first?.keyExpired)
        #expect(checks.first!.timestamp < expired && expired <= Int(Date().timeIntervalSince1970))
    }

    @Test func importsAndDescribesAKey() throws {
        let source = try TemporaryGPGHome()
        let fingerprint = try source.generateKey("alice")
        let home = try TemporaryGPGHome()
        let context = try Context(home: home.path)
        let imported = try context.importKeys(Array(try source.exportPublic(fingerprint).utf8))
        #expect(imported == [fingerprint])
        let key = try context.key(fingerprint)
        #expect(key.fingerprint == fingerprint)
        #expect(key.userIDs == ["alice <alice@example.invalid>"])
        #expect(key.canEncrypt && key.canSign)
        #expect(!key.hasSecret && !key.isRevoked && !key.isExpired)
        #expect(key.expires == nil)
        #expect(key.subkeyFingerprints.count == 2)
        // A subkey fingerprint finds the same key.
        #expect(try context.key(key.subkeyFingerprints[1]).fingerprint == fingerprint)
    }

    @Test func listsKeysInDataWithoutImporting() throws {
        let source = try TemporaryGPGHome()
        let alice = try source.generateKey("alice")
        let signer = try source.generateKey("signer", algorithm: "ed25519", usage: "sign")
        let home = try TemporaryGPGHome()
        let context = try Context(home: home.path)
        let bundle = Array((try source.exportPublic(alice) + source.exportPublic(signer)).utf8)
        let keys = try context.keys(in: bundle)
        #expect(keys.map(\.fingerprint) == [alice, signer])
        #expect(keys[1].canSign && !keys[1].canEncrypt)
        #expect(try context.listKeys().isEmpty, "listing from data must not import")
    }

    @Test func encryptsToSeveralRecipientsAndEachDecrypts() throws {
        let one = try TemporaryGPGHome()
        let two = try TemporaryGPGHome()
        let first = try one.generateKey("runtime-a")
        let second = try two.generateKey("runtime-b")
        let writerHome = try TemporaryGPGHome()
        let writer = try Context(home: writerHome.path)
        try writer.importKeys(Array((try one.exportPublic(first) + two.exportPublic(second)).utf8))
        let plaintext = Array("sk_live_51Hxyz".utf8)
        let message = try writer.encrypt(plaintext, to: [first, second])
        #expect(!message.isEmpty)
        #expect(message.firstRange(of: plaintext) == nil)
        #expect(throws: GPGError.noSecretKey("any recipient of the message"), "the writer holds no secret key") {
            try writer.decrypt(message)
        }
        for home in [one, two] {
            let reader = try Context(home: home.path)
            #expect(try reader.decrypt(message).utf8String() == "sk_live_51Hxyz")
        }
    }

    @Test func decryptWithoutTheKeyNamesTheProblem() throws {
        let owner = try TemporaryGPGHome()
        let fingerprint = try owner.generateKey("runtime")
        let stranger = try TemporaryGPGHome()
        let context = try Context(home: stranger.path)
        try context.importKeys(Array(try owner.exportPublic(fingerprint).utf8))
        let message = try context.encrypt(Array("v".utf8), to: [fingerprint])
        #expect(throws: GPGError.noSecretKey("any recipient of the message")) { try context.decrypt(message) }
        #expect(throws: GPGError.invalidData("no encrypted OpenPGP message found")) {
            try context.decrypt(Array("not a message".utf8))
        }
    }

    @Test func refusesRecipientsThatCannotEncrypt() throws {
        let home = try TemporaryGPGHome()
        let signer = try home.generateKey("signer", algorithm: "ed25519", usage: "sign")
        let context = try Context(home: home.path)
        #expect(throws: GPGError.unusableKey(fingerprint: signer, reason: "it has no valid subkey that can encrypt")) {
            try context.encrypt(Array("x".utf8), to: [signer])
        }
        #expect(throws: GPGError.keyNotFound("0000000000000000000000000000000000000000")) {
            try context.encrypt(Array("x".utf8), to: ["0000000000000000000000000000000000000000"])
        }
    }

    @Test func signsAndVerifiesDetached() throws {
        let home = try TemporaryGPGHome()
        let admin = try home.generateKey("admin")
        let context = try Context(home: home.path)
        let data = Array("policy v1\n".utf8)
        let signature = try context.signDetached(data, as: admin)
        let checks = try context.verifyDetached(signature: signature, data: data)
        #expect(checks.map(\.status) == [.good])
        #expect(checks.map(\.signer) == [admin])
        #expect(checks[0].timestamp > 0)

        var tampered = data
        tampered[0] ^= 1
        #expect(try context.verifyDetached(signature: signature, data: tampered).map(\.status) == [.bad])

        let verifierHome = try TemporaryGPGHome()
        let verifier = try Context(home: verifierHome.path)
        #expect(try verifier.verifyDetached(signature: signature, data: data).map(\.status) == [.missingKey])
        #expect(throws: GPGError.invalidData("no valid OpenPGP signature found")) {
            try verifier.verifyDetached(signature: Array("garbage".utf8), data: data)
        }
    }

    @Test func signingWithoutALookUpStillSaysWhyAKeyCannotSign() throws {
        let home = try TemporaryGPGHome()
        let admin = try home.generateKey("admin")
        let expired = try home.generateKey("old", expire: "seconds=1")
        let elsewhere = try TemporaryGPGHome()
        let stranger = try elsewhere.generateKey("stranger")
        try home.gpg(["--import"], input: Array(try elsewhere.exportPublic(stranger).utf8))
        sleep(2)
        let context = try Context(home: home.path)
        let data = Array("epoch\n".utf8)
        // Only the public half is here.
        #expect(throws: GPGError.noSecretKey(stranger)) { try context.signDetached(data, as: stranger) }
        // Nor anywhere: an unknown fingerprint.
        let unknown = String(repeating: "AB", count: 20)
        #expect(throws: GPGError.noSecretKey(unknown)) { try context.signDetached(data, as: unknown) }
        #expect(throws: GPGError.unusableKey(fingerprint: expired, reason: "it expired")) {
            try context.signDetached(data, as: expired)
        }
        #expect(throws: GPGError.keyNotFound("ADMIN (not a fingerprint)")) { try context.signDetached(data, as: "ADMIN") }
        // The same context still signs with a usable key afterwards.
        let signature = try context.signDetached(data, as: admin)
        #expect(try context.verifyDetached(signature: signature, data: data).map(\.signer) == [admin])
    }

    @Test func signsWithTheKeysSigningSubkey() throws {
        let home = try TemporaryGPGHome()
        let admin = try home.generateKey("admin")
        sleep(1)
        try home.gpg(["--passphrase", "", "--quick-add-key", admin, "ed25519", "sign", "never"])
        let data = Array("epoch\n".utf8)
        let signature = try Context(home: home.path).signDetached(data, as: admin)
        let checks = try Context(home: home.path).verifyDetached(signature: signature, data: data)
        #expect(checks.map(\.status) == [.good])
        #expect(checks.map(\.signer) == [admin], "a subkey's signature is reported as its primary key's")
    }

    @Test func passphraseProtectedKeys() throws {
        let home = try TemporaryGPGHome()
        let fingerprint = try home.generateKey("ops", passphrase: "correct horse")
        // Kill the agent so no passphrase is cached from key generation.
        _ = try run("/usr/bin/env", ["gpgconf", "--homedir", home.path, "--kill", "gpg-agent"])
        let data = Array("x".utf8)
        #expect(throws: GPGError.passphraseRequired(key: fingerprint)) {
            try Context(home: home.path).signDetached(data, as: fingerprint)
        }
        #expect(throws: GPGError.badPassphrase(key: fingerprint)) {
            try Context(home: home.path, passphrase: "wrong").signDetached(data, as: fingerprint)
        }
        let signature = try Context(home: home.path, passphrase: "correct horse").signDetached(data, as: fingerprint)
        #expect(try Context(home: home.path).verifyDetached(signature: signature, data: data).map(\.status) == [.good])
    }

    @Test func generatesExportsAndReimportsKeys() throws {
        let home = try TemporaryGPGHome()
        let context = try Context(home: home.path)
        let key = try context.generateKey(userID: "runtime-production <secretc@localhost>")
        #expect(key.canEncrypt && key.canSign && key.hasSecret && key.expires == nil)
        let armoredPublic = try context.exportPublicKey(key.fingerprint)
        #expect(armoredPublic.hasPrefix("-----BEGIN PGP PUBLIC KEY BLOCK-----"))
        let armoredSecret = try context.exportSecretKey(key.fingerprint)
        #expect(armoredSecret.hasPrefix("-----BEGIN PGP PRIVATE KEY BLOCK-----"))

        let other = try TemporaryGPGHome()
        let second = try Context(home: other.path)
        try second.importKeys(Array(armoredSecret.utf8))
        #expect(try second.key(key.fingerprint, secret: true).hasSecret)
        let expiring = try context.generateKey(userID: "short <s@localhost>", expires: 86_400)
        #expect(expiring.expires != nil)
    }

    @Test func refusesTooLongHomes() throws {
        let long = "/tmp/" + String(repeating: "h", count: 90)
        #expect(throws: GPGError.homeTooLong(path: long, limit: 86)) { try Context(home: long) }
    }
}
