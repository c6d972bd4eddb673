import BundleSeal
import Foundation
import GPG
import SecretCore

/// Why a bundle was not loaded. Nothing from it is served; never carries a value.
public struct SecretKernelError: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        /// The bundle file cannot be read.
        case unreadable
        /// The bytes are not a valid bundle (syntax, order, version).
        case invalidBundle
        /// A signature, authorization or claim fails: tampered or forged.
        case verificationFailed
        /// No usable runtime secret key, or gpg itself failed.
        case keyUnavailable
        /// A ciphertext or data key does not decrypt or authenticate.
        case undecryptable
        /// The configuration is unusable (e.g. no pinned admin).
        case misconfigured
        /// The bundle does not extend the one trusted before (the bundle
        /// served, or the trusted-state file's): an older version, or a
        /// write removed or replaced.
        case rollback
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Maps a sealing-layer error, naming the bundle.
    init(_ error: BundleSealError, bundle: String, recipients: [String]) {
        switch error {
        case .format(let format): self.init(.invalidBundle, "\(bundle): invalid bundle: \(format)")
        case .undecryptable: self.init(.undecryptable, "\(bundle): \(error)")
        case .gpg(.noSecretKey):
            self.init(
                .keyUnavailable,
                "\(bundle): no secret key of a recipient is available (recipients: \(recipients.joined(separator: ", ")))")
        case .gpg(.invalidData(let why)) where why.hasPrefix("SECRETC_GPG_KEY"):
            // The configured key, not the bundle: say so, naming the variable.
            self.init(.misconfigured, "\(why) (it should hold an armored secret key: gpg --armor --export-secret-keys FINGERPRINT)")
        case .gpg(let gpg): self.init(.keyUnavailable, "\(bundle): \(gpg)")
        default: self.init(.verificationFailed, "\(bundle): \(error)")
        }
    }
}

/// Why a lookup found no value to serve. Never carries a value.
public struct SecretUnavailable: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// Neither a slot value nor the environment variable is set.
        case notSet
        /// The value expired at this time; it is not served.
        case expired(Date)
        /// The slot is marked inactive; its value is kept but not served.
        case inactive
        /// The slot's `scopes` do not include the loader's scope.
        case outOfScope(String)
        /// The slot holds a value its writer signed that this loader could
        /// not use: its data key did not decrypt, it failed AES-GCM, or it
        /// does not match its declared pattern. Nothing else is served in
        /// its place (no deployment-wide value, no variable); the load's
        /// log says why.
        case unavailable
        /// The bundle's signed schema declares no such plugin, or the
        /// plugin no such key: a typo, not a missing value. Nothing is
        /// looked up, not even the environment.
        case undeclared

        public var description: String {
            switch self {
            case .undeclared: return "undeclared"
            case .notSet: return "not set"
            case .expired(let date): return "expired on \(SlotStatus.expiryText(date))"
            case .inactive: return "inactive"
            case .outOfScope(let scope): return "out of scope '\(scope)'"
            case .unavailable: return "unavailable"
            }
        }
    }

    public var plugin: String
    public var key: String
    public var user: String?
    /// The environment variable that was also consulted.
    public var environmentVariable: String
    public var reason: Reason
    /// For ``Reason/undeclared``: what is not declared, with a suggestion.
    public var undeclaredDetail: String?

    public init(plugin: String, key: String, user: String?, environmentVariable: String, reason: Reason) {
        self.plugin = plugin
        self.key = key
        self.user = user
        self.environmentVariable = environmentVariable
        self.reason = reason
    }

    public var description: String {
        let slot = "\(user ?? "-")/\(plugin)/\(key)"
        switch reason {
        case .undeclared: return undeclaredDetail ?? "\(plugin)/\(key) is not declared in the bundle"
        case .notSet: return "\(slot) is not set (and \(environmentVariable) is not in the environment)"
        case .expired(let date): return "\(slot) expired on \(SlotStatus.expiryText(date)) and is not served"
        case .inactive: return "\(slot) is inactive and is not served"
        case .outOfScope(let scope): return "\(slot) is not in scope '\(scope)' and is not served"
        case .unavailable:
            return "\(slot) holds a value that failed to decrypt or verify and is not served (the bundle's load log says why)"
        }
    }
}
