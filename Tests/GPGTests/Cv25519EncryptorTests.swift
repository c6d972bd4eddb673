import Foundation
import GPG
import TestSupport
import Testing

@Suite("In-process encryption to Curve25519 keys, read back by gpg")
struct Cv25519EncryptorTests {
    /// The key in `home` as a writer sees it: gpg's listing of its exported public key.
    private func listed(_ fingerprint: String, in home: TemporaryGPGHome) throws -> (info: KeyInfo, data: [UInt8]) {
        let data = Array(try home.exportPublic(fingerprint).utf8)
        let lister = try TemporaryGPGHome()
        let info = try #require(try Context(home: lister.path).keys(in: data).first)
        return (info, data)
    }

    private func recipient(_ key: (info: KeyInfo, data: [UInt8])) throws -> Cv25519Recipient {
        let subkey = try #require(key.info.encryptionSubkey)
        return try #require(Cv25519Recipient(keyData: key.data, subkey: subkey))
    }

    @Test func gpgDecryptsWhatIsEncryptedToEachRecipient() throws {
        let one = try TemporaryGPGHome()
        let two = try TemporaryGPGHome()
        let first = try listed(try one.generateKey("runtime-a"), in: one)
        let second = try listed(try two.generateKey("runtime-b"), in: two)
        let encryptor = Cv25519Encryptor(recipients: [
            first.info.fingerprint: try recipient(first), second.info.fingerprint: try recipient(second),
        ])
        let dataKey = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        let message = try dataKey.withUnsafeBytes {
            try encryptor.encrypt($0, to: [first.info.fingerprint, second.info.fingerprint])
        }
        #expect(message.firstRange(of: dataKey) == nil)
        for home in [one, two] {
            let plaintext = try Context(home: home.path).decrypt(message)
            #expect(plaintext.withUnsafeBytes { Array($0) } == dataKey)
        }
        // The gpg command line agrees, and finds the integrity protection intact.
        let output = try one.gpg(["--decrypt"], input: message)
        #expect(output == dataKey)
        // Fresh randomness every time: no two messages share a byte pattern.
        let again = try dataKey.withUnsafeBytes { try encryptor.encrypt($0, to: [first.info.fingerprint]) }
        #expect(again != Array(message.prefix(again.count)))
    }

    /// Packet lengths take one, two or five bytes: each kind reads back.
    @Test func messagesOfEveryLengthClassReadBack() throws {
        let home = try TemporaryGPGHome()
        let key = try listed(try home.generateKey("runtime"), in: home)
        let encryptor = Cv25519Encryptor(recipients: [key.info.fingerprint: try recipient(key)])
        let context = try Context(home: home.path)
        for count in [0, 1, 185, 186, 300, 8_400, 70_000] {
            let plaintext = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let message = try plaintext.withUnsafeBytes { try encryptor.encrypt($0, to: [key.info.fingerprint]) }
            #expect(try context.decrypt(message).withUnsafeBytes { Array($0) } == plaintext, "\(count) bytes")
        }
    }

    @Test func encryptsToTheSubkeyGpgWouldChoose() throws {
        let home = try TemporaryGPGHome()
        let fingerprint = try home.generateKey("runtime")
        // A newer encryption subkey, and a newest one that expires at once:
        // gpg encrypts to the newest valid one (creation times are in seconds).
        sleep(1)
        try home.gpg(["--passphrase", "", "--quick-add-key", fingerprint, "cv25519", "encr", "never"])
        sleep(1)
        try home.gpg(["--passphrase", "", "--quick-add-key", fingerprint, "cv25519", "encr", "seconds=1"])
        sleep(2)
        let key = try listed(fingerprint, in: home)
        #expect(key.info.subkeyFingerprints.count == 4)
        #expect(key.info.encryptionSubkey == key.info.subkeyFingerprints[2], "\(key.info.subkeyFingerprints)")

        let writerHome = try TemporaryGPGHome()
        let writer = try Context(home: writerHome.path)
        try writer.importKeys(key.data)
        let byGPG = try writer.encrypt([1, 2, 3], to: [fingerprint])
        let inProcess = try [UInt8]([1, 2, 3]).withUnsafeBytes {
            try Cv25519Encryptor(recipients: [fingerprint: try recipient(key)]).encrypt($0, to: [fingerprint])
        }
        // Both messages open with a session key packet naming the same subkey.
        #expect(try sessionKeyID(byGPG) == sessionKeyID(inProcess))
        #expect(try Context(home: home.path).decrypt(inProcess).withUnsafeBytes { Array($0) } == [1, 2, 3])
    }

    /// The key id in the public-key encrypted session key packet that opens `message`.
    private func sessionKeyID(_ message: [UInt8]) throws -> [UInt8] {
        let header = message[0]
        let tag = header & 0x40 != 0 ? header & 0x3F : header >> 2 & 0x0F
        try #require(tag == 1)
        // gpg writes an old-format header with a one-byte length (2 bytes), this type a new-format one (2 bytes).
        try #require(header & 0x40 != 0 || header & 0x03 == 0)
        try #require(message[2] == 3, "version 3")
        return Array(message[3..<11])
    }

    @Test func onlyCurve25519EncryptionSubkeysAreTaken() throws {
        let home = try TemporaryGPGHome()
        let legacy = try home.generateKey("legacy", algorithm: "rsa2048")
        try home.gpg(["--passphrase", "", "--quick-add-key", legacy, "rsa2048", "encr", "never"])
        let rsa = try listed(legacy, in: home)
        let rsaSubkey = try #require(rsa.info.encryptionSubkey)
        #expect(Cv25519Recipient(keyData: rsa.data, subkey: rsaSubkey) == nil)

        let modern = try listed(try home.generateKey("modern"), in: home)
        // The primary key signs: it is not an encryption subkey.
        #expect(Cv25519Recipient(keyData: modern.data, subkey: modern.info.fingerprint) == nil)
        // A subkey of another key is not found in this one.
        #expect(Cv25519Recipient(keyData: modern.data, subkey: rsaSubkey) == nil)
        #expect(Cv25519Recipient(keyData: Array("not a key".utf8), subkey: rsaSubkey) == nil)

        let signOnly = try listed(try home.generateKey("signer", algorithm: "ed25519", usage: "sign"), in: home)
        #expect(signOnly.info.encryptionSubkey == nil)
    }

    @Test func anUnknownRecipientIsRefused() throws {
        let home = try TemporaryGPGHome()
        let key = try listed(try home.generateKey("runtime"), in: home)
        let encryptor = Cv25519Encryptor(recipients: [key.info.fingerprint: try recipient(key)])
        #expect(throws: GPGError.keyNotFound("0123456789ABCDEF0123456789ABCDEF01234567")) {
            try [UInt8](repeating: 0, count: 32).withUnsafeBytes {
                try encryptor.encrypt($0, to: ["0123456789ABCDEF0123456789ABCDEF01234567"])
            }
        }
    }
}
