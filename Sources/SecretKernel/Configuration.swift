import Foundation
import GPG
import Logging

extension SecretKernel {
    /// Where the bundle comes from. ``SecretKernel/reload()`` reads it again.
    public enum BundleSource: Sendable, CustomStringConvertible {
        /// A bundle file, e.g. `secrets/production.bundle`.
        case path(String)
        /// Bundle bytes already in memory (a reload needs ``SecretKernel/reload(bytes:)``).
        case bytes([UInt8])

        public var description: String {
            switch self {
            case .path(let path): return path
            case .bytes(let bytes): return "<\(bytes.count) bytes>"
            }
        }
    }

    /// Where the runtime secret key (a recipient's) comes from.
    public enum KeySource: Sendable {
        /// `SECRETC_GPG_KEY` of the configured environment when it is set
        /// (see ``armoredSecretKey(_:passphrase:)``), else its `GNUPGHOME`,
        /// else gpg's default home.
        case automatic
        /// A GnuPG home holding the secret key (nil: `GNUPGHOME` or `~/.gnupg`).
        case gnupgHome(String?)
        /// An ASCII-armored secret key. Each load imports it into a private
        /// temporary home with a short path and removes that home afterwards.
        case armoredSecretKey(SecureBytes, passphrase: String? = nil)
    }

    /// Everything a kernel needs; the loader reads no declarations or manifests.
    public struct Configuration: Sendable {
        public var bundle: BundleSource
        public var keys: KeySource
        /// Fingerprints trusted to sign the policy (40 hex digits, any case).
        /// They come from the service's own configuration, never from the bundle.
        public var trustedAdmins: Set<String>
        /// The service's scope: slots with a `scopes` list that does not name
        /// it are not served. nil serves every slot regardless of its scopes.
        public var scope: String?
        /// Where the environment-variable fallback looks (and `SECRETC_GPG_KEY`
        /// for ``KeySource/automatic``). Default: the process environment at init.
        public var environment: [String: String]
        /// Lookups at debug level (which source served them), verification
        /// failures at error. Never a value.
        public var logger: Logger
        /// Decides what has expired; nil reads the system clock (coarse,
        /// millisecond-grade, which expiry in whole seconds allows).
        public var clock: (@Sendable () -> Date)?
        /// The folder for temporary GnuPG homes (keep its path short).
        public var temporaryDirectory: String

        public init(
            bundle: BundleSource, keys: KeySource = .automatic, trustedAdmins: Set<String>, scope: String? = nil,
            environment: [String: String] = ProcessInfo.processInfo.environment,
            logger: Logger = Logger(label: "secretc.kernel"), clock: (@Sendable () -> Date)? = nil,
            temporaryDirectory: String = "/tmp"
        ) {
            self.bundle = bundle
            self.keys = keys
            self.trustedAdmins = trustedAdmins
            self.scope = scope
            self.environment = environment
            self.logger = logger
            self.clock = clock
            self.temporaryDirectory = temporaryDirectory
        }

        /// Parses `SECRETC_TRUSTED_ADMINS`-style text: fingerprints separated by commas.
        public static func trustedAdmins(from text: String) -> Set<String> {
            Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }.filter { !$0.isEmpty })
        }
    }
}
