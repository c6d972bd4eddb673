import BundleFormat
import Foundation

/// What a reader remembers of a bundle it trusted, so that it can refuse
/// one that does not extend it: the rollback rule of docs/bundle-format.md
/// §6a, as TUF clients keep their last trusted metadata. `check --base`
/// takes it from the base revision's bundle; a loader from the bundle it
/// serves, and across restarts from its trusted-state file (``text``).
///
/// Holds no value and no key: the environment, the policy's serial, id,
/// signer and admins, and per epoch its id, the digest of its signature,
/// its time, writer, policy serial and parents.
public struct TrustedHistory: Sendable, Equatable {
    public struct Entry: Sendable, Equatable, EpochLinks {
        public var id: String
        /// Lower-case hex SHA-256 of the epoch's signature: which signed write this is.
        public var digest: String
        public var time: Int
        public var writer: String
        /// The serial of the policy it was written under.
        public var policySerial: Int
        public var parents: EpochParents

        public init(id: String, digest: String, time: Int, writer: String, policySerial: Int, parents: EpochParents) {
            self.id = id
            self.digest = digest
            self.time = time
            self.writer = writer
            self.policySerial = policySerial
            self.parents = parents
        }
    }

    public var environment: String
    public var policy: PolicyReference
    /// Who signed the policy, and the admins it names: the admins a later
    /// policy must be signed by (the chain an admin rotation follows).
    public var policySigner: String
    public var admins: [String]
    /// The id of the policy this one replaced (from a bundle; not kept in
    /// the state file): when it is the trusted one, a single re-seal came
    /// between, and its checkpoint names exactly what it re-sealed.
    public var previousPolicy: String?
    public var epochs: [Entry]

    /// The history of a parsed bundle; nil when its policy is not signed.
    public init?(_ bundle: SecretBundle) {
        guard let policy = bundle.policyReference, let signer = bundle.policy?.signer else { return nil }
        self.init(environment: bundle.environment, policy: policy, signer: signer, admins: bundle.admins, epochs: bundle.epochs)
        previousPolicy = bundle.previousPolicy
    }

    /// The history of a scanned bundle; nil when its policy is not signed.
    public init?(_ scan: ScannedBundle) {
        guard let policy = scan.header.policyReference, let signer = scan.header.policy?.signer else { return nil }
        self.init(
            environment: scan.header.environment, policy: policy, signer: signer, admins: scan.header.admins, epochs: scan.epochs)
        previousPolicy = scan.header.previousPolicy
    }

    private init(
        environment: String, policy: PolicyReference, signer: String, admins: [String], epochs: [some EpochHistory]
    ) {
        self.environment = environment
        self.policy = policy
        policySigner = signer
        self.admins = admins.sorted()
        self.epochs = epochs.map {
            Entry(
                id: $0.id, digest: Digest.sha256Hex($0.signature), time: $0.time, writer: $0.writer,
                policySerial: $0.policy.serial, parents: $0.parents)
        }
    }

