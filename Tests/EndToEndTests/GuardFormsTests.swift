import Foundation
import SecretCompiler
import TestSupport
import Testing

/// Issue 27, finding 8: the forms a secret key takes when someone pastes it
/// where it does not belong. Each must be found by `secretc guard`; the
/// public key in the same forms, and prose naming the armor header, must not.
@Suite("the guard finds secret keys in every form")
struct GuardFormsTests {
    static let home = try! TemporaryGPGHome()
    static let fingerprint = try! home.generateKey("leaky")
    static let armored = try! home.exportSecret(fingerprint)
    static let binary = try! home.gpg(["--passphrase", "", "--export-secret-keys", fingerprint])
    static let publicArmored = try! home.exportPublic(fingerprint)

    static func forms(_ armored: String, binary: [UInt8]) -> [(String, String)] {
        let escaped = armored.replacingOccurrences(of: "\n", with: "\\n")
        let indented = armored.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        return [
            ("a JSON file", "{\n  \"name\": \"deploy\",\n  \"gpg_key\": \"\(escaped)\"\n}\n"),
            ("a .env line", "APP=1\nGPG_PRIVATE_KEY=\"\(armored)\"\nOTHER=2\n"),
            ("a .env line, escaped", "GPG_PRIVATE_KEY=\"\(escaped)\"\n"),
            ("a Kubernetes Secret of a binary key",
             "apiVersion: v1\nkind: Secret\ndata:\n  key.gpg: \(Data(binary).base64EncodedString())\n"),
            ("a Python string", "KEY = \"\(escaped)\"\n"),
            ("a Python triple-quoted string", "KEY = \"\"\"\(armored)\"\"\"\n"),
            ("a YAML block", "runtime:\n  key: |\n\(indented)\n"),
        ]
    }

    @Test(arguments: forms(armored, binary: binary).map(\.0))
    func aSecretKeyIsFound(in form: String) throws {
        let text = try #require(Self.forms(Self.armored, binary: Self.binary).first { $0.0 == form }?.1)
        #expect(CommitGuard.holdsSecretKey(Array(text.utf8)), "\(form)")
    }

    @Test func publicKeysAndProseAreNot() throws {
        let publicBinary = try Self.home.gpg(["--export", Self.fingerprint])
        for (form, text) in Self.forms(Self.publicArmored, binary: publicBinary) {
            #expect(!CommitGuard.holdsSecretKey(Array(text.utf8)), "\(form)")
        }
        let prose = "Never commit a block that starts with -----BEGIN PGP PRIVATE KEY BLOCK----- anywhere.\n"
        #expect(!CommitGuard.holdsSecretKey(Array(prose.utf8)))
    }
}
