import BundleFormat
import BundleSeal
import Foundation

/// One signed event of a bundle's history: a write batch (an epoch), a
/// re-seal (a checkpoint epoch) or a policy signature. Never a value.
public struct AuditEntry: Sendable {
    public enum Kind: String, Sendable, Encodable {
        case write, checkpoint, policy
    }

    /// What a write did to one slot.
    public enum Action: String, Sendable, Encodable {
        /// The slot's first value (or its first after a deletion).
        case set
        /// A new value over an earlier one.
        case rotated
        case deleted
        /// Carried into a checkpoint by a re-seal.
        case resealed
    }

    public struct Change: Sendable {
        public var slot: SlotKey
        public var action: Action
    }

    /// The git commit that first held this entry, for `log --git`.
    public struct Commit: Sendable, Encodable {
        public var hash: String
        public var author: String
        public var date: String
    }

    public var environment: String
    public var kind: Kind
    /// The epoch id, or the policy id.
    public var id: String
    /// Seconds since 1970: the epoch's time, or when the policy was signed.
    public var time: Int
    /// The verified signer's fingerprint.
    public var signer: String
    /// The policy's serial (policy entries).
    public var serial: Int?
    public var changes: [Change]
    public var commit: Commit?
}

/// The audit trail of verified bundles: only what their signatures cover.
public enum AuditTrail {
    /// One environment's entries, oldest first, from verified versions of
    /// its bundle (oldest version first, each with the commit that held it,
    /// if known): an epoch or policy appears once, with the first commit
    /// that held it. A slot's action is judged against every earlier epoch
    /// seen in any version, so a history re-sealed away is still told when
    /// the versions before the re-seal are given.
    public static func entries(_ versions: [(BundleVerifier.Verified, AuditEntry.Commit?)]) -> [AuditEntry] {
        entries(versions.map { ($0.0.bundle, $0.0.policySignedAt, $0.1) })
    }

    /// ``entries(_:)`` of bundles as they are (for display only: whether
    /// they verify is the caller's to say), each with when its policy was signed.
    public static func entries(_ versions: [(SecretBundle, policySignedAt: Int, AuditEntry.Commit?)]) -> [AuditEntry] {
        var epochs: [String: (Epoch, AuditEntry.Commit?)] = [:]
        var entries: [AuditEntry] = []
        var policies: Set<String> = []
        for (bundle, policySignedAt, commit) in versions {
            for epoch in bundle.epochs where epochs[epoch.id] == nil { epochs[epoch.id] = (epoch, commit) }
            if let policy = bundle.policy, let reference = bundle.policyReference, policies.insert(reference.id).inserted {
                entries.append(AuditEntry(
                    environment: bundle.environment, kind: .policy, id: reference.id, time: policySignedAt,
                    signer: policy.signer, serial: bundle.policySerial, changes: [], commit: commit))
            }
        }
        guard let environment = versions.first?.0.environment else { return [] }
        var holding: Set<SlotKey> = []  // slots with a value, as the epochs so far leave them
        for (epoch, commit) in epochs.values.sorted(by: { ($0.0.time, $0.0.id) < ($1.0.time, $1.0.id) }) {
            let checkpoint = epoch.parents.isCheckpoint
            var changes: [AuditEntry.Change] = []
            if checkpoint { holding = [] }
            for claim in epoch.claims {
                let action: AuditEntry.Action
                if claim.digest == nil {
                    action = .deleted
                    holding.remove(claim.slot)
                } else {
                    action = checkpoint ? .resealed : holding.contains(claim.slot) ? .rotated : .set
                    holding.insert(claim.slot)
                }
                changes.append(.init(slot: claim.slot, action: action))
            }
            entries.append(AuditEntry(
                environment: environment, kind: checkpoint ? .checkpoint : .write, id: epoch.id, time: epoch.time,
                signer: epoch.writer, changes: changes, commit: commit))
        }
        return entries.sorted { ($0.time, $0.kind == .policy ? 0 : 1, $0.id) < ($1.time, $1.kind == .policy ? 0 : 1, $1.id) }
    }
}

extension Compiler {
    /// This environment's audit trail from its bundle as it is, and with
    /// `git`, from every committed version too (oldest first). A version
    /// is used only when it verifies: under the declared admins, or under
    /// the admins a newer verified version lists (a rotation is followed
    /// back in time); the others are returned as `unverified` commits.
    public func auditTrail(git: Bool) throws(CompilerError) -> (entries: [AuditEntry], unverified: [AuditEntry.Commit]) {
        guard let current = try verifiedBundle() else { return ([], []) }
        guard git else { return (AuditTrail.entries([(current, nil)]), []) }
        var trusted = declaredAdmins
        var versions: [(BundleVerifier.Verified, AuditEntry.Commit?)] = []
        var unverified: [AuditEntry.Commit] = []
        var head: [UInt8]?
        for (commit, bytes) in BaseRevision.history(of: file.url).reversed() {  // newest first
            if head == nil { head = bytes }
            guard let bundle = try? SecretBundle(parsing: bytes),
                  let verified = try? BundleVerifier(trustedAdmins: trusted, upgrading: true).verify(bundle)
            else {
                unverified.append(commit)
                continue
            }
            trusted.formUnion(bundle.admins)
            versions.append((verified, commit))
        }
        // The working tree's bundle, when it differs from the last commit: its new entries are uncommitted.
        let working = try file.load()
        if let working, head.map({ (try? SecretBundle(parsing: $0)) != working }) ?? true {
            versions.insert((current, nil), at: 0)
        }
        return (AuditTrail.entries(versions.reversed()), unverified.reversed())
    }
}
