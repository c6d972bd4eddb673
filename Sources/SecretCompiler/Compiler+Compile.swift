import BundleFormat
import BundleSeal
import GPG
import SecretModel

extension Compiler {
    /// What `compile` did.
    public struct CompileReport: Sendable {
        public enum Action: Sendable, Equatable {
            /// The bundle did not exist: a policy, and no values.
            case created
            /// Only the policy was re-signed; every write and ciphertext kept.
            case resigned
            /// Every value read and sealed again into one checkpoint.
            case resealed
            /// The policy already was what the declarations say: nothing written.
            case upToDate
        }
        public var action: Action
        public var created: Bool { action == .created }
        /// Values re-sealed into the new epoch (``Action/resealed``), or kept (``Action/resigned``).
        public var values: Int
        /// Slots that held a value but are no longer declared (their values are gone).
        public var dropped: [String]
        /// Slots whose value, re-sealed, does not match its manifest's current
        /// pattern (it was written before the pattern changed).
        public var unmatched: [String] = []
        /// `plugin/KEY`s whose pattern changed while values are held (on a
        /// re-sign the values cannot be read to check: a user's value that
        /// fails the new pattern is unavailable to loaders until rewritten).
        public var changedPatterns: [String] = []
        /// The admin key name that signed (empty when nothing was signed).
        public var signer: String
    }

    /// How much `compile` may do.
    public enum CompileMode: Sendable {
        /// The least the declarations need: re-sign the policy when users,
        /// slots, metadata or manifests changed (an admin's key only);
        /// re-seal only when recipients changed or kept writes would no
        /// longer verify (then a recipient's secret key is needed too).
        case automatic
        /// Always re-seal: compact every write into one checkpoint under a
        /// fresh data key (also repairs an epoch dated ahead).
        case reseal
    }

    /// What `compile` would do to this environment's bundle now, and why a
    /// re-seal is needed when it is (for `compile`'s preview and `check`).
    public func compilePlan(mode: CompileMode = .automatic) throws(CompilerError) -> (CompileReport.Action, reasons: [String]) {
        let skeleton = try EnvironmentPolicy.skeleton(project, environment)
        guard let existing = try verifiedBundle(upgrading: true) else { return (.created, []) }
        return plan(existing.bundle, skeleton, mode)
    }

    private func plan(_ existing: SecretBundle, _ skeleton: SecretBundle, _ mode: CompileMode)
        -> (CompileReport.Action, reasons: [String])
    {
        let reasons = EnvironmentPolicy.reSealReasons(existing, skeleton) { project.keyName(for: $0) ?? $0 }
        if !reasons.isEmpty { return (.resealed, reasons) }
        if mode == .reseal { return (.resealed, ["--reseal"]) }
        return (EnvironmentPolicy.matches(existing, skeleton) ? .upToDate : .resigned, [])
    }

