import BundleFormat
import GPG

/// The latest time among the `after=` parents of each epoch (nil: none
/// present), by the epochs' positions.
func inheritedTimes(_ epochs: [some EpochHistory]) -> [Int?] {
    var times: [String: Int] = [:]
    times.reserveCapacity(epochs.count)
    for epoch in epochs { times[epoch.id] = epoch.time }
    return epochs.map { epoch in
        guard case .after(let parents) = epoch.parents else { return nil }
        return parents.compactMap { times[$0] }.max()
    }
}

/// An epoch's id and the ids it signs: what links histories (§6a).
protocol EpochLinks {
    var id: String { get }
    var parents: EpochParents { get }
}

/// The epoch fields the history rules read, from a parsed or a scanned bundle.
protocol EpochHistory: EpochLinks {
    var time: Int { get }
    var writer: String { get }
    var policy: PolicyReference { get }
    var signature: [UInt8] { get }
}

extension Epoch: EpochHistory {}
extension ScannedEpoch: EpochHistory {}

extension PolicyReference {
    /// The reference to the policy of `serial` signed by `signature`: its id
    /// is the lower-case hex SHA-256 of the signature's bytes.
    public init(serial: Int, signature: [UInt8]) {
        self.init(serial: serial, id: Digest.sha256Hex(signature))
    }
}

extension SecretBundle {
    /// The policy this bundle's epochs are written under; nil until signed.
    public var policyReference: PolicyReference? {
        policy.map { PolicyReference(serial: policySerial, signature: $0.signature) }
    }
}

/// docs/bundle-format.md §6, step 5's history rules, shared by
/// ``BundleVerifier`` and ``ScanVerifier``: an epoch is written under this
/// policy or an older one, builds only on epochs still present and earlier,
/// and a checkpoint is an admin's.
enum History {
    /// How far an epoch's time may run ahead of its signature's creation time.
    static let skew = 300

    /// Refuses a bundle of a format version verifiers no longer read.
    static func requireCurrentVersion(_ header: SecretBundle) throws(BundleSealError) {
        guard header.formatVersion == SecretBundle.version else { throw .outdatedVersion(header.formatVersion) }
    }

    /// The rules over every epoch, in canonical order.
    /// - Parameter signedAt: each epoch's signature creation time, and when
    ///   its signing key expires (if it does), by position.
    static func check(
        _ header: SecretBundle, _ epochs: [some EpochHistory], admins: Set<String>, signedAt: [SignatureCheck]
    )
        throws(BundleSealError)
    {
        guard let policy = header.policyReference else { throw .untrustedPolicy("the policy is not signed") }
        var positions: [String: Int] = [:]
        positions.reserveCapacity(epochs.count)
        for (index, epoch) in epochs.enumerated() { positions[epoch.id] = index }
        for epoch in epochs where epoch.parents.isCheckpoint && !admins.contains(epoch.writer) {
            throw .history(epoch: epoch.id, reason: "only an admin signs a checkpoint, not \(epoch.writer)")
        }
        let spent = spentIDs(epochs)
        for (index, epoch) in epochs.enumerated() {
            func refuse(_ reason: String) -> BundleSealError { .history(epoch: epoch.id, reason: reason) }
            if let checkpoint = spent[epoch.id] {
                throw refuse(
                    "its id is one that checkpoint \(checkpoint) names in subsumes= (a re-sealed id is never used again)")
            }
            if epoch.policy.serial > policy.serial {
                throw refuse(
                    "written under policy \(epoch.policy.serial), newer than the bundle's policy \(policy.serial) "
                        + "(an older policy paired with newer epochs)")
            }
            if epoch.policy.serial == policy.serial, epoch.policy.id != policy.id {
                throw refuse("written under another policy with the same serial \(policy.serial)")
            }
            switch epoch.parents {
            case .after(let parents):
                for parent in parents {
                    guard let position = positions[parent] else {
                        throw refuse("builds on epoch \(parent), which is missing (removed or replaced?)")
                    }
                    guard position < index else { throw refuse("builds on epoch \(parent), which is not earlier") }
                    // A write comes after the writes it follows: its key is
                    // judged no earlier than their signatures (less the
                    // skew), so a key that expired cannot keep writing by
                    // dating its signatures back to when it was valid.
                    if let expires = signedAt[index].keyExpires, signedAt[position].timestamp - skew >= expires {
                        throw refuse(
                            "signed by a key that expired at \(expires), before epoch \(parent) it builds on was signed "
                                + "(\(signedAt[position].timestamp)): a signature dated back to when the key was valid does not count")
                    }
                }
            case .subsumes: break  // by an admin, as checked above
            }
        }
    }

    /// The ids the checkpoints among `epochs` name in `subsumes=`, each
    /// with the checkpoint naming it: spent, no epoch may carry one again.
    /// Otherwise a writer could give a write of its own a re-sealed id, so
    /// that the checkpoint seems to reach whatever that write builds on
    /// (§6a), and a later rollback of those writes would pass.
    static func spentIDs(_ epochs: [some EpochLinks]) -> [String: String] {
        var spent: [String: String] = [:]
        for epoch in epochs {
            guard case .subsumes(let ids) = epoch.parents else { continue }
            for id in ids where spent[id] == nil { spent[id] = epoch.id }
        }
        return spent
    }

    /// An epoch's time may not run ahead of when its signature says it was
    /// made — unless it is its parents' time (`inherited`: the latest time
    /// among its `after=` parents): a write after a future-dated one takes
    /// that time and is ordered by the chain, so one writer's clock never
    /// blocks the writes after it.
    static func checkTime(_ epoch: some EpochHistory, signedAt created: Int, inherited: Int?) throws(BundleSealError) {
        guard created > 0, epoch.time <= created + skew || epoch.time == inherited else {
            throw .history(
                epoch: epoch.id, reason: "its time \(epoch.time) is later than its signature's creation time \(created)")
        }
    }
}
