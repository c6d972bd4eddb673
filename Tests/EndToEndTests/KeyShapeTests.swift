import Foundation
import TestSupport
import Testing

/// The key shapes teams have, for the admin, a user and the runtime alike:
/// each shape replaces the example's ops, alice and runtime-production keys,
/// and compile, set (as admin and as the user), check, get and exec run
/// with them. gpg is the reference for every shape the in-process checks
/// do not read (they hand those to gpg, never refuse them).
@Suite("key shapes: compile, set, check, get and exec")
struct KeyShapeTests {
    enum Shape: String, CaseIterable, CustomTestStringConvertible {
        /// Ed25519 primary that signs, and a newer Ed25519 signing subkey (gpg signs with the subkey).
        case signingPrimaryAndNewerSigningSubkey
        /// RSA-3072 primary that signs, RSA encryption subkey.
        case rsa
        /// Certify-only Ed25519 primary, Ed25519 signing and Cv25519 encryption subkeys.
        case certifyOnlyPrimary
        /// The same, with only the secret subkeys at hand (primary kept offline).
        case secretSubkeysOnly
        /// NIST P-256 (ECDSA primary, ECDH subkey).
        case nistP256
        /// gpg's default shape with a passphrase (given in SECRETC_GPG_PASSPHRASE).
        case passphraseProtected

        var testDescription: String { rawValue }
    }

    static let passphrase = "correct horse battery staple"

    /// A home holding `name`'s secret key of `shape` (only its subkeys'
    /// for ``Shape/secretSubkeysOnly``), and the armored public key.
    func makeKey(_ name: String, _ shape: Shape) throws -> (home: TemporaryGPGHome, publicKey: String, fingerprint: String) {
        let home = try TemporaryGPGHome()
        let uid = "\(name) <\(name)@example.invalid>"
        func add(_ fingerprint: String, _ algorithm: String, _ usage: String, passphrase: String = "") throws {
            try home.gpg(["--passphrase", passphrase, "--quick-add-key", fingerprint, algorithm, usage, "never"])
        }
        switch shape {
        case .signingPrimaryAndNewerSigningSubkey:
            // The primary a day older, so that the signing subkey is the newer one.
            let yesterday = Int(Date().timeIntervalSince1970) - 86_400
            try home.gpg(["--faked-system-time", "\(yesterday)!", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign,cert", "never"])
            let fingerprint = try home.fingerprint(of: "\(name)@example.invalid")
            try add(fingerprint, "ed25519", "sign")
            try add(fingerprint, "cv25519", "encr")
            return (home, try home.exportPublic(fingerprint), fingerprint)
        case .rsa:
            let fingerprint = try home.generateKey(name, algorithm: "rsa3072", usage: "sign,cert")
            try add(fingerprint, "rsa3072", "encr")
            return (home, try home.exportPublic(fingerprint), fingerprint)
        case .certifyOnlyPrimary, .secretSubkeysOnly:
            let fingerprint = try home.generateKey(name, algorithm: "ed25519", usage: "cert")
            try add(fingerprint, "ed25519", "sign")
            try add(fingerprint, "cv25519", "encr")
            let publicKey = try home.exportPublic(fingerprint)
            guard shape == .secretSubkeysOnly else { return (home, publicKey, fingerprint) }
            let subkeys = try home.gpg(["--passphrase", "", "--export-secret-subkeys", fingerprint])
            let offline = try TemporaryGPGHome()
            try offline.gpg(["--import"], input: subkeys)
            home.close()
            return (offline, publicKey, fingerprint)
        case .nistP256:
            let fingerprint = try home.generateKey(name, algorithm: "nistp256", usage: "sign,cert")
            try add(fingerprint, "nistp256", "encr")
            return (home, try home.exportPublic(fingerprint), fingerprint)
        case .passphraseProtected:
            let fingerprint = try home.generateKey(name, passphrase: Self.passphrase)
            return (home, try home.exportPublic(fingerprint), fingerprint)
        }
    }

    @Test(arguments: Shape.allCases)
    func everyCommandWorksWith(_ shape: Shape) throws {
        let deployment = try ExampleDeployment()
        let (ops, alice, runtime) = (try makeKey("ops", shape), try makeKey("alice", shape), try makeKey("runtime-production", shape))
        defer { [ops.home, alice.home, runtime.home].forEach { $0.close() } }
        for (name, key) in [("ops", ops), ("alice", alice), ("runtime-production", runtime)] {
            try key.publicKey.write(to: deployment.root.appendingPathComponent("keys/\(name).asc"), atomically: true, encoding: .utf8)
        }
        for environment in ["production", "staging"] {
            try FileManager.default.removeItem(at: deployment.root.appendingPathComponent("secrets/\(environment).bundle"))
        }
        var environment = ["SECRETC_TRUSTED_ADMINS": ops.fingerprint]
        if shape == .passphraseProtected { environment["SECRETC_GPG_PASSPHRASE"] = Self.passphrase }
        func secretc(_ arguments: [String], _ home: TemporaryGPGHome? = nil) throws -> ProcessResult {
            let result = try deployment.secretc(arguments, home: home, environment: environment)
            #expect(result.status == 0, "\(shape): secretc \(arguments.joined(separator: " ")): \(result.stderrText)\(result.stdoutText)")
            return result
        }

        _ = try secretc(["compile", "--env", "production", "--as", "ops"], ops.home)
        _ = try secretc(["compile", "--env", "staging", "--as", "ops"], ops.home)
        _ = try secretc(["check"])
        _ = try secretc(["set", "github", "--env", "production", "APP_ID=777"], ops.home)
        _ = try secretc(
            ["set", "shopify", "--user", "alice", "--env", "production", "--as", "alice", "STORE_DOMAIN=shape.myshopify.com"],
            alice.home)
        _ = try secretc(["check"])
        #expect(try secretc(["get", "github", "APP_ID", "--env", "production"], runtime.home).stdoutText == "777")
        #expect(try secretc(["get", "shopify", "STORE_DOMAIN", "--user", "alice", "--env", "production"], runtime.home)
            .stdoutText == "shape.myshopify.com")
        let exec = try secretc(["exec", "--env", "production", "--", "/bin/sh", "-c", "echo $GITHUB_APP_ID"], runtime.home)
        #expect(exec.stdoutText == "777\n")
    }
}
