import Foundation
@_exported import class GPG.SecureBytes
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
        /// The process environment's `SECRETC_GPG_KEY` (with
        /// `SECRETC_GPG_PASSPHRASE`) when it is set (see
        /// ``armoredSecretKey(_:passphrase:)``), else its `GNUPGHOME`, else
        /// gpg's default home. Read at each load.
        case automatic
        /// The same variables as ``automatic``, read from `variables`
        /// instead of the process environment (for a launcher that took them
        /// out of its own environment, as `secretc exec` does).
        case fromVariables([String: String])
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
        /// The deployment environment this service runs in (`production`): a
        /// bundle of any other environment is refused, so a staging bundle
        /// copied over the production one is never served. nil accepts the
        /// bundle's own (set it: `secretc exec` and `get` always do).
        public var expectedEnvironment: String?
        /// The service's scope: slots with a `scopes` list that does not name
        /// it are not served. nil serves every slot regardless of its scopes.
        public var scope: String?
        /// Where the environment-variable fallback looks up a value no slot
        /// serves. Default: the process environment at init. (The runtime
        /// key is not looked for here: see ``KeySource``.)
        public var fallbackEnvironment: [String: String]
        /// Lookups at debug level (which source served them), verification
        /// failures at error. Never a value.
        public var logger: Logger
        /// Decides what has expired; nil reads the system clock (coarse,
        /// millisecond-grade, which expiry in whole seconds allows).
        public var clock: (@Sendable () -> Date)?
        /// The folder for temporary GnuPG homes (keep its path short).
        public var temporaryDirectory: String
        /// A file that remembers the history of the last bundle served, so
        /// that a restarted service refuses a bundle that does not extend it
        /// (a rollback). Created on first use (mode 0600), replaced
        /// atomically after every load; never followed through a symbolic
        /// link or used when others may write it. nil: only reloads within
        /// one process are compared.
        public var trustedState: String?
        /// Marks the process non-dumpable when the kernel is made (as
        /// ssh-agent and gpg-agent do): no core file, and no debugger or
        /// other process of the same user may read its memory. Values are
        /// left out of core files either way. Set false to keep core dumps
        /// of a service that holds no other secret worth that protection.
        public var protectsProcess = true
        /// Whether the signatures may be checked in process (Ed25519 keys);
        /// false always verifies step by step with gpg. Tests set it to run
        /// both paths on one bundle.
        var verifiesInProcess = true
        /// Whether data keys may be opened without a gpg process (the key in
        /// the process, or gpg-agent's agreement over its socket); false
        /// always runs gpg. Tests set it to compare the routes on one bundle.
        var decryptsWithoutGPG = true

        public init(
            bundle: BundleSource, keys: KeySource = .automatic, trustedAdmins: Set<String>,
            expectedEnvironment: String? = nil, scope: String? = nil,
            fallbackEnvironment: [String: String] = ProcessInfo.processInfo.environment,
            logger: Logger = Logger(label: "secretc.kernel"), clock: (@Sendable () -> Date)? = nil,
            temporaryDirectory: String = "/tmp", trustedState: String? = nil
        ) {
            self.bundle = bundle
            self.keys = keys
            self.trustedAdmins = trustedAdmins
            self.expectedEnvironment = expectedEnvironment
            self.scope = scope
            self.fallbackEnvironment = fallbackEnvironment
            self.logger = logger
            self.clock = clock
            self.temporaryDirectory = temporaryDirectory
            self.trustedState = trustedState
        }

        /// Parses `SECRETC_TRUSTED_ADMINS`-style text: fingerprints separated by commas.
        /// - Throws: ``SecretKernelError/Kind/misconfigured`` naming an entry
        ///   that is not 40 hex digits, or when there is none.
        public static func trustedAdmins(from text: String) throws(SecretKernelError) -> Set<String> {
            var pins = Set<String>()
            for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
                let pin = entry.trimmingCharacters(in: .whitespaces).uppercased()
                guard pin.utf8.count == 40, pin.utf8.allSatisfy({ (48...57).contains($0) || (65...70).contains($0) }) else {
                    throw SecretKernelError(
                        .misconfigured,
                        "SECRETC_TRUSTED_ADMINS holds '\(pin.prefix(48))', which is not a 40-hex-digit fingerprint")
                }
                pins.insert(pin)
            }
            return pins
        }
    }
}