    /// Throws ``BundleSealError/rollback(_:)`` unless `newer` extends this
    /// history: the same environment; a policy serial not lower (an equal
    /// one: the same policy); and every epoch here either still present,
    /// signed identically, or superseded by what `newer` holds — reached
    /// from its epochs through the ids they sign (`after=` parents, and a
    /// checkpoint's `subsumes=`: every epoch an admin re-sealed).
    ///
    /// - Parameters:
    ///   - known: histories seen between this one and `newer` (the git
    ///     revisions in between, for `check --base`): their epochs' signed
    ///     links count too, so a chain of re-seals is followed exactly.
    ///   - resealedByTime: without those (a loader), also accept an epoch no
    ///     longer present that is older than a checkpoint `newer` holds
    ///     under a newer policy than this one: two re-seals since this
    ///     history hide which epochs the first one named.
    ///   - name: turns a writer's fingerprint into the name the reader knows it by.
    public func checkExtended(
        by newer: TrustedHistory, through known: [TrustedHistory] = [], resealedByTime: Bool = false,
        naming name: (String) -> String = { $0 }
    ) throws(BundleSealError) {
        func write(_ epoch: Entry) -> String {
            let time = Date(timeIntervalSince1970: TimeInterval(epoch.time)).formatted(.iso8601)
            return "the write \(epoch.id) by \(name(epoch.writer)) at \(time)"
        }
        guard newer.environment == environment else {
            throw .rollback("it is for environment '\(newer.environment)', the trusted one for '\(environment)'")
        }
        if newer.policy.serial < policy.serial {
            throw .rollback("its policy serial \(newer.policy.serial) is older than the trusted \(policy.serial)")
        }
        if newer.policy.serial == policy.serial, newer.policy.id != policy.id {
            throw .rollback("its policy \(newer.policy.serial) is not the trusted policy with that serial")
        }
        if newer.policy.id != policy.id {
            // Admin rotation: each policy is signed by an admin of the one
            // before, through the versions in between (oldest first).
            var trusted = Set(admins)
            for step in known.sorted(by: { $0.policy.serial < $1.policy.serial })
            where step.policy.serial > policy.serial && step.policy.serial < newer.policy.serial
                && trusted.contains(step.policySigner) {
                trusted = Set(step.admins)
            }
            guard trusted.contains(newer.policySigner) else {
                throw .rollback(
                    "its policy is signed by \(name(newer.policySigner)), who is not an admin of the trusted policy "
                        + "(a new admin is added by a policy an existing admin signs)")
            }
        }
        let present = Dictionary(newer.epochs.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // Every signed link seen: newer's own first, then the ones in between,
        // then ours. An epoch that carries an id its own history's checkpoint
        // names is not the epoch that checkpoint re-sealed: it links nothing.
        var links: [String: [String]] = [:]
        for history in [newer] + known + [self] {
            let spent = History.spentIDs(history.epochs)
            for epoch in history.epochs where links[epoch.id] == nil && spent[epoch.id] == nil {
                links[epoch.id] = epoch.parents.ids
            }
        }
        var reached = Set<String>()
        var pending = newer.epochs.map(\.id)
        while let id = pending.popLast() {
            guard reached.insert(id).inserted else { continue }
            pending += links[id] ?? []
        }
        // Judged by time only when a re-seal was missed: when the new
        // bundle's checkpoints name an epoch no history here holds (the
        // checkpoint of a re-seal in between). Not when the newer policy
        // directly replaces the trusted one, and not when every id the
        // checkpoints name is known — a re-sign and a re-seal of a stale
        // branch name exactly what they re-sealed, and it is not the
        // trusted writes they leave out.
        let missedReseal = reached.contains { links[$0] == nil && !present.keys.contains($0) }
        let horizon = resealedByTime && newer.previousPolicy != policy.id && missedReseal
            ? newer.epochs.filter { $0.parents.isCheckpoint && $0.policySerial > policy.serial }.map(\.time).max() ?? .min
            : .min
        let spent = History.spentIDs(epochs)
        for epoch in epochs {
            if let kept = present[epoch.id] {
                guard kept.digest == epoch.digest else {
                    throw .rollback("\(write(epoch)) was replaced by another write with its id")
                }
            } else if !reached.contains(epoch.id) || spent[epoch.id] != nil, epoch.time > horizon {
                throw .rollback(
                    "\(write(epoch)) is missing and no admin's checkpoint re-sealed it: "
                        + "its values were rolled back or dropped")
            }
        }
    }

    // MARK: Trusted-state file

    static let magic = "secretc-state 1"

    /// The trusted-state file's text: `secretc-state 1`, `environment E`,
    /// `policy SERIAL ID SIGNER`, `admins FP,FP…`, then `epoch ID DIGEST TIME WRITER SERIAL PARENTS`
    /// per epoch (SERIAL its policy's; PARENTS as in the epoch line:
    /// `after=…` or `subsumes=…`).
    public var text: String {
        var lines = [
            Self.magic, "environment \(environment)", "policy \(policy.serial) \(policy.id) \(policySigner)",
            "admins \(admins.joined(separator: ","))",
        ]
        for epoch in epochs {
            lines.append(
                "epoch \(epoch.id) \(epoch.digest) \(epoch.time) \(epoch.writer) \(epoch.policySerial) \(epoch.parents.field)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Parses ``text``; the error names the line.
    public init(parsing text: String) throws(BundleSealError) {
        func bad(_ number: Int, _ reason: String) -> BundleSealError {
            .rollback("trusted state, line \(number): \(reason)")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard lines.first == Self.magic else { throw bad(1, "expected '\(Self.magic)'") }
        guard lines.count >= 4 else { throw bad(lines.count + 1, "the file ends early") }
        let environmentLine = lines[1].split(separator: " ", omittingEmptySubsequences: false)
        guard environmentLine.count == 2, environmentLine[0] == "environment", !environmentLine[1].isEmpty else {
            throw bad(2, "expected 'environment NAME'")
        }
        let policyLine = lines[2].split(separator: " ", omittingEmptySubsequences: false)
        guard policyLine.count == 4, policyLine[0] == "policy", let serial = Int(policyLine[1]), serial >= 0,
              Self.isHex(policyLine[2]), Self.isFingerprint(policyLine[3])
        else { throw bad(3, "expected 'policy SERIAL ID SIGNER'") }
        let adminsLine = lines[3].split(separator: " ", omittingEmptySubsequences: false)
        guard adminsLine.count == 2, adminsLine[0] == "admins" else { throw bad(4, "expected 'admins FINGERPRINT,…'") }
        let adminList = adminsLine[1].split(separator: ",", omittingEmptySubsequences: false)
        guard adminList.allSatisfy(Self.isFingerprint) else { throw bad(4, "expected 'admins FINGERPRINT,…'") }
        policySigner = String(policyLine[3])
        admins = adminList.map(String.init)
        environment = String(environmentLine[1])
        policy = PolicyReference(serial: serial, id: String(policyLine[2]))
        epochs = []
        for (offset, line) in lines.dropFirst(4).enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 7, fields[0] == "epoch", !fields[1].isEmpty, Self.isHex(fields[2]),
                  let time = Int(fields[3]), !fields[4].isEmpty, let serial = Int(fields[5]), let parents = Self.parents(fields[6])
            else { throw bad(offset + 5, "expected 'epoch ID DIGEST TIME WRITER SERIAL PARENTS'") }
            epochs.append(Entry(
                id: String(fields[1]), digest: String(fields[2]), time: time, writer: String(fields[4]), policySerial: serial,
                parents: parents))
        }
    }

    private static func isFingerprint(_ text: Substring) -> Bool {
        text.utf8.count == 40 && text.utf8.allSatisfy { (48...57).contains($0) || (65...70).contains($0) }
    }

    private static func isHex(_ text: Substring) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    private static func parents(_ field: Substring) -> EpochParents? {
        for (prefix, make) in [("after=", EpochParents.after), ("subsumes=", EpochParents.subsumes)] where field.hasPrefix(prefix) {
            let list = field.dropFirst(prefix.count)
            guard !list.isEmpty else { return nil }
            return make(list == "-" ? [] : list.split(separator: ",", omittingEmptySubsequences: false).map(String.init))
        }
        return nil
    }
}
