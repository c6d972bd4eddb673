/// Everything that can go wrong talking to GnuPG through gpgme.
///
/// Each case carries enough to name the offending thing; `description` is the
/// one-line message shown to users (lowercase, no final period).
public enum GPGError: Error, Sendable, CustomStringConvertible, Equatable {
    /// gpgme or the `gpg` engine it drives is not installed or too old.
    case engineUnavailable(String)
    /// The GnuPG home path is too long for gpg-agent's socket path.
    case homeTooLong(path: String, limit: Int)
    /// No secret key is available for the operation (decrypt or sign).
    case noSecretKey(String)
    /// No public key with this fingerprint, user id or name is known.
    case keyNotFound(String)
    /// The key exists but cannot do what was asked (encrypt, sign), or is expired or revoked.
    case unusableKey(fingerprint: String, reason: String)
    /// A secret key is protected by a passphrase and none was supplied.
    case passphraseRequired(key: String)
    /// The supplied passphrase was refused.
    case badPassphrase(key: String)
    /// Input that should hold OpenPGP data does not.
    case invalidData(String)
    /// Decryption failed: the ciphertext is damaged or not for any key we hold.
    case decryptionFailed(String)
    /// A bounded decryption's plaintext is longer than its limit (gpg was stopped there).
    case plaintextTooLong(limit: Int)
    /// Any other gpgme failure, with the operation and gpgme's own message.
    case operationFailed(operation: String, code: UInt32, message: String)

    public var description: String {
        switch self {
        case .engineUnavailable(let why):
            return "gpg is not usable: \(why)"
        case .homeTooLong(let path, let limit):
            return "GnuPG home '\(path)' is \(path.utf8.count) bytes long; gpg-agent sockets fail past \(limit)"
        case .noSecretKey(let what):
            return "no secret key for \(what) in the GnuPG home"
        case .keyNotFound(let what):
            return "no public key \(what) in the GnuPG home"
        case .unusableKey(let fingerprint, let reason):
            return "key \(fingerprint) cannot be used: \(reason)"
        case .passphraseRequired(let key):
            return "secret key \(key) is protected by a passphrase; set SECRETC_GPG_PASSPHRASE or use gpg-agent with a cached passphrase"
        case .badPassphrase(let key):
            return "the passphrase for secret key \(key) was refused"
        case .invalidData(let why):
            return "not OpenPGP data: \(why)"
        case .decryptionFailed(let why):
            return "decryption failed: \(why)"
        case .plaintextTooLong(let limit):
            return "the message's plaintext is longer than \(limit) bytes"
        case .operationFailed(let operation, _, let message):
            return "gpg \(operation) failed: \(message)"
        }
    }
}
