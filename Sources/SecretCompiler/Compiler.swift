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

    /// - Parameter environment: may be nil when the project declares exactly one.
    public init(project: Project, environment: String?, home: String? = nil, passphrase: String? = nil)
        throws(CompilerError)
    {
        let environments = project.declarations.environments
        let chosen: EnvironmentDeclaration
        if let environment {
            guard let found = environments.first(where: { $0.name.value == environment }) else {
                throw CompilerError(
                    .notFound, "environment '\(environment)' is not declared",
                    hints: ["declared: \(environments.map(\.name.value).joined(separator: ", "))"])
            }
            chosen = found
        } else {
            guard environments.count == 1, let only = environments.first else {
                throw CompilerError(
                    .invalidInput, "choose an environment with --env",
                    hints: ["declared: \(environments.map(\.name.value).joined(separator: ", "))"])
            }
            chosen = only
        }
        self.project = project
        self.environment = chosen
        self.file = BundleFile(url: chosen.bundleURL)
        self.home = home
        self.passphrase = passphrase
    }

    var environmentName: String { environment.name.value }

    /// Fingerprints of the declared admins: who `check`, `set` and `compile` trust.
    public var declaredAdmins: Set<String> {
        Set(project.declarations.admins.compactMap { project.keys[$0.value]?.info.fingerprint })
    }

    // MARK: Keys

    func userContext() throws(CompilerError) -> Context {
        try Self.context(home: home, passphrase: passphrase)
    }

    /// A context on the caller's GnuPG home (nil: GNUPGHOME or gpg's default).
    static func context(home: String?, passphrase: String?) throws(CompilerError) -> Context {
        do {
            return try Context(home: home, passphrase: passphrase)
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw CompilerError(.unavailable, "\(error)")
        }
    }

    /// True when the secret half of `fingerprint` is in the caller's GnuPG home.
    func hasSecret(_ fingerprint: String, _ context: Context) -> Bool {
        (try? context.key(fingerprint, secret: true))?.hasSecret == true
    }

    /// A context holding the recipients' public keys, in a private home.
    func encryptor(_ bundle: SecretBundle) throws(CompilerError) -> (Context, TemporaryHome) {
        do {
            let home = try TemporaryHome(publicKeysOnly: true)
            let context = try Context(home: home.path)
            var keys: [UInt8] = []
            for recipient in environment.recipients ?? [] {
                guard let key = project.keys[recipient.value] else {
                    throw CompilerError(.notFound, "recipient key '\(recipient.value)' cannot be read")
                }
                keys += key.data + [UInt8(ascii: "\n")]
            }
            try context.importKeys(keys)
            return (context, home)
        } catch let error as CompilerError {
            throw error
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw CompilerError(.unavailable, "\(error)")
        }
    }

    // MARK: Verification

    /// Parses and verifies the bundle with public keys only; nil when it does not exist yet.
    public func verifiedBundle(trusting admins: Set<String>? = nil) throws(CompilerError) -> BundleVerifier.Verified? {
        guard let bundle = try file.load() else { return nil }
        do {
            return try BundleVerifier(trustedAdmins: admins ?? declaredAdmins).verify(bundle)
        } catch {
            throw .seal(error, bundle: file.displayPath)
        }
    }

    /// The bundle, verified, whose policy still matches the declarations' `skeleton`.
    func currentBundle(_ skeleton: SecretBundle) throws(CompilerError) -> BundleVerifier.Verified {
        guard let verified = try verifiedBundle() else {
            throw CompilerError(
                .notFound, "\(file.displayPath) does not exist yet",
                hints: ["an admin creates it with `secretc compile --env \(environmentName)`"])
        }
        guard EnvironmentPolicy.matches(verified.bundle, skeleton) else {
            throw CompilerError(
                .conflict, "the declarations changed since \(file.displayPath) was compiled",
                hints: ["an admin runs `secretc compile --env \(environmentName)`"])
        }
        return verified
    }
}
