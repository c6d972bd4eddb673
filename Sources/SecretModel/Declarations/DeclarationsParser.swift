import Foundation
import SecretCore
import Yams

/// Turns `secretc.yaml` text into ``Declarations``, logging every problem it
/// can find in the file on its own. Cross-references are checked later, by
/// ``ProjectValidator``, once manifests and keys are read.
struct DeclarationsParser {
    private var reader: NodeReader
    private let directory: URL

    static let topLevelFields = ["version", "keys", "admins", "users", "plugins", "environments", "slots"]
    static let userFields = ["key"]
    static let environmentFields = ["recipients", "bundle", "quota"]
    static let slotFields = ["plugin", "user", "environments", "keys"]
    static let slotKeyFields = ["description", "expires", "reserved", "active", "scopes"]

    init(file: SourceFile) {
        reader = NodeReader(file: file)
        directory = file.url.deletingLastPathComponent()
    }

    /// Parses the file; nil when it is too broken to go on (syntax, wrong top-level shape, version).
    mutating func parse() -> (Declarations?, DiagnosticLog) {
        let declarations = parseDocument()
        return (declarations, reader.log)
    }

    private mutating func parseDocument() -> Declarations? {
        guard let root = reader.compose() else { return nil }
        guard let top = reader.mapping(root, "secretc.yaml") else { return nil }
        let fields = reader.fields(top, known: Self.topLevelFields, in: "secretc.yaml")

        guard let versionField = fields["version"] else {
            reader.log.error(.invalidInput, "missing 'version: \(Declarations.supportedVersion)'", at: reader.location(root))
            return nil
        }
        guard let version = reader.int(versionField.value, "version") else { return nil }
        guard version.value == Declarations.supportedVersion else {
            let newer = version.value > Declarations.supportedVersion
            reader.log.error(
                .unsupported,
                "unsupported version \(version.value); this secretc reads version \(Declarations.supportedVersion)"
                    + (newer ? " (upgrade secretc)" : ""),
                at: version.location)
            return nil
        }

        return Declarations(
            file: reader.file,
            version: version.value,
            keys: fields["keys"].map { parseKeys($0.value) } ?? [],
            admins: fields["admins"].map { names($0.value, "admins", .principal) } ?? [],
            users: fields["users"].map { parseUsers($0.value) } ?? [],
            plugins: fields["plugins"].map { parsePlugins($0.value) } ?? [],
            environments: fields["environments"].map { parseEnvironments($0.value) } ?? [],
            slots: fields["slots"].map { parseSlots($0.value) } ?? [])
    }

    // MARK: Sections

    private mutating func parseKeys(_ node: Node) -> [KeyDeclaration] {
        guard let mapping = reader.mapping(node, "'keys'") else { return [] }
        return mapping.compactMap { key, value in
            guard let name = name(key, .principal), let path = reader.string(value, "the file of key '\(name.value)'")
            else { return nil }
            return KeyDeclaration(name: name, path: path, url: resolve(path.value))
        }
    }

    private mutating func parseUsers(_ node: Node) -> [UserDeclaration] {
        guard let mapping = reader.mapping(node, "'users'") else { return [] }
        return mapping.compactMap { key, value in
            guard let id = name(key, .user) else { return nil }
            guard let body = reader.optionalMapping(value, "user '\(id.value)'") else { return nil }
            let fields = reader.fields(body, known: Self.userFields, in: "user '\(id.value)'")
            let keyName = fields["key"].flatMap { name($0.value, .principal) }
            return UserDeclaration(id: id, key: keyName)
        }
    }

    private mutating func parsePlugins(_ node: Node) -> [PluginDeclaration] {
        guard let mapping = reader.mapping(node, "'plugins'") else { return [] }
        return mapping.compactMap { key, value in
            guard let slug = name(key, .plugin),
                let path = reader.string(value, "the manifest of plugin '\(slug.value)'")
            else { return nil }
            return PluginDeclaration(slug: slug, manifestPath: path, manifestURL: resolve(path.value))
        }
    }

    private mutating func parseEnvironments(_ node: Node) -> [EnvironmentDeclaration] {
        guard let mapping = reader.mapping(node, "'environments'") else { return [] }
        return mapping.compactMap { key, value in
            guard let envName = name(key, .environment) else { return nil }
            let what = "environment '\(envName.value)'"
            guard let body = reader.optionalMapping(value, what) else { return nil }
            let fields = reader.fields(body, known: Self.environmentFields, in: what)
            let recipients: [Located<String>]?
            if let node = fields["recipients"]?.value {
                recipients = node.sequence == nil && !reader.isNull(node)
                    ? (reader.sequence(node, "the recipients of \(what)") == nil ? nil : [])
                    : names(node, "the recipients of \(what)", .principal)
            } else {
                recipients = []
            }
            let bundle = fields["bundle"].flatMap { reader.string($0.value, "the bundle of \(what)") }
                ?? Located("secrets/\(envName.value).bundle", at: envName.location)
            var quota = fields["quota"].flatMap { reader.int($0.value, "the quota of \(what)") }
            if let value = quota?.value, value < 1, let at = quota?.location {
                reader.log.error(.invalidInput, "the quota of \(what) must be at least 1, not \(value)", at: at)
                quota = nil
            }
            return EnvironmentDeclaration(
                name: envName, recipients: recipients, bundlePath: bundle, bundleURL: resolve(bundle.value), quota: quota)
        }
    }

