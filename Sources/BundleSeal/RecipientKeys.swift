import BundleFormat
import GPG

/// The policy's recipients and the key ids of their `key` lines: what the
/// packet rule (docs/bundle-format.md §6, step 3 and the checker's rule)
/// compares a data-key message's session keys with. Every reader and every
/// writer applies it, with the keys the policy signs, never with keys from
/// elsewhere (a project file, a write cache).
public struct RecipientKeys: Sendable {
    /// Recipient fingerprints, in the bundle's order.
    public let recipients: [String]
    /// The recipient each key id (primary or subkey, 16 upper-case hex digits) belongs to.
    private let owners: [String: String]

    /// The recipients of `bundle`'s policy.
    /// - Throws: when a recipient has no `key` line, or one that is not an
    ///   OpenPGP key (a bundle signed before recipients' keys were listed:
    ///   an admin re-signs it with `secretc compile`, which needs no secret key).
    public init(_ bundle: SecretBundle) throws(BundleSealError) {
        try self.init(bundle.recipients.map { ($0, bundle.keys[$0]) })
    }

    /// `recipients`, each with the bytes of its `key` line (nil: none).
    public init(_ recipients: [(fingerprint: String, key: [UInt8]?)]) throws(BundleSealError) {
        var owners: [String: String] = [:]
        for (recipient, key) in recipients {
            guard let key, let ids = (try? KeyFile(scanning: key))?.keyIDs, !ids.isEmpty else {
                throw .untrustedPolicy(
                    "recipient \(recipient) has no key line, so no reader can tell whom a data key is encrypted to "
                        + "(an admin re-signs the policy with `secretc compile`; no secret key is needed)")
            }
            for id in ids { owners[id] = recipient }
        }
        self.recipients = recipients.map(\.fingerprint)
        self.owners = owners
    }

    /// Why `message` breaks the packet rule (nil: it keeps it): it is not
    /// session keys and one encrypted packet, or ``problem(_:)`` of its session keys.
    public func problem(message: [UInt8]) -> String? {
        do throws(DataKeyEnvelope.Problem) {
            return problem(try DataKeyEnvelope(parsing: message))
        } catch {
            return "\(error)"
        }
    }

    /// Why `envelope` is not encrypted to exactly these recipients (nil: it is):
    /// a session key to a key id no recipient has (a stranger, or a hidden
    /// recipient's zero key id), two to one key id, or a recipient left out.
    public func problem(_ envelope: DataKeyEnvelope) -> String? {
        if let stranger = envelope.recipientKeyIDs.first(where: { owners[$0] == nil }) {
            return "its data key is encrypted to key id \(stranger), which is no recipient's"
        }
        // One session key per key id: hundreds to one key would each cost
        // the reader a decryption attempt.
        if Set(envelope.recipientKeyIDs).count != envelope.recipientKeyIDs.count {
            return "its data key has more than one session key for one key id"
        }
        let reached = Set(envelope.recipientKeyIDs.compactMap { owners[$0] })
        if let missed = recipients.first(where: { !reached.contains($0) }) {
            return "its data key is not encrypted to recipient \(missed)"
        }
        return nil
    }
}
