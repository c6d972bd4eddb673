import Foundation

/// The seeds' `GET /settings/plugin-secrets/{plugin_slug}` answer: a plugin's
/// declared schema and which of its slots hold a value — never a value.
///
/// `environment`, `user` and `slots` extend the seed's shape; the seed's own
/// fields (`plugin_slug`, `declared`, `set_keys`) keep their names and meaning.
public struct PluginSecretsStatus: Sendable, Hashable, Codable {
    public var pluginSlug: String
    public var declared: [DeclaredSecret]
    /// Keys whose slot holds a value that would be served (sorted).
    public var setKeys: [String]
    public var environment: String
    /// nil for deployment-wide slots.
    public var user: String?
    /// One entry per declared slot, in manifest order.
    public var slots: [SlotStatus]

    public init(
        pluginSlug: String, declared: [DeclaredSecret], setKeys: [String], environment: String, user: String?,
        slots: [SlotStatus]
    ) {
        self.pluginSlug = pluginSlug
        self.declared = declared
        self.setKeys = setKeys
        self.environment = environment
        self.user = user
        self.slots = slots
    }

    enum CodingKeys: String, CodingKey {
        case pluginSlug = "plugin_slug"
        case declared
        case setKeys = "set_keys"
        case environment
        case user
        case slots
    }

    /// `user` is written as `null` for deployment-wide entries, never left out.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pluginSlug, forKey: .pluginSlug)
        try container.encode(declared, forKey: .declared)
        try container.encode(setKeys, forKey: .setKeys)
        try container.encode(environment, forKey: .environment)
        try container.encode(user, forKey: .user)
        try container.encode(slots, forKey: .slots)
    }
}

/// One entry of `declared`: what a settings form needs to render the field.
public struct DeclaredSecret: Sendable, Hashable, Codable {
    public var key: String
    public var label: String
    public var placeholder: String?
    public var help: String?

    public init(key: String, label: String, placeholder: String?, help: String?) {
        self.key = key
        self.label = label
        self.placeholder = placeholder
        self.help = help
    }
}

/// Where a slot stands (the seeds' pending / active, plus inactive and expired).
public enum SlotState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Declared, no value yet.
    case pending
    /// Holds a value that is served.
    case active
    /// Holds a value that is kept but not served.
    case inactive
    /// Holds a value past its expiry; not served.
    case expired
    /// Holds a value the loader could not decrypt or verify (a bad write by
    /// its writer); not served, and nothing falls back in its place.
    case unavailable
}

/// One slot's metadata and state.
public struct SlotStatus: Sendable, Hashable, Codable {
    /// How ``expires`` is written: `2027-06-30` for a midnight-UTC instant,
    /// else the full RFC 3339 time.
    public static func expiryText(_ date: Date) -> String {
        let full = date.formatted(.iso8601)
        return full.hasSuffix("T00:00:00Z") ? String(full.prefix(10)) : full
    }

    public var key: String
    public var status: SlotState
    /// True when the slot holds a value (served or not).
    public var hasValue: Bool
    public var reserved: Bool
    public var active: Bool
    /// RFC 3339, or `YYYY-MM-DD` for a whole day.
    public var expires: String?
    public var scopes: [String]?
    public var description: String?
    /// Who last wrote the value (a key name), when known.
    public var writtenBy: String?
    /// When the value was last written (RFC 3339), when known.
    public var updatedAt: String?

    public init(
        key: String, status: SlotState, hasValue: Bool, reserved: Bool, active: Bool, expires: String? = nil,
        scopes: [String]? = nil, description: String? = nil, writtenBy: String? = nil, updatedAt: String? = nil
    ) {
        self.key = key
        self.status = status
        self.hasValue = hasValue
        self.reserved = reserved
        self.active = active
        self.expires = expires
        self.scopes = scopes
        self.description = description
        self.writtenBy = writtenBy
        self.updatedAt = updatedAt
    }
}
