import Foundation
import SecretCore
import GPG
import SecretModel

/// What `set` and `unset` need to know of a project besides its slots:
/// who may write (admins, users and their keys), the recipients, and each
/// plugin's manifest. The slots themselves a writer takes from the bundle's
/// signed policy, which must match the declarations.
///
/// Built from a validated ``Project``, or read back from a ``WriteCache``
/// entry that still describes the same files.
public struct WriteFacts: Sendable {
    public struct Key: Sendable, Equatable {
        public var fingerprint: String
        public var url: URL
        /// The key file's bytes, for importing into a keyring.
        public var data: [UInt8]
        /// The subkey gpg encrypts to (``KeyInfo/encryptionSubkey``), nil
        /// when the key cannot encrypt.
        public var encryptionSubkey: String?

        public init(fingerprint: String, url: URL, data: [UInt8], encryptionSubkey: String?) {
            self.fingerprint = fingerprint
            self.url = url
            self.data = data
            self.encryptionSubkey = encryptionSubkey
        }

        /// A project's key as a writer needs it.
        public init(_ key: PrincipalKey) {
            self.init(fingerprint: key.info.fingerprint, url: key.url, data: key.data, encryptionSubkey: key.info.encryptionSubkey)
        }
    }

    public struct Environment: Sendable, Equatable {
        public var name: String
        public var bundle: URL
        /// Key names of the runtime keys that decrypt.
        public var recipients: [String]
    }

    /// The declarations file.
    public var config: URL
    /// Key names, in declaration order.
    public var admins: [String]
    /// Every key that could be read, by name.
    public var keys: [String: Key]
    /// Every declared user id.
    public var users: Set<String>
    /// User id → the name of the key that may write that user's slots.
    public var userKeys: [String: String]
    /// In declaration order.
    public var environments: [Environment]
    /// Manifests by plugin slug.
    public var manifests: [String: Manifest]

    public init(_ project: Project) {
        let declarations = project.declarations
        config = declarations.file.url
        admins = declarations.admins.map(\.value)
        keys = project.keys.mapValues(Key.init)
        users = Set(declarations.users.map(\.id.value))
        userKeys = Dictionary(
            declarations.users.compactMap { user in user.key.map { (user.id.value, $0.value) } },
            uniquingKeysWith: { first, _ in first })
        environments = declarations.environments.map {
            Environment(name: $0.name.value, bundle: $0.bundleURL, recipients: ($0.recipients ?? []).map(\.value))
        }
        manifests = project.manifests
    }

    init(
        config: URL, admins: [String], keys: [String: Key], users: Set<String>, userKeys: [String: String],
        environments: [Environment], manifests: [String: Manifest]
    ) {
        self.config = config
        self.admins = admins
        self.keys = keys
        self.users = users
        self.userKeys = userKeys
        self.environments = environments
        self.manifests = manifests
    }

    /// The environment named `name`, or the only one when `name` is nil.
    public func environment(_ name: String?) throws(CompilerError) -> Environment {
        environments[try Self.choose(name, among: environments.map(\.name))]
    }

    /// The index of the environment named `name` among `names`, or of the only
    /// one when `name` is nil.
    static func choose(_ name: String?, among names: [String]) throws(CompilerError) -> Int {
        let hints = ["declared: \(names.joined(separator: ", "))"]
        if let name {
            guard let index = names.firstIndex(of: name) else {
                throw CompilerError(
                    .notFound, "environment '\(name)' is not declared\(Suggestion.hint(for: name, in: names))", hints: hints)
            }
            return index
        }
        guard names.count == 1 else { throw CompilerError(.invalidInput, "choose an environment with --env", hints: hints) }
        return 0
    }
}