    /// Creates the bundle, re-signs its policy, or re-seals it (see
    /// ``CompileMode``). A re-signed policy has the next serial and names
    /// the one it replaces; every epoch keeps the policy it was written
    /// under. A re-seal also puts every value in one fresh epoch encrypted
    /// to the declared recipients — a checkpoint naming every epoch it
    /// re-sealed (so readers that trusted any of them can tell). A
    /// version-1 bundle is verified by version 1's rules and upgraded.
    /// - Parameters:
    ///   - signerName: the admin key name to sign with (default: the first
    ///     declared admin whose secret key is in the GnuPG home).
    ///   - willReseal: told why, before a re-seal asks for a recipient's key.
    public func compile(
        as signerName: String? = nil, mode: CompileMode = .automatic, willReseal: ([String]) -> Void = { _ in }
    ) throws(CompilerError) -> CompileReport {
        try file.withLock { () throws(CompilerError) -> CompileReport in
            var bundle = try EnvironmentPolicy.skeleton(project, environment)
            progress?("verifying \(file.displayPath)")
            let existing = try verifiedBundle(upgrading: true)
            let (action, reasons) = existing.map { plan($0.bundle, bundle, mode) } ?? (.created, [])
            if action == .upToDate {
                let held = existing?.bundle.slots.count { $0.value != nil } ?? 0
                return CompileReport(action: .upToDate, values: held, dropped: [], signer: "")
            }
            let context = try userContext()
            let (admin, adminName) = try adminSigner(signerName, context)
            // Admins are appointed by admins: a policy signed by one the bundle's
            // current policy does not name is refused by every reader that trusts it.
            if let existing, !existing.bundle.admins.contains(admin) {
                let current = existing.bundle.admins.map { project.keyName(for: $0) ?? String($0.suffix(16)) }.sorted()
                throw CompilerError(
                    .forbidden,
                    "'\(adminName)' is not an admin of \(file.displayPath)'s current policy, so readers would refuse a policy it signs",
                    hints: ["sign with an admin of the current policy (\(current.joined(separator: ", "))): --as NAME; "
                        + "once that policy names '\(adminName)', '\(adminName)' can sign the next"])
            }
            let changedPatterns = existing.map { EnvironmentPolicy.changedPatterns($0.bundle, bundle) } ?? []
            if action == .resigned, let existing {
                return try resign(existing.bundle, as: bundle, admin: (admin, adminName), context, changedPatterns)
            }
            if action == .resealed { willReseal(reasons) }
            var values: [SlotKey: SecureBytes] = [:]
            var dropped: [String] = []
            var unmatched: [String] = []
            if let existing, existing.bundle.slots.contains(where: { $0.value != nil }) {
                progress?("reading the values of \(file.displayPath)")
                let opened = try open(
                    existing, with: context, purpose: "re-sealing \(file.displayPath) needs a recipient's secret key to read its values")
                let declared = Set(bundle.slots.map(\.slot))
                for (slot, value) in opened {
                    if declared.contains(slot) { values[slot] = value } else { dropped.append(slot.description) }
                }
                // A pattern judges writes: a value written before its pattern
                // tightened is re-sealed all the same, and said so.
                unmatched = values.keys.filter { slot in
                    guard let spec = project.manifests[slot.plugin]?.secret(slot.key), spec.pattern != nil else { return false }
                    return !values[slot]!.withUnsafeBytes { spec.accepts(String(decoding: $0, as: UTF8.self)) }
                }.sorted().map(\.description)
            }
            // The next policy, naming the one it replaces, signed before the
            // checkpoint: the checkpoint names the policy it is written under.
            bundle.policySerial = (existing?.bundle.policySerial ?? 0) + 1
            bundle.previousPolicy = existing?.bundle.policyReference?.id
            do throws(BundleSealError) {
                try PolicySigner.sign(&bundle, as: admin, with: context)
            } catch {
                throw .seal(error, bundle: file.displayPath)
            }
            // Without a value to re-seal, the checkpoint still names the epochs
            // it drops (so readers that trusted them see a re-seal, not a
            // rollback), claiming the slots it can as deleted.
            let emptied = values.isEmpty && !(existing?.bundle.epochs.isEmpty ?? true)
            let deletable = bundle.slots.filter { !$0.attributes.reserved }.map(\.slot)
            if !values.isEmpty || (emptied && !deletable.isEmpty) {
                let (encryptor, recipients) = try Self.encryptor(
                    recipients: (environment.recipients ?? []).map(\.value), key: { project.keys[$0].map(WriteFacts.Key.init) })
                defer { encryptor.remove() }
                let sealer = EpochSealer(
                    environment: environmentName, writer: admin, recipients: recipients,
                    policy: bundle.policyReference!, parents: .subsumes((existing?.bundle.epochs.map(\.id) ?? []).sorted()))
                let changes = values.isEmpty
                    ? deletable.map { EpochSealer.Change(slot: $0, value: nil) }
                    : values.sorted { $0.key < $1.key }.map { EpochSealer.Change(slot: $0.key, value: $0.value) }
                progress?("sealing \(changes.count) values")
                do throws(BundleSealError) {
                    // A checkpoint replaces every epoch: it is dated now, even
                    // when one of them was dated ahead (which it thus repairs).
                    let (epoch, sealed) = try sealer.seal(changes, afterTime: 0, encryptor: encryptor, signer: context)
                    bundle.epochs = [epoch]
                    for index in bundle.slots.indices {
                        if let value = sealed[bundle.slots[index].slot] { bundle.slots[index].value = value }
                    }
                } catch {
                    throw .seal(error, bundle: file.displayPath)
                }
            }
            progress?("writing \(file.displayPath)")
            let bytes = bundle.serialized()
            let identity = try file.replace(with: bytes, spare: cache?.spare(for: file.url))
            // Made from the declarations and signed here: the next write need not verify it again.
            cache?.record(project, environment: environmentName, digest: BundleDigest(bytes).value, written: identity)
            return CompileReport(
                action: action, values: values.count, dropped: dropped.sorted(), unmatched: unmatched, signer: adminName)
        }
    }

    /// Signs `skeleton` as the next policy of `existing` and keeps every
    /// epoch and sealed value: no value is read, so no recipient key is
    /// needed. The result is verified as a reader would before it replaces
    /// the file.
    private func resign(
        _ existing: SecretBundle, as skeleton: SecretBundle, admin: (fingerprint: String, name: String), _ context: Context,
        _ changedPatterns: [String]
    ) throws(CompilerError) -> CompileReport {
        var bundle = skeleton
        bundle.policySerial = existing.policySerial + 1
        bundle.previousPolicy = existing.policyReference?.id
        bundle.epochs = existing.epochs
        let values = Dictionary(existing.slots.map { ($0.slot, $0.value) }, uniquingKeysWith: { a, _ in a })
        for index in bundle.slots.indices { bundle.slots[index].value = values[bundle.slots[index].slot] ?? nil }
        progress?("signing the policy of \(file.displayPath)")
        do throws(BundleSealError) {
            try PolicySigner.sign(&bundle, as: admin.fingerprint, with: context)
            _ = try BundleVerifier(trustedAdmins: declaredAdmins).verify(bundle)
        } catch {
            throw .seal(error, bundle: file.displayPath)
        }
        let bytes = bundle.serialized()
        let identity = try file.replace(with: bytes, spare: cache?.spare(for: file.url))
        cache?.record(project, environment: environmentName, digest: BundleDigest(bytes).value, written: identity)
        return CompileReport(
            action: .resigned, values: bundle.slots.count { $0.value != nil }, dropped: [], changedPatterns: changedPatterns,
            signer: admin.name)
    }

    /// The admin that signs: the named one, or the first whose secret key is here.
    func adminSigner(_ name: String?, _ context: Context) throws(CompilerError) -> (fingerprint: String, name: String) {
        let admins = project.declarations.admins.map(\.value)
        if let name {
            guard admins.contains(name), let key = project.keys[name] else {
                throw CompilerError(.forbidden, "'\(name)' is not an admin", hints: ["admins: \(admins.joined(separator: ", "))"])
            }
            guard Self.hasSecret(key.info.fingerprint, context) else {
                throw CompilerError(.forbidden, "the secret key of admin '\(name)' is not in the GnuPG home")
            }
            return (key.info.fingerprint, name)
        }
        for admin in admins {
            if let key = project.keys[admin], Self.hasSecret(key.info.fingerprint, context) { return (key.info.fingerprint, admin) }
        }
        throw CompilerError(
            .forbidden, "no admin's secret key is in the GnuPG home",
            hints: [Self.importHint(admins, home: home)])
    }
}
