import Foundation

/// The parsed `secretc.yaml`: who holds which key, which plugins and
/// environments exist, and which secret slots are declared. Holds no values.
public struct Declarations: Sendable {
    /// The format version this secretc reads.
    public static let supportedVersion = 1

    /// The declarations in `file` (e.g. as a git revision held them), or nil
    /// when they are too broken to read; paths are confined as always.
    public static func parse(_ file: SourceFile) -> Declarations? {
        var parser = DeclarationsParser(file: file)
        return parser.parse().0
    }

    public var file: SourceFile
    public var version: Int
    public var keys: [KeyDeclaration]
    public var admins: [Located<String>]
    public var users: [UserDeclaration]
    public var plugins: [PluginDeclaration]
    public var environments: [EnvironmentDeclaration]
    public var slots: [SlotDeclaration]

    /// The folder every path in the file is relative to.
    public var directory: URL { file.url.deletingLastPathComponent() }
}

/// `keys: NAME: PATH` — a principal's public key file.
public struct KeyDeclaration: Sendable {
    public var name: Located<String>
    /// The file as written in the declarations.
    public var path: Located<String>
    /// The file, resolved against the declarations' folder.
    public var url: URL
}

/// `users: ID: { key: NAME }` — a user and, optionally, the key that lets them write their own slots.
public struct UserDeclaration: Sendable {
    public var id: Located<String>
    public var key: Located<String>?
}

/// `plugins: SLUG: PATH` — a plugin and its manifest.
public struct PluginDeclaration: Sendable {
    public var slug: Located<String>
    public var manifestPath: Located<String>
    public var manifestURL: URL
}

/// `environments: NAME: { recipients, bundle, quota }`.
public struct EnvironmentDeclaration: Sendable {
    public var name: Located<String>
    /// Key names that can decrypt this environment's bundle at boot;
    /// nil when the field was malformed (already reported).
    public var recipients: [Located<String>]?
    /// Where the bundle lives (default `secrets/NAME.bundle`).
    public var bundlePath: Located<String>
    public var bundleURL: URL
    /// At most this many slots, if set.
    public var quota: Located<Int>?
}

/// One entry of `slots:`; expands to one slot per environment and key.
public struct SlotDeclaration: Sendable {
    public var location: SourceLocation
    public var plugin: Located<String>
    /// nil for a deployment-wide slot.
    public var user: Located<String>?
    /// nil for every environment.
    public var environments: [Located<String>]?
    /// nil for every key the manifest declares.
    public var keys: [SlotKeyDeclaration]?
}

/// A key named in a slot entry, with its metadata.
public struct SlotKeyDeclaration: Sendable {
    public var key: Located<String>
    public var metadata: SlotMetadata
}

/// Per-slot metadata from the seeds: description, expiry, reserved, active, scopes.
public struct SlotMetadata: Sendable, Hashable, Codable {
    /// Free text describing the value (never the value).
    public var description: String?
    /// The instant the value stops being served.
    public var expires: Date?
    /// Where `expires` was written, for diagnostics.
    public var expiresLocation: SourceLocation?
    /// A reserved slot cannot be deleted until it is un-reserved here.
    public var reserved: Bool
    /// An inactive value is kept but not served.
    public var active: Bool
    /// The services that may read the value; nil: the manifest's scopes, or any service.
    public var scopes: [String]?

    public init(
        description: String? = nil, expires: Date? = nil, expiresLocation: SourceLocation? = nil,
        reserved: Bool = false, active: Bool = true, scopes: [String]? = nil
    ) {
        self.description = description
        self.expires = expires
        self.expiresLocation = expiresLocation
        self.reserved = reserved
        self.active = active
        self.scopes = scopes
    }
}
