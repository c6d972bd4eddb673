import Foundation
import SecretCore

/// Reads a composed YAML/JSON document with positions, logging every
/// problem as a located diagnostic instead of stopping.
struct NodeReader {
    let file: SourceFile
    var log = DiagnosticLog()

    init(file: SourceFile) { self.file = file }

    func location(_ node: YAMLNode) -> SourceLocation {
        file.location(line: node.line, column: node.column)
    }

    /// Composes the document; a syntax error becomes one diagnostic and nil.
    /// Duplicate keys are reported and the later occurrence dropped.
    mutating func compose() -> YAMLNode? {
        var composer = YAMLComposer()
        do {
            let root = try composer.compose(file.text)
            for duplicate in composer.duplicates {
                log.error(
                    .conflict, "duplicate key '\(duplicate.key)'; the first is at line \(duplicate.firstLine)",
                    at: file.location(line: duplicate.line, column: duplicate.column))
            }
            guard let root, !(root.isScalar && root.style == .plain && root.text.isEmpty) else {
                log.error(.invalidInput, "the file is empty", at: file.start)
                return nil
            }
            return root
        } catch {
            log.error(.syntax, error.message, at: file.location(line: error.line, column: error.column))
            return nil
        }
    }

    // MARK: Shapes

    /// The node as a mapping, or a logged error naming `what`.
    mutating func mapping(_ node: YAMLNode, _ what: @autoclosure () -> String) -> YAMLNode? {
        if node.kind == .mapping { return node }
        log.error(.invalidInput, "\(what()) must be a mapping, not \(describe(node))", at: location(node))
        return nil
    }

    /// Like ``mapping(_:_:)`` but an empty value (`bob:` or `bob: ~`) is an empty mapping.
    mutating func optionalMapping(_ node: YAMLNode, _ what: @autoclosure () -> String) -> YAMLNode? {
        if isNull(node) {
            return YAMLNode(kind: .mapping, line: node.line, column: node.column, text: "", style: .plain, children: [])
        }
        return mapping(node, what())
    }

    mutating func sequence(_ node: YAMLNode, _ what: @autoclosure () -> String) -> [YAMLNode]? {
        if node.kind == .sequence { return node.children }
        log.error(.invalidInput, "\(what()) must be a list, not \(describe(node))", at: location(node))
        return nil
    }

    /// Calls `visit` for each known field of a mapping, in order, after
    /// reporting unknown fields (with a suggestion) and non-string keys.
    /// `known` is every field the format defines. Visiting in place avoids
    /// building a field table per mapping, which adds up in large files.
    mutating func forEachField(
        _ mapping: YAMLNode, known: [String], in what: @autoclosure () -> String, unknownIsWarning: Bool = false,
        _ visit: (inout NodeReader, String, YAMLNode, YAMLNode) -> Void
    ) {
        for (key, value) in mapping.pairs {
            guard key.isScalar else {
                log.error(.invalidInput, "\(what()) has a key that is not a string", at: location(key))
                continue
            }
            let name = key.text
            if known.contains(name) {
                visit(&self, name, key, value)
            } else {
                let message = "unknown field '\(name)' in \(what())\(Suggestion.hint(for: name, in: known))"
                if unknownIsWarning {
                    log.warning(.unknownField, message, at: location(key))
                } else {
                    log.error(.unknownField, message, at: location(key))
                }
            }
        }
    }

    /// The known fields of a mapping, for code that needs them together.
    mutating func fields(
        _ mapping: YAMLNode, known: [String], in what: @autoclosure () -> String, unknownIsWarning: Bool = false
    ) -> Fields {
        var result = Fields()
        forEachField(mapping, known: known, in: what(), unknownIsWarning: unknownIsWarning) { _, name, key, value in
            result.entries.append((name, key, value))
        }
        return result
    }

    /// A mapping's known fields; a handful at most, so a linear scan beats hashing.
    struct Fields {
        var entries: [(name: String, key: YAMLNode, value: YAMLNode)] = []

        subscript(name: String) -> (key: YAMLNode, value: YAMLNode)? {
            guard let entry = entries.first(where: { $0.name == name }) else { return nil }
            return (entry.key, entry.value)
        }
    }

    // MARK: Scalars

    /// How a scalar is read: the YAML 1.2 core schema, done here rather than
    /// by tag-resolving regular expressions. Quoted scalars are always strings, and
    /// YAML 1.1's `yes`/`no`/`on`/`off` are plain text, not booleans.
    enum ScalarKind: Equatable {
        case null
        case bool(Bool)
        case int(Int)
        case string
    }

    func kind(_ node: YAMLNode) -> ScalarKind? {
        guard node.isScalar else { return nil }
        guard node.style == .plain else { return .string }
        switch node.text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default:
            let text = node.text
            let digits = text.utf8.drop { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }
            if !digits.isEmpty, digits.count >= text.utf8.count - 1,
               digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                return Int(text).map(ScalarKind.int) ?? .string
            }
            return .string
        }
    }

    func isNull(_ node: YAMLNode) -> Bool { kind(node) == .null }

    /// A string value, taken as written: `12345` or `2027-06-30` stay text.
    /// Empty values, booleans and collections are refused, since `key: true`
    /// or `key:` would otherwise change meaning silently.
    mutating func string(_ node: YAMLNode, _ what: @autoclosure () -> String) -> Located<String>? {
        switch kind(node) {
        case .string?, .int?:
            return Located(node.text, at: location(node))
        case .bool?:
            log.error(
                .invalidInput, "\(what()) must be a string, not \(describe(node)) (quote it to mean the text)",
                at: location(node))
            return nil
        default:
            log.error(.invalidInput, "\(what()) must be a string, not \(describe(node))", at: location(node))
            return nil
        }
    }

    mutating func int(_ node: YAMLNode, _ what: @autoclosure () -> String) -> Located<Int>? {
        guard case .int(let value)? = kind(node) else {
            log.error(.invalidInput, "\(what()) must be a whole number, not \(describe(node))", at: location(node))
            return nil
        }
        return Located(value, at: location(node))
    }

    mutating func bool(_ node: YAMLNode, _ what: @autoclosure () -> String) -> Located<Bool>? {
        guard case .bool(let value)? = kind(node) else {
            log.error(.invalidInput, "\(what()) must be true or false, not \(describe(node))", at: location(node))
            return nil
        }
        return Located(value, at: location(node))
    }

    /// A list of strings; a single string is not accepted for a list.
    mutating func strings(_ node: YAMLNode, _ what: @autoclosure () -> String) -> [Located<String>]? {
        guard let sequence = sequence(node, what()) else { return nil }
        return sequence.compactMap { string($0, "each entry of \(what())") }
    }

    /// What a node is, for messages: `a list`, `a mapping`, `the number 3`, ...
    func describe(_ node: YAMLNode) -> String {
        switch node.kind {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar:
            switch kind(node) {
            case .null?: return "an empty value"
            case .bool?: return "the boolean '\(node.text)'"
            case .int?: return "the number '\(node.text)'"
            default: return "the string '\(node.text)'"
            }
        }
    }
}
