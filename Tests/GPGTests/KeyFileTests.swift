import Foundation
import GPG
import TestSupport
import Testing

@Suite("key file scan")
struct KeyFileTests {
    @Test func computesTheSameFingerprintAsGPG() throws {
        let home = try TemporaryGPGHome()
        let ed = try home.generateKey("ed")
        let rsa = try home.generateKey("rsa", algorithm: "rsa2048", usage: "default")
        for fingerprint in [ed, rsa] {
            let armored = Array(try home.exportPublic(fingerprint).utf8)
            let file = try KeyFile(scanning: armored)
            #expect(file.kind == .publicKey)
            #expect(file.fingerprints == [fingerprint])
            let binary = try home.gpg(["--export", fingerprint])
            #expect(try KeyFile(scanning: binary).fingerprints == [fingerprint])
        }
        let both = Array((try home.exportPublic(ed) + home.exportPublic(rsa)).utf8)
        // Two armored blocks: the scan reads the first block only, gpg reads both.
        #expect(try KeyFile(scanning: both).primaryKeyCount >= 1)
    }

    @Test func recognisesSecretKeys() throws {
        let home = try TemporaryGPGHome()
        let fingerprint = try home.generateKey("ops")
        let file = try KeyFile(scanning: Array(try home.exportSecret(fingerprint).utf8))
        #expect(file.kind == .secretKey)
        #expect(file.fingerprints == [fingerprint])
    }

    @Test(arguments: [
        ("", "the file is empty"),
        ("hello", "no '-----BEGIN PGP' armor line"),
        ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF", "the armor is not closed"),
        ("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!\n-----END PGP PUBLIC KEY BLOCK-----\n",
         "the armored body is not valid base64"),
    ])
    func rejectsNonKeys(text: String, reason: String) {
        #expect(throws: GPGError.invalidData(reason)) { try KeyFile(scanning: Array(text.utf8)) }
    }

    @Test func rejectsTruncatedPackets() throws {
        let home = try TemporaryGPGHome()
        let fingerprint = try home.generateKey("t")
        let binary = try home.gpg(["--export", fingerprint])
        #expect(throws: GPGError.self) { try KeyFile(scanning: Array(binary.prefix(20))) }
    }
}
