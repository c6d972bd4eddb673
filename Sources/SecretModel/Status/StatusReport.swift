import Foundation
import SecretCore

/// Builds the seeds' GET shape for every (environment, owner, plugin) the
/// declarations name, optionally filtered. Values are never involved.
public struct StatusReport: Sendable {
    /// Filters; nil matches everything. `user` "-" selects deployment-wide slots.
    public var environment: String?
    public var user: String?
    public var plugin: String?

    public init(environment: String? = nil, user: String? = nil, plugin: String? = nil) {
        self.environment = environment
        self.user = user
        self.plugin = plugin
    }

    /// One entry per (environment, owner, plugin) with at least one declared slot,
    /// in environment, then owner (deployment first), then plugin order.
    /// - Parameter state: the state of a slot that has a value (nil: pending).
    public func build(_ project: Project, state: (ResolvedSlot) -> SlotStatus? = { _ in nil }) -> [PluginSecretsStatus] {
        struct Group: Hashable {
            var environment: String
            var user: String?
            var plugin: String
        }
        var order: [Group] = []
        var grouped: [Group: [ResolvedSlot]] = [:]
        for slot in project.slots where matches(slot) {
            let group = Group(environment: slot.environment, user: slot.user, plugin: slot.plugin)
            if grouped[group] == nil { order.append(group) }
            grouped[group, default: []].append(slot)
        }
        let environmentRank = Dictionary(
            project.declarations.environments.enumerated().map { ($1.name.value, $0) }, uniquingKeysWith: { a, _ in a })
        order.sort {
            (environmentRank[$0.environment] ?? 0, $0.user ?? "", $0.plugin)
                < (environmentRank[$1.environment] ?? 0, $1.user ?? "", $1.plugin)
        }
        return order.compactMap { group in
            guard let manifest = project.manifests[group.plugin], let slots = grouped[group] else { return nil }
            let byKey = Dictionary(slots.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
            let declared = manifest.secrets.filter { byKey[$0.key.value] != nil }
            let statuses = declared.compactMap { spec -> SlotStatus? in
                guard let slot = byKey[spec.key.value] else { return nil }
                return state(slot) ?? Self.pending(slot)
            }
            return PluginSecretsStatus(
                pluginSlug: group.plugin,
                declared: declared.map {
                    DeclaredSecret(key: $0.key.value, label: $0.label, placeholder: $0.placeholder, help: $0.help)
                },
                setKeys: statuses.filter { $0.status == .active }.map(\.key).sorted(),
                environment: group.environment,
                user: group.user,
                slots: statuses)
        }
    }

    private func matches(_ slot: ResolvedSlot) -> Bool {
        if let environment, slot.environment != environment { return false }
        if let plugin, slot.plugin != plugin { return false }
        if let user {
            if user == "-" { return slot.user == nil }
            return slot.user == user
        }
        return true
    }

    /// A declared slot with no value.
    public static func pending(_ slot: ResolvedSlot) -> SlotStatus {
        SlotStatus(
            key: slot.key, status: .pending, hasValue: false, reserved: slot.metadata.reserved,
            active: slot.metadata.active, expires: slot.metadata.expires.map(ExpiryDate.format),
            scopes: slot.metadata.scopes, description: slot.metadata.description)
    }
}
