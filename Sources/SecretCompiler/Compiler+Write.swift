import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretModel

extension Compiler {
    /// What a write did: which slots it set and deleted, and who signed.
    public struct WriteReport: Sendable {
        public var set: [String]
        public var deleted: [String]
        /// The key name that signed; nil when nothing changed.
        public var signer: String?
    }

    /// Upserts a batch for one owner and plugin (the seeds' PUT): keys not
    /// named are untouched; a nil or empty value deletes the slot.
    /// Everything is validated before anything is written.
    public func write(
        plugin: String, user: String?, changes: [(key: String, value: SecureBytes?)], as signerName: String? = nil
    ) throws(CompilerError) -> WriteReport {
        let manifest = try requireManifest(plugin)
        if let user, !project.declarations.users.contains(where: { $0.id.value == user }) {
            throw CompilerError(.notFound, "user '\(user)' is not declared")
        }
        let skeleton = try EnvironmentPolicy.skeleton(project, environment)
        let declared = declaredSlots(skeleton, plugin: plugin, user: user)
        var sealed: [EpochSealer.Change] = []
        var seen = Set<String>()
        for change in changes {
            guard seen.insert(change.key).inserted else {
                throw CompilerError(.invalidInput, "'\(change.key)' is given twice")
            }
            guard let spec = manifest.secret(change.key) else {
                let names = manifest.secrets.map(\.key.value)
                throw CompilerError(
                    .notFound, "plugin '\(plugin)' declares no secret '\(change.key)'",
                    hints: ["declared: \(names.joined(separator: ", "))"])
            }
            let slot = SlotKey(owner: user, plugin: plugin, key: change.key)
            guard let line = declared[slot] else {
                throw CompilerError(
                    .notFound, "slot \(environmentName)/\(slot) is not declared",
                    hints: ["declare it under 'slots' in \(project.declarations.file.displayPath)"])
            }
            let value = change.value.flatMap { $0.isEmpty ? nil : $0 }
            if let value {
                guard let text = value.utf8String() else {
                    throw CompilerError(.invalidInput, "the value for '\(change.key)' is not UTF-8 text")
                }
                guard spec.accepts(text) else {
                    throw CompilerError(
                        .invalidInput, "the value for '\(change.key)' does not match its pattern \(spec.pattern?.value ?? "")",
                        hints: spec.placeholder.map { ["expected something like \($0)"] } ?? [])
                }
            } else if line.attributes.reserved {
                throw CompilerError(
                    .forbidden, "slot \(environmentName)/\(slot) is reserved and cannot be deleted",
                    hints: ["un-reserve it in the declarations and run `secretc compile` first"])
            }
            sealed.append(EpochSealer.Change(slot: slot, value: value))
        }
        return try commit(sealed, owner: user, signerName: signerName, skeleton: skeleton)
    }

    /// Deletes every slot `user` has for `plugin` (the seeds' DELETE, "disconnect").
    public func disconnect(plugin: String, user: String?, as signerName: String? = nil) throws(CompilerError) -> WriteReport {
        _ = try requireManifest(plugin)
        let skeleton = try EnvironmentPolicy.skeleton(project, environment)
        let slots = declaredSlots(skeleton, plugin: plugin, user: user)
        if let reserved = slots.values.first(where: { $0.attributes.reserved }) {
            throw CompilerError(
                .forbidden, "slot \(environmentName)/\(reserved.slot) is reserved and cannot be deleted",
                hints: ["un-reserve it in the declarations and run `secretc compile` first"])
        }
        let changes = slots.keys.sorted().map { EpochSealer.Change(slot: $0, value: nil) }
        return try commit(changes, owner: user, signerName: signerName, skeleton: skeleton)
    }

    private func requireManifest(_ plugin: String) throws(CompilerError) -> Manifest {
        guard let manifest = project.manifests[plugin] else {
            throw CompilerError(.notFound, "plugin '\(plugin)' is not declared")
        }
        return manifest
    }

    /// This owner's declared slots of `plugin` in this environment, as the policy states them.
    private func declaredSlots(_ skeleton: SecretBundle, plugin: String, user: String?) -> [SlotKey: SlotLine] {
        Dictionary(
            skeleton.slots.filter { $0.slot.plugin == plugin && $0.slot.owner == user }.map { ($0.slot, $0) },
            uniquingKeysWith: { a, _ in a })
    }

    /// Authorizes, seals and writes; nothing is written when a step fails.
    private func commit(
        _ changes: [EpochSealer.Change], owner: String?, signerName: String?, skeleton: SecretBundle
    ) throws(CompilerError) -> WriteReport {
        let context = try userContext()
        let (writer, writerName) = try writeSigner(owner: owner, signerName, context)
        return try file.withLock { () throws(CompilerError) -> WriteReport in
            let verified = try currentBundle(skeleton)
            var bundle = verified.bundle
            // Deleting what holds no value changes nothing.
            let current = Dictionary(bundle.slots.map { ($0.slot, $0.value != nil) }, uniquingKeysWith: { a, _ in a })
            let effective = changes.filter { $0.value != nil || current[$0.slot] == true }
            guard !effective.isEmpty else { return WriteReport(set: [], deleted: [], signer: nil) }
            let (encryptor, encryptorHome) = try self.encryptor(bundle)
            defer { encryptorHome.remove() }
            let sealer = EpochSealer(environment: environmentName, writer: writer, recipients: bundle.recipients)
            do throws(BundleSealError) {
                let (epoch, sealed) = try sealer.seal(effective, after: bundle.epochs, encryptor: encryptor, signer: context)
                bundle.epochs.append(epoch)
                bundle.epochs.sort(by: Epoch.canonicalOrder)
                for index in bundle.slots.indices {
                    if let value = sealed[bundle.slots[index].slot] { bundle.slots[index].value = value }
                }
            } catch {
                throw .seal(error, bundle: file.displayPath)
            }
            try file.replace(with: bundle.serialized())
            return WriteReport(
                set: effective.filter { $0.value != nil }.map(\.slot.description),
                deleted: effective.filter { $0.value == nil }.map(\.slot.description), signer: writerName)
        }
    }

    /// Row-level security: a user's own key writes that user's slots; an
    /// admin's writes any slot. Default: the owner's key if its secret is
    /// here, else the first admin's that is.
    func writeSigner(owner: String?, _ name: String?, _ context: Context) throws(CompilerError)
        -> (fingerprint: String, name: String)
    {
        let admins = project.declarations.admins.map(\.value)
        let ownerKey = owner.flatMap { user in project.declarations.users.first { $0.id.value == user }?.key?.value }
        let allowed = admins + (ownerKey.map { [$0] } ?? [])
        let whose = owner.map { "user '\($0)'" } ?? "the deployment"
        if let name {
            guard allowed.contains(name) else {
                throw CompilerError(
                    .forbidden, "key '\(name)' may not write slots of \(whose)",
                    hints: ["allowed: \(allowed.joined(separator: ", "))"])
            }
            guard let key = project.keys[name], hasSecret(key.info.fingerprint, context) else {
                throw CompilerError(.forbidden, "the secret key of '\(name)' is not in the GnuPG home")
            }
            return (key.info.fingerprint, name)
        }
        for candidate in (ownerKey.map { [$0] } ?? []) + admins {
            if let key = project.keys[candidate], hasSecret(key.info.fingerprint, context) {
                return (key.info.fingerprint, candidate)
            }
        }
        throw CompilerError(
            .forbidden, "no key in the GnuPG home may write slots of \(whose)",
            hints: ["allowed: \(allowed.joined(separator: ", ")); pick one with --as NAME"])
    }
}
