import BundleFormat
import GPG

/// Why a bundle cannot be trusted, opened or written. Never carries a value.
public enum BundleSealError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text is not a valid bundle.
    case format(BundleFormatError)
    /// A `key` line does not hold the key it is listed under.
    case badKey(fingerprint: String)
    /// The policy signature is missing, bad, or not by a trusted admin.
    case untrustedPolicy(String)
    /// An epoch's signature is bad or not by its writer.
    case badEpochSignature(epoch: String, reason: String)
    /// A writer signed a claim it may not make.
    case unauthorizedWriter(epoch: String, writer: String, slot: String)
    /// Values and claims disagree: a dropped, moved or rolled-back value.
    case inconsistent(slot: String, reason: String)
    /// An epoch's place in the history is wrong: a missing parent, a newer
    /// policy than the bundle's, a time ahead of its signature.
    case history(epoch: String, reason: String)
    /// A bundle of a format version that verifiers no longer read.
    case outdatedVersion(Int)
    /// The bundle does not extend one already trusted (a rollback, or
    /// another branch's history): see ``TrustedHistory``.
    case rollback(String)
    /// A value or data key failed to decrypt or authenticate.
    case undecryptable(String)
    /// gpg itself failed.
    case gpg(GPGError)

    public var description: String {
        switch self {
        case .format(let error): return "invalid bundle: \(error)"
        case .badKey(let fingerprint): return "the key listed as \(fingerprint) is not that key"
        case .untrustedPolicy(let why): return "policy: \(why)"
        case .badEpochSignature(let epoch, let reason): return "epoch \(epoch): \(reason)"
        case .unauthorizedWriter(let epoch, let writer, let slot):
            return "epoch \(epoch): writer \(writer) may not write slot \(slot)"
        case .inconsistent(let slot, let reason): return "slot \(slot): \(reason)"
        case .history(let epoch, let reason): return "epoch \(epoch): \(reason)"
        case .outdatedVersion(let version):
            return "bundle format version \(version) is no longer read; an admin upgrades it with `secretc compile`"
        case .rollback(let why): return "not a later version of the trusted bundle: \(why)"
        case .undecryptable(let why): return "cannot decrypt: \(why)"
        case .gpg(let error): return "\(error)"
        }
    }
}
