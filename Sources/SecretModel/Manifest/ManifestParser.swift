import Foundation
import SecretCore

/// Turns `manifest.json` text into a ``Manifest``. The JSON is read twice:
/// strictly by Foundation (so YAML-only syntax is refused) and by Yams, which
/// keeps every node's position for diagnostics.
struct ManifestParser {
    private var reader: NodeReader

    /// Fields secretc reads at the top level. Others are allowed (a manifest
    /// belongs to its plugin and may carry more) but warned about.
    static let topLevelFields = ["slug", "name", "secrets", "version", "description", "author", "homepage", "icon"]
    static let secretFields = ["key", "label", "placeholder", "help", "required", "pattern", "env", "scopes", "owner"]

    /// Set for a manifest whose bytes are known to have passed this parser
    /// without errors before (the write cache's record): the checks that
    /// cost the most and cannot fail on those bytes — Foundation's strict
    /// JSON pass and compiling each pattern — are skipped.
    private let validated: Bool

    init(file: SourceFile, validated: Bool = false) {
        reader = NodeReader(file: file)
        self.validated = validated
    }

    mutating func parse() -> (Manifest?, DiagnosticLog) {
        let manifest = parseDocument()
        return (manifest, reader.log)
    }

    private mutating func parseDocument() -> Manifest? {
        guard validated || checkStrictJSON() else { return nil }
        guard let root = reader.compose() else { return nil }
        guard let top = reader.mapping(root, "a manifest") else { return nil }
        let fields = reader.fields(top, known: Self.topLevelFields, in: "the manifest", unknownIsWarning: true)
        guard let slugNode = fields["slug"] else {
            reader.log.error(.invalidInput, "the manifest needs 'slug'", at: reader.location(root))
            return nil
        }
        guard let slug = reader.string(slugNode.value, "'slug'") else { return nil }
        if !NameKind.plugin.accepts(slug.value) {
            reader.log.error(
                .invalidInput, "invalid plugin slug '\(slug.value)': use \(NameKind.plugin.rule)", at: slug.location)
        }
        let name = fields["name"].flatMap { reader.string($0.value, "'name'")?.value }
        guard let secretsNode = fields["secrets"] else {
            reader.log.error(.invalidInput, "the manifest needs 'secrets' (a list, possibly empty)", at: reader.location(root))
            return nil
        }
        let secrets = parseSecrets(secretsNode.value)
        return Manifest(file: reader.file, slug: slug, name: name, secrets: secrets)
    }

