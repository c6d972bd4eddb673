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
        for recipient in environment.recipients ?? [] { bundle.recipients.append(try fingerprint(recipient.value)) }
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
}
