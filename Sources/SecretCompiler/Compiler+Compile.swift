import BundleFormat
import BundleSeal
import GPG
import SecretModel

extension Compiler {
    /// What `compile` did.
    public struct CompileReport: Sendable {
        public var created: Bool
        /// Values re-sealed into the new epoch.
        public var values: Int
        /// Slots that held a value but are no longer declared (their values are gone).
        public var dropped: [String]
        /// Slots whose value, re-sealed, does not match its manifest's current
        /// pattern (it was written before the pattern changed).
        public var unmatched: [String] = []
        /// The admin key name that signed.
        public var signer: String
    }

    /// Creates the bundle, or re-seals it: the policy re-signed with the next
    /// serial, naming the one it replaces, and all values in one fresh epoch
    /// encrypted to the declared recipients — a checkpoint naming every
    /// epoch it re-sealed (so readers that trusted any of them can tell). A version-1 bundle is verified by version 1's rules and
    /// upgraded.
    /// - Parameter signerName: the admin key name to sign with (default: the
    ///   first declared admin whose secret key is in the GnuPG home).
    public func compile(as signerName: String? = nil) throws(CompilerError) -> CompileReport {
        try file.withLock { () throws(CompilerError) -> CompileReport in
            let context = try userContext()
            let (admin, adminName) = try adminSigner(signerName, context)
            var bundle = try EnvironmentPolicy.skeleton(project, environment)
            var values: [SlotKey: SecureBytes] = [:]
            var dropped: [String] = []
            var unmatched: [String] = []
            let existing = try verifiedBundle(upgrading: true)
            if let existing, existing.bundle.slots.contains(where: { $0.value != nil }) {
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
            let bytes = bundle.serialized()
            let identity = try file.replace(with: bytes, spare: cache?.spare(for: file.url))
            // Made from the declarations and signed here: the next write need not verify it again.
            cache?.record(project, environment: environmentName, digest: BundleDigest(bytes).value, written: identity)
            return CompileReport(
                created: existing == nil, values: values.count, dropped: dropped.sorted(), unmatched: unmatched, signer: adminName)
        }
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
