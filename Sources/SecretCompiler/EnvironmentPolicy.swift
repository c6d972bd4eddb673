import BundleFormat
import Foundation
import GPG
import SecretCore
import SecretModel

/// What the declarations say an environment's bundle must hold, before any
/// value or signature: recipients, admins, writers and their keys, and every
/// declared slot with its attributes.
public enum EnvironmentPolicy {
    public static func skeleton(_ project: Project, _ environment: EnvironmentDeclaration) throws(CompilerError)
        -> SecretBundle
    {
        let declarations = project.declarations
        func fingerprint(_ name: String) throws(CompilerError) -> String {
            guard let key = project.keys[name] else {
                throw CompilerError(.notFound, "key '\(name)' cannot be read", hints: ["run `secretc check`"])
            }
            return key.info.fingerprint
        }
        func binary(_ name: String) throws(CompilerError) -> [UInt8] {
            guard let key = project.keys[name], let bytes = try? KeyFile.binary(from: key.data) else {
                throw CompilerError(.notFound, "key '\(name)' cannot be read", hints: ["run `secretc check`"])
            }
            return bytes
        }
        var bundle = SecretBundle(environment: environment.name.value)
        for recipient in environment.recipients ?? [] {
            // Its key too: readers and writers check every data key's session
            // keys against the keys the policy signs.
            let value = try fingerprint(recipient.value)
            bundle.recipients.append(value)
            bundle.keys[value] = try binary(recipient.value)
        }
        for admin in declarations.admins {
            let value = try fingerprint(admin.value)
            if !bundle.admins.contains(value) { bundle.admins.append(value) }
            bundle.keys[value] = try binary(admin.value)
        }
        for user in declarations.users {
            guard let key = user.key?.value else { continue }
            let value = try fingerprint(key)
            bundle.users[user.id.value] = value
            bundle.keys[value] = try binary(key)
        }
        bundle.recipients = Array(Set(bundle.recipients)).sorted()
        bundle.admins.sort()
        for slot in project.slots where slot.environment == environment.name.value {
            let spec = project.manifests[slot.plugin]?.secret(slot.key)
            let metadata = slot.metadata
            bundle.slots.append(SlotLine(
                slot: SlotKey(owner: slot.user, plugin: slot.plugin, key: slot.key), value: nil,
                attributes: SlotAttributes(
                    env: spec?.environmentVariable(plugin: slot.plugin)
                        ?? defaultEnvironmentVariable(plugin: slot.plugin, key: slot.key),
                    expires: metadata.expires.map { Int($0.timeIntervalSince1970) }, reserved: metadata.reserved,
                    inactive: !metadata.active, scopes: metadata.scopes, description: metadata.description)))
        }
        bundle.slots.sort { $0.slot < $1.slot }
        // The schema of every plugin with a slot here, for a loader's status answers.
        for plugin in Set(bundle.slots.map(\.slot.plugin)).sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            for spec in project.manifests[plugin]?.secrets ?? [] {
                bundle.fields.append(FieldLine(
                    plugin: plugin, key: spec.key.value, label: spec.label, placeholder: spec.placeholder, help: spec.help,
                    pattern: spec.pattern?.value))
            }
        }
        return bundle
    }

    /// True when `bundle`'s policy is exactly what the declarations call for:
    /// the same fields `policyPayload()` renders, compared without rendering it.
    public static func matches(_ bundle: SecretBundle, _ skeleton: SecretBundle) -> Bool {
        guard bundle.environment == skeleton.environment, Set(bundle.recipients) == Set(skeleton.recipients),
              Set(bundle.admins) == Set(skeleton.admins), bundle.users == skeleton.users, bundle.keys == skeleton.keys, bundle.fields == skeleton.fields,
              bundle.slots.count == skeleton.slots.count
        else { return false }
        // Both are in canonical slot order.
        return zip(bundle.slots, skeleton.slots).allSatisfy { $0.slot == $1.slot && $0.attributes == $1.attributes }
    }

    /// Why re-signing `skeleton` as the policy of `bundle`, keeping every
    /// epoch and ciphertext as they are, would not give a valid bundle — so
    /// `compile` must re-seal (read every value with a recipient's secret
    /// key and encrypt it again). Empty when an admin's signature is enough:
    /// users, slots, metadata, manifests and writers' keys may change as
    /// long as every kept write stays authorized and names a declared slot.
    /// - Parameter name: a principal's name for a fingerprint, for messages.
    public static func reSealReasons(
        _ bundle: SecretBundle, _ skeleton: SecretBundle, name: (String) -> String
    ) -> [String] {
        var reasons: [String] = []
        if bundle.formatVersion != SecretBundle.version {
            reasons.append("the bundle is format version \(bundle.formatVersion)")
        }
        let (had, want) = (Set(bundle.recipients), Set(skeleton.recipients))
        if had != want {
            // Data keys are encrypted to the recipients: a change re-encrypts them all.
            let added = want.subtracting(had).map(name).sorted(), removed = had.subtracting(want).map(name).sorted()
            reasons.append("recipients changed ("
                + [added.isEmpty ? nil : "added \(added.joined(separator: ", "))",
                   removed.isEmpty ? nil : "removed \(removed.joined(separator: ", "))"]
                    .compactMap { $0 }.joined(separator: "; ") + ")")
        }
        // Every kept write must still be authorized, and name a declared slot.
        let admins = Set(skeleton.admins)
        let declared = Set(skeleton.slots.map(\.slot))
        var unauthorized: Set<String> = [], undeclared: Set<String> = []
        for epoch in bundle.epochs {
            for claim in epoch.claims {
                if !declared.contains(claim.slot) { undeclared.insert(claim.slot.description) }
                let allowed = admins.contains(epoch.writer)
                    || claim.slot.owner.map { skeleton.users[$0] == epoch.writer } == true
                if !allowed { unauthorized.insert(name(epoch.writer)) }
            }
        }
        if let slot = undeclared.min() {
            let more = undeclared.count > 1 ? " (and \(undeclared.count - 1) more)" : ""
            reasons.append("slot \(slot)\(more) is no longer declared but the bundle holds writes to it")
        }
        if !unauthorized.isEmpty {
            reasons.append("writes signed by \(unauthorized.sorted().joined(separator: ", ")) would no longer be authorized "
                + "(a writer's key changed, or a writer was removed)")
        }
        return reasons
    }

    /// Slots whose manifest pattern changed and that hold a value: a user's
    /// value written before is served only if it matches the new pattern.
    public static func changedPatterns(_ bundle: SecretBundle, _ skeleton: SecretBundle) -> [String] {
        func patterns(_ fields: [FieldLine]) -> [String: String?] {
            Dictionary(fields.map { ("\($0.plugin)/\($0.key)", $0.pattern) }, uniquingKeysWith: { a, _ in a })
        }
        let (old, new) = (patterns(bundle.fields), patterns(skeleton.fields))
        let held = Set(bundle.slots.filter { $0.value != nil }.map { "\($0.slot.plugin)/\($0.slot.key)" })
        return new.keys.filter { key in held.contains(key) && old[key] != nil && old[key]! != new[key]! }.sorted()
    }
}

