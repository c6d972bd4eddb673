import Foundation
import SecretCore

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

    private mutating func parseKeys(_ node: YAMLNode) -> [KeyDeclaration] {
        namedPaths(node, section: "'keys'", .principal) { "the file of key '\($0)'" }
            .map { KeyDeclaration(name: $0.name, path: $0.path, url: $0.url) }
    }

    /// The `NAME: PATH` entries of a section: names checked against `kind`,
    /// paths resolved against the declarations' folder.
    private mutating func namedPaths(
        _ node: YAMLNode, section: String, _ kind: NameKind, path what: (String) -> String
    ) -> [(name: Located<String>, path: Located<String>, url: URL)] {
        guard let mapping = reader.mapping(node, section) else { return [] }
        return mapping.pairs.compactMap { key, value in
            guard let name = name(key, kind), let path = reader.string(value, what(name.value)),
                  let url = confined(path, what(name.value))
            else { return nil }
            return (name, path, url)
        }
    }

    private mutating func parseUsers(_ node: YAMLNode) -> [UserDeclaration] {
        guard let mapping = reader.mapping(node, "'users'") else { return [] }
        return mapping.pairs.compactMap { key, value in
            guard let id = name(key, .user) else { return nil }
            guard let body = reader.optionalMapping(value, "user '\(id.value)'") else { return nil }
            let fields = reader.fields(body, known: Self.userFields, in: "user '\(id.value)'")
            let keyName = fields["key"].flatMap { name($0.value, .principal) }
            return UserDeclaration(id: id, key: keyName)
        }
    }

    private mutating func parsePlugins(_ node: YAMLNode) -> [PluginDeclaration] {
        namedPaths(node, section: "'plugins'", .plugin) { "the manifest of plugin '\($0)'" }
            .map { PluginDeclaration(slug: $0.name, manifestPath: $0.path, manifestURL: $0.url) }
    }

    private mutating func parseEnvironments(_ node: YAMLNode) -> [EnvironmentDeclaration] {
        guard let mapping = reader.mapping(node, "'environments'") else { return [] }
        return mapping.pairs.compactMap { key, value in
            guard let envName = name(key, .environment) else { return nil }
            let what = "environment '\(envName.value)'"
            guard let body = reader.optionalMapping(value, what) else { return nil }
            let fields = reader.fields(body, known: Self.environmentFields, in: what)
            let recipients: [Located<String>]?
            if let node = fields["recipients"]?.value {
                recipients = node.kind != .sequence && !reader.isNull(node)
                    ? (reader.sequence(node, "the recipients of \(what)") == nil ? nil : [])
                    : names(node, "the recipients of \(what)", .principal)
            } else {
                recipients = []
            }
            let bundle = fields["bundle"].flatMap { reader.string($0.value, "the bundle of \(what)") }
                ?? Located("secrets/\(envName.value).bundle", at: envName.location)
            guard let bundleURL = confined(bundle, "the bundle of \(what)") else { return nil }
            var quota = fields["quota"].flatMap { reader.int($0.value, "the quota of \(what)") }
            if let value = quota?.value, value < 1, let at = quota?.location {
                reader.log.error(.invalidInput, "the quota of \(what) must be at least 1, not \(value)", at: at)
                quota = nil
            }
            return EnvironmentDeclaration(
                name: envName, recipients: recipients, bundlePath: bundle, bundleURL: bundleURL, quota: quota)
        }
    }

    private mutating func parseSlots(_ node: YAMLNode) -> [SlotDeclaration] {
        guard let sequence = reader.sequence(node, "'slots'") else { return [] }
        var slots: [SlotDeclaration] = []
        slots.reserveCapacity(sequence.count)
        for entry in sequence {
            guard let body = reader.mapping(entry, "a slot entry") else { continue }
            var plugin: Located<String>?
            var sawPlugin = false
            var user: Located<String>?
            var badUser = false
            var environments: [Located<String>]?
            var keys: [SlotKeyDeclaration]?
            reader.forEachField(body, known: Self.slotFields, in: "a slot entry") { reader, field, _, value in
                switch field {
                case "plugin":
                    sawPlugin = true
                    plugin = Self.name(&reader, value, .plugin)
                case "user":
                    user = Self.name(&reader, value, .user)
                    badUser = user == nil
                case "environments": environments = Self.names(&reader, value, "'environments'", .environment)
                default: keys = Self.slotKeys(&reader, value)
                }
            }
            guard sawPlugin else {
                reader.log.error(.invalidInput, "a slot entry needs 'plugin'", at: reader.location(entry))
                continue
            }
            guard let plugin, !badUser else { continue }
            slots.append(SlotDeclaration(
                location: reader.location(entry), plugin: plugin, user: user, environments: environments, keys: keys))
        }
        return slots
    }

    /// `keys: [A, B]` or `keys: { A: {metadata}, B: ~ }`.
    private static func slotKeys(_ reader: inout NodeReader, _ node: YAMLNode) -> [SlotKeyDeclaration] {
        if node.kind == .sequence {
            return node.children.compactMap { item in
                name(&reader, item, .secretKey).map { SlotKeyDeclaration(key: $0, metadata: .init()) }
            }
        }
        guard let mapping = reader.mapping(node, "'keys'") else { return [] }
        return mapping.pairs.compactMap { key, value in
            guard let keyName = name(&reader, key, .secretKey) else { return nil }
            guard let body = reader.optionalMapping(value, "the metadata of '\(keyName.value)'") else { return nil }
            return SlotKeyDeclaration(key: keyName, metadata: metadata(&reader, body, of: keyName.value))
        }
    }

    private static func metadata(_ reader: inout NodeReader, _ body: YAMLNode, of key: String) -> SlotMetadata {
        var metadata = SlotMetadata()
        reader.forEachField(body, known: Self.slotKeyFields, in: "the metadata of '\(key)'") { reader, field, _, value in
            switch field {
            case "description": metadata.description = reader.string(value, "'description'")?.value
            case "expires":
                guard let text = reader.string(value, "'expires'") else { return }
                if let date = ExpiryDate.parse(text.value) {
                    metadata.expires = date
                    metadata.expiresLocation = text.location
                } else {
                    reader.log.error(
                        .invalidInput, "'expires' must be a date (YYYY-MM-DD) or an RFC 3339 time, not '\(text.value)'",
                        at: text.location)
                }
            case "reserved": metadata.reserved = reader.bool(value, "'reserved'")?.value ?? false
            case "active": metadata.active = reader.bool(value, "'active'")?.value ?? true
            default: metadata.scopes = Self.names(&reader, value, "'scopes'", .scope).map(\.value)
            }
        }
        return metadata
    }

    // MARK: Names

    /// A name that must follow `kind`'s grammar.
    private mutating func name(_ node: YAMLNode, _ kind: NameKind) -> Located<String>? {
        Self.name(&reader, node, kind)
    }

    private mutating func names(_ node: YAMLNode, _ what: @autoclosure () -> String, _ kind: NameKind) -> [Located<String>] {
        Self.names(&reader, node, what(), kind)
    }

    private static func name(_ reader: inout NodeReader, _ node: YAMLNode, _ kind: NameKind) -> Located<String>? {
        guard let text = reader.string(node, "a \(kind.rawValue)") else { return nil }
        guard kind.accepts(text.value) else {
            reader.log.error(.invalidInput, "invalid \(kind.rawValue) '\(text.value)': use \(kind.rule)", at: text.location)
            return nil
        }
        return text
    }

    private static func names(
        _ reader: inout NodeReader, _ node: YAMLNode, _ what: @autoclosure () -> String, _ kind: NameKind
    ) -> [Located<String>] {
        if reader.isNull(node) { return [] }
        guard let sequence = reader.sequence(node, what()) else { return [] }
        return sequence.compactMap { name(&reader, $0, kind) }
    }

    /// `path` resolved against the declarations' folder, when it stays
    /// inside that folder after `..` and symbolic links are resolved; else
    /// an error at the path (which quotes nothing of the file it names) and
    /// nil. A pull request's declarations must not make `check` read, and
    /// quote, a file elsewhere on the machine (git's and CI's concern too).
    private mutating func confined(_ path: Located<String>, _ what: String) -> URL? {
        func refuse(_ why: String) -> URL? {
            reader.log.error(.forbidden, "\(what) '\(path.value)' \(why); paths stay inside the folder of secretc.yaml", at: path.location)
            return nil
        }
        guard !path.value.hasPrefix("/") else { return refuse("is absolute") }
        let root = directory.standardizedFileURL.resolvingSymlinksInPath().path
        let lexical = directory.appendingPathComponent(path.value).standardizedFileURL
        guard Self.isInside(lexical.path, directory.standardizedFileURL.path) else { return refuse("leads outside it") }
        // Symbolic links: of the file itself when it exists, else of its
        // nearest folder that does (a bundle not yet created).
        var existing = lexical
        while !FileManager.default.fileExists(atPath: existing.path), existing.path.count > root.count {
            existing.deleteLastPathComponent()
        }
        guard Self.isInside(existing.resolvingSymlinksInPath().path, root) else {
            return refuse("leads outside it through a symbolic link")
        }
        return lexical
    }

    private static func isInside(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root.hasSuffix("/") ? root : root + "/")
    }
}

/// Expiry instants: `YYYY-MM-DD` means the start of that day, UTC; an RFC 3339
/// time means that instant.
public enum ExpiryDate {
    public static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        if bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
           let year = number(bytes[0..<4]), let month = number(bytes[5..<7]), let day = number(bytes[8..<10]) {
            return civilDate(year: year, month: month, day: day)
        }
        guard bytes.count > 10, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") else { return nil }
        return try? Date(text, strategy: .iso8601)
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value
    }

    /// Midnight UTC of a proleptic Gregorian date, or nil if the date does not exist.
    private static func civilDate(year: Int, month: Int, day: Int) -> Date? {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...lengths[month - 1]).contains(day) else { return nil }
        // Days from civil (H. Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days) * 86_400)
    }

    /// `2027-06-30` for a midnight-UTC instant, else the full RFC 3339 time.
    public static func format(_ date: Date) -> String { SlotStatus.expiryText(date) }
}