    private mutating func parseSlots(_ node: Node) -> [SlotDeclaration] {
        guard let sequence = reader.sequence(node, "'slots'") else { return [] }
        return sequence.compactMap { entry in
            guard let body = reader.mapping(entry, "a slot entry") else { return nil }
            let fields = reader.fields(body, known: Self.slotFields, in: "a slot entry")
            guard let pluginNode = fields["plugin"] else {
                reader.log.error(.invalidInput, "a slot entry needs 'plugin'", at: reader.location(entry))
                return nil
            }
            guard let plugin = name(pluginNode.value, .plugin) else { return nil }
            let user = fields["user"].flatMap { name($0.value, .user) }
            if fields["user"] != nil && user == nil { return nil }
            let environments = fields["environments"].map { names($0.value, "'environments'", .environment) }
            let keys = fields["keys"].map { slotKeys($0.value) }
            return SlotDeclaration(
                location: reader.location(entry), plugin: plugin, user: user, environments: environments, keys: keys)
        }
    }

    /// `keys: [A, B]` or `keys: { A: {metadata}, B: ~ }`.
    private mutating func slotKeys(_ node: Node) -> [SlotKeyDeclaration] {
        if let sequence = node.sequence {
            return sequence.compactMap { item in name(item, .secretKey).map { SlotKeyDeclaration(key: $0, metadata: .init()) } }
        }
        guard let mapping = reader.mapping(node, "'keys'") else { return [] }
        return mapping.compactMap { key, value in
            guard let keyName = name(key, .secretKey) else { return nil }
            guard let body = reader.optionalMapping(value, "the metadata of '\(keyName.value)'") else { return nil }
            return SlotKeyDeclaration(key: keyName, metadata: metadata(body, of: keyName.value))
        }
    }

    private mutating func metadata(_ body: Node.Mapping, of key: String) -> SlotMetadata {
        let what = "the metadata of '\(key)'"
        let fields = reader.fields(body, known: Self.slotKeyFields, in: what)
        var metadata = SlotMetadata()
        metadata.description = fields["description"].flatMap { reader.string($0.value, "'description'")?.value }
        if let node = fields["expires"]?.value, let text = reader.string(node, "'expires'") {
            if let date = ExpiryDate.parse(text.value) {
                metadata.expires = date
                metadata.expiresLocation = text.location
            } else {
                reader.log.error(
                    .invalidInput, "'expires' must be a date (YYYY-MM-DD) or an RFC 3339 time, not '\(text.value)'",
                    at: text.location)
            }
        }
        metadata.reserved = fields["reserved"].flatMap { reader.bool($0.value, "'reserved'")?.value } ?? false
        metadata.active = fields["active"].flatMap { reader.bool($0.value, "'active'")?.value } ?? true
        metadata.scopes = fields["scopes"].map { names($0.value, "'scopes'", .scope).map(\.value) }
        return metadata
    }

    // MARK: Names

    /// A name that must follow `kind`'s grammar.
    private mutating func name(_ node: Node, _ kind: NameKind) -> Located<String>? {
        guard let text = reader.string(node, "a \(kind.rawValue)") else { return nil }
        guard kind.accepts(text.value) else {
            reader.log.error(.invalidInput, "invalid \(kind.rawValue) '\(text.value)': use \(kind.rule)", at: text.location)
            return nil
        }
        return text
    }

    private mutating func names(_ node: Node, _ what: String, _ kind: NameKind) -> [Located<String>] {
        if reader.isNull(node) { return [] }
        guard let sequence = reader.sequence(node, what) else { return [] }
        return sequence.compactMap { name($0, kind) }
    }

    private func resolve(_ path: String) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    }
}

/// Expiry instants: `YYYY-MM-DD` means the start of that day, UTC; an RFC 3339
/// time means that instant.
public enum ExpiryDate {
    public static func parse(_ text: String) -> Date? {
        let dateOnly = /^(\d{4})-(\d{2})-(\d{2})$/
        if let match = text.wholeMatch(of: dateOnly) {
            var components = DateComponents()
            components.calendar = Calendar(identifier: .gregorian)
            components.timeZone = TimeZone(identifier: "UTC")
            components.year = Int(match.1)
            components.month = Int(match.2)
            components.day = Int(match.3)
            guard components.isValidDate, let date = components.date else { return nil }
            return date
        }
        return try? Date(text, strategy: .iso8601)
    }

    /// `2027-06-30` for a midnight-UTC instant, else the full RFC 3339 time.
    public static func format(_ date: Date) -> String {
        let full = date.formatted(.iso8601)
        return full.hasSuffix("T00:00:00Z") ? String(full.prefix(10)) : full
    }
}
