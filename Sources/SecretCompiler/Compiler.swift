import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretCore
import SecretModel

/// The write and read pipeline for one environment's bundle: compile, set,
/// unset and get. Every check happens before anything is written; a refused
/// or failed write leaves the bundle byte-identical.
public struct Compiler {
    public let project: Project
    public let environment: EnvironmentDeclaration
    public let file: BundleFile
    /// The GnuPG home holding the caller's secret keys (nil: GNUPGHOME or ~/.gnupg).
    public var home: String?
    public var passphrase: String?
    /// Where writes record verified states, to skip loading and verifying next time.
    public var cache: WriteCache?
    /// Told what long work is doing ("sealing 100000 values"), for a terminal's progress line.
    public var progress: ((String) -> Void)?

    /// - Parameter environment: may be nil when the project declares exactly one.
    public init(project: Project, environment: String?, home: String? = nil, passphrase: String? = nil)
        throws(CompilerError)
    {
        let environments = project.declarations.environments
        let chosen = environments[try WriteFacts.choose(environment, among: environments.map(\.name.value))]
        self.project = project
        self.environment = chosen
        self.file = BundleFile(url: chosen.bundleURL)
        self.home = home
        self.passphrase = passphrase
    }

    public var environmentName: String { environment.name.value }

    /// Fingerprints of the declared admins: who `check`, `set` and `compile` trust.
    public var declaredAdmins: Set<String> {
        Set(project.declarations.admins.compactMap { project.keys[$0.value]?.info.fingerprint })
    }

    // MARK: Keys

    func userContext() throws(CompilerError) -> Context {
        try Self.context(home: home, passphrase: passphrase)
    }

    /// The GnuPG home a writer uses, as said in messages: `home`, else
    /// `GNUPGHOME`, else gpg's default.
    static func homeDescription(_ home: String?) -> String {
        if let home = home ?? ProcessInfo.processInfo.environment["GNUPGHOME"], !home.isEmpty { return "GNUPGHOME=\(home)" }
        return "~/.gnupg (GNUPGHOME is not set)"
    }

    /// The one fix when no allowed signer's secret key is here: which keys, where.
    static func importHint(_ names: [String], home: String?) -> String {
        "import the secret key of one of \(names.joined(separator: ", ")) into \(homeDescription(home)), "
            + "or point GNUPGHOME at the home that holds one"
    }

    /// A context on the caller's GnuPG home (nil: GNUPGHOME or gpg's default).
    static func context(home: String?, passphrase: String?) throws(CompilerError) -> Context {
        if let path = home ?? ProcessInfo.processInfo.environment["GNUPGHOME"], !path.isEmpty,
           !FileManager.default.fileExists(atPath: path)
        {
            throw CompilerError(
                .notFound, "the GnuPG home \(path) (GNUPGHOME) does not exist",
                hints: ["set GNUPGHOME to the folder that holds your secret key, or unset it to use ~/.gnupg"])
        }
        do {
            return try Context(home: home, passphrase: passphrase)
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw CompilerError(.unavailable, "\(error)")
        }
    }

    /// True when the secret half of `fingerprint` is in the caller's GnuPG home.
    static func hasSecret(_ fingerprint: String, _ context: Context) -> Bool {
        (try? context.key(fingerprint, secret: true))?.hasSecret == true
    }

    /// Encrypts data keys to `recipients` (key names), whose keys `key`
    /// gives: in process when gpg's encryption subkey of every recipient is
    /// on Curve25519, else with gpg on the key files in a private home.
    static func encryptor(recipients: [String], key: (String) -> WriteFacts.Key?)
        throws(CompilerError) -> (RecipientEncryptor, fingerprints: [String])
    {
        var keys: [WriteFacts.Key] = []
        for recipient in recipients {
            guard let found = key(recipient) else { throw CompilerError(.notFound, "recipient key '\(recipient)' cannot be read") }
            if !keys.contains(where: { $0.fingerprint == found.fingerprint }) { keys.append(found) }
        }
        let fingerprints = keys.map(\.fingerprint).sorted()
        var inProcess: [String: Cv25519Recipient] = [:]
        for key in keys {
            guard let subkey = key.encryptionSubkey, let recipient = Cv25519Recipient(keyData: key.data, subkey: subkey) else { break }
            inProcess[key.fingerprint] = recipient
        }
        if inProcess.count == keys.count { return (.inProcess(Cv25519Encryptor(recipients: inProcess)), fingerprints) }
        do {
            return (.gpg(try KeyFileEncryptor(keys: keys.map { ($0.fingerprint, $0.data) })), fingerprints)
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw CompilerError(.unavailable, "\(error)")
        }
    }