    private mutating func parseSecrets(_ node: YAMLNode) -> [SecretSpec] {
        guard let sequence = reader.sequence(node, "'secrets'") else { return [] }
        var seen: [String: SourceLocation] = [:]
        var specs: [SecretSpec] = []
        for entry in sequence {
            guard let body = reader.mapping(entry, "each entry of 'secrets'") else { continue }
            let fields = reader.fields(body, known: Self.secretFields, in: "a secret")
            guard let keyNode = fields["key"] else {
                reader.log.error(.invalidInput, "a secret needs 'key'", at: reader.location(entry))
                continue
            }
            guard let key = reader.string(keyNode.value, "'key'") else { continue }
            guard NameKind.secretKey.accepts(key.value) else {
                reader.log.error(
                    .invalidInput, "invalid secret key name '\(key.value)': use \(NameKind.secretKey.rule)",
                    at: key.location)
                continue
            }
            if let first = seen[key.value] {
                reader.log.error(.conflict, "duplicate secret key '\(key.value)'; the first is at line \(first.line)", at: key.location)
                continue
            }
            seen[key.value] = key.location
            let what = "secret '\(key.value)'"
            guard let labelNode = fields["label"], let label = reader.string(labelNode.value, "'label'") else {
                if fields["label"] == nil {
                    reader.log.error(.invalidInput, "\(what) needs 'label'", at: key.location)
                }
                continue
            }
            var spec = SecretSpec(
                key: key, label: label.value,
                placeholder: fields["placeholder"].flatMap { reader.string($0.value, "'placeholder'")?.value },
                help: fields["help"].flatMap { reader.string($0.value, "'help'")?.value },
                required: fields["required"].flatMap { reader.bool($0.value, "'required'")?.value } ?? false,
                pattern: nil, env: nil, scopes: nil)
            if let node = fields["pattern"]?.value, let pattern = reader.string(node, "'pattern'") {
                do {
                    if !validated { _ = try NSRegularExpression(pattern: pattern.value) }
                    spec.pattern = pattern
                } catch {
                    reader.log.error(.invalidInput, "the pattern of \(what) is not a valid regular expression", at: pattern.location)
                }
            }
            if let node = fields["env"]?.value, let env = reader.string(node, "'env'") {
                if NameKind.environmentVariable.accepts(env.value) {
                    spec.env = env
                } else {
                    reader.log.error(
                        .invalidInput,
                        "invalid environment variable name '\(env.value)': use \(NameKind.environmentVariable.rule)",
                        at: env.location)
                }
            }
            if let node = fields["owner"]?.value, let owner = reader.string(node, "'owner'") {
                if let value = SecretSpec.Owner(rawValue: owner.value) {
                    spec.owner = value
                } else {
                    reader.log.error(
                        .invalidInput, "invalid owner '\(owner.value)' of \(what): use \"user\" or \"deployment\"",
                        at: owner.location)
                }
            }
            if let node = fields["scopes"]?.value, let scopes = reader.strings(node, "'scopes'") {
                for scope in scopes where !NameKind.scope.accepts(scope.value) {
                    reader.log.error(
                        .invalidInput, "invalid scope name '\(scope.value)': use \(NameKind.scope.rule)", at: scope.location)
                }
                spec.scopes = scopes.map(\.value).filter(NameKind.scope.accepts)
            }
            specs.append(spec)
        }
        return specs
    }

    /// Foundation's strict JSON parse; YAML would accept comments, single
    /// quotes and bare words that are not JSON.
    private mutating func checkStrictJSON() -> Bool {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(reader.file.text.utf8), options: [.fragmentsAllowed])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "invalid value"
            let at = location(ofCharacterIn: detail)
            var reason = detail.replacing(/\s+around (line \d+, column \d+|character \d+)\.?$/, with: "")
            if reason.hasSuffix(".") { reason.removeLast() }
            reader.log.error(.syntax, "invalid JSON: \(reason.prefix(1).lowercased() + reason.dropFirst())", at: at)
            return false
        }
        // Foundation tolerates trailing commas; JSON does not.
        if let offset = trailingCommaOffset() {
            reader.log.error(.syntax, "invalid JSON: trailing comma", at: location(ofCharacterIn: "character \(offset)"))
            return false
        }
        return true
    }

    /// The byte offset of a `,` directly followed (past white space) by `]` or `}`, outside strings.
    private func trailingCommaOffset() -> Int? {
        var inString = false
        var escaped = false
        var pendingComma: Int?
        for (offset, byte) in reader.file.text.utf8.enumerated() {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true; pendingComma = nil
            case UInt8(ascii: ","): pendingComma = offset
            case UInt8(ascii: "]"), UInt8(ascii: "}"): if let comma = pendingComma { return comma }
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): continue
            default: pendingComma = nil
            }
        }
        return nil
    }

    /// Foundation reports "around character N" (or line N, column M); map it to a location.
    private func location(ofCharacterIn detail: String) -> SourceLocation {
        if let match = detail.firstMatch(of: /line (\d+), column (\d+)/),
           let line = Int(match.1), let column = Int(match.2) {
            return reader.file.location(line: line, column: column + 1)
        }
        guard let match = detail.firstMatch(of: /character (\d+)/), let offset = Int(match.1) else {
            return reader.file.start
        }
        var line = 1
        var column = 1
        for (index, byte) in reader.file.text.utf8.enumerated() {
            if index >= offset { break }
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return reader.file.location(line: line, column: column)
    }
}