    // MARK: Verification

    /// Parses and verifies the bundle with public keys only; nil when it does not exist yet.
    /// - Parameter upgrading: also verify a version-1 bundle, by version 1's rules (for `compile`).
    public func verifiedBundle(trusting admins: Set<String>? = nil, upgrading: Bool = false)
        throws(CompilerError) -> BundleVerifier.Verified?
    {
        guard let bundle = try file.load() else { return nil }
        do {
            return try BundleVerifier(trustedAdmins: admins ?? declaredAdmins, upgrading: upgrading).verify(bundle)
        } catch {
            throw .seal(error, bundle: file.displayPath)
        }
    }

    /// Verifies `bytes`, this environment's bundle, as a writer must before
    /// adding to it: every signature and claim against the declared admins
    /// (in process when the signers' keys allow), and a policy that is still
    /// exactly what the declarations call for.
    func verifyCurrent(_ bytes: [UInt8]) throws(CompilerError) {
        let scan = try file.formatted { () throws(BundleFormatError) in try ScannedBundle(scanning: bytes) }
        // What the declarations call for is worked out while the signatures are checked.
        let (project, environment) = (project, environment)
        let (expected, _) = try concurrently({
            Result { () throws(CompilerError) in
                var skeleton = try EnvironmentPolicy.skeleton(project, environment)
                // Its place in the policy history is the bundle's: the rest must be what the declarations say.
                skeleton.policySerial = scan.header.policySerial
                skeleton.previousPolicy = scan.header.previousPolicy
                return skeleton.policyPayload()
            }
        }) { () throws(CompilerError) in
            try Self.verify(scan, trustedAdmins: declaredAdmins, displayPath: file.displayPath)
        }
        // Both payloads are canonical: equal bytes, equal policies.
        guard try expected.get() == scan.policyPayload() else {
            // The error path: the bundle is materialized to say which kind of compile is needed.
            let reasons = (try? EnvironmentPolicy.skeleton(project, environment)).map {
                EnvironmentPolicy.reSealReasons(scan.materialized(), $0) { project.keyName(for: $0) ?? $0 }
            } ?? []
            throw CompilerError(
                .conflict, "the declarations changed since \(file.displayPath) was compiled",
                hints: [reasons.isEmpty
                    ? "an admin re-signs the policy with `secretc compile --env \(environmentName)` (an admin's key only)"
                    : "an admin re-seals it with `secretc compile --env \(environmentName)` (\(reasons.joined(separator: "; ")))"])
        }
    }

    static func missingBundle(_ file: BundleFile, environment: String) -> CompilerError {
        CompilerError(
            .notFound, "\(file.displayPath) does not exist yet",
            hints: ["an admin creates it with `secretc compile --env \(environment)`"])
    }
}

/// How data keys are encrypted to an environment's recipients.
enum RecipientEncryptor: DataKeyEncryptor {
    /// In process: every recipient encrypts on Curve25519.
    case inProcess(Cv25519Encryptor)
    /// gpg, on the key files in a private home.
    case gpg(KeyFileEncryptor)

    func encrypt(_ plaintext: UnsafeRawBufferPointer, to recipients: [String]) throws -> [UInt8] {
        switch self {
        case .inProcess(let encryptor): try encryptor.encrypt(plaintext, to: recipients)
        case .gpg(let encryptor): try encryptor.encrypt(plaintext, to: recipients)
        }
    }

    /// Deletes gpg's private home, if there is one.
    func remove() {
        if case .gpg(let encryptor) = self { encryptor.remove() }
    }
}
