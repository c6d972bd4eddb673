import Foundation
import Yams

/// Reads a composed YAML/JSON document with positions, logging every
/// problem as a located diagnostic instead of stopping.
struct NodeReader {
    let file: SourceFile
    var log = DiagnosticLog()

    init(file: SourceFile) { self.file = file }

    func location(_ node: Node) -> SourceLocation {
        guard let mark = node.mark else { return file.start }
        return file.location(line: mark.line, column: mark.column)
    }

    /// Composes the document; a syntax error becomes one diagnostic and nil.
    mutating func compose() -> Node? {
        do {
            guard let node = try Yams.compose(yaml: file.text) else {
                log.error(.invalidInput, "the file is empty", at: file.start)
                return nil
            }
            return node
        } catch let error as YamlError {
            logSyntax(error)
            return nil
        } catch {
            log.error(.syntax, "cannot be parsed: \(error)", at: file.start)
            return nil
        }
    }

    private mutating func logSyntax(_ error: YamlError) {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) at \($0.mark.line):\($0.mark.column): " } ?? ""
            log.error(.syntax, "invalid syntax: \(detail)\(problem)", at: file.location(line: mark.line, column: mark.column))
        case .reader(let problem, let offset, _, _):
            log.error(.syntax, "unreadable text: \(problem)\(offset.map { " at byte \($0)" } ?? "")", at: file.start)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? "?"
            let second = secondOccurrence(of: key, after: context.mark) ?? (context.mark.line, context.mark.column)
            log.error(.conflict, "duplicate key '\(key)'; the first is at line \(context.mark.line)",
                      at: file.location(line: second.line, column: second.column))
        default:
            log.error(.syntax, "cannot be parsed: \(error)", at: file.start)
        }
    }

    /// Yams reports a duplicate at its first occurrence; users need the second.
    private func secondOccurrence(of key: String, after first: Mark) -> (line: Int, column: Int)? {
        let lines = file.text.split(separator: "\n", omittingEmptySubsequences: false)
        let escaped = NSRegularExpression.escapedPattern(for: key)
        guard let regex = try? NSRegularExpression(pattern: "(^|[\\s{,])([\"']?)\(escaped)\\2\\s*:") else { return nil }
        var lineIndex = first.line - 1
        var startColumn = first.column + 1  // skip past the first occurrence itself
        while lineIndex < lines.count {
            let line = String(lines[lineIndex])
            let scalars = Array(line.unicodeScalars)
            if startColumn - 1 < scalars.count {
                let tail = String(String.UnicodeScalarView(scalars[max(0, startColumn - 1)...]))
                if let match = regex.firstMatch(in: tail, range: NSRange(tail.startIndex..., in: tail)),
                   let range = Range(match.range(at: 2), in: tail) ?? Range(match.range, in: tail) {
                    let column = tail.unicodeScalars.distance(
                        from: tail.unicodeScalars.startIndex, to: range.lowerBound.samePosition(in: tail.unicodeScalars)
                            ?? tail.unicodeScalars.startIndex)
                    return (lineIndex + 1, max(1, startColumn) + column)
                }
            }
            lineIndex += 1
            startColumn = 1
        }
        return nil
    }

    // MARK: Shapes

    /// The node as a mapping, or a logged error naming `what`.
    mutating func mapping(_ node: Node, _ what: String) -> Node.Mapping? {
        if let mapping = node.mapping { return mapping }
        log.error(.invalidInput, "\(what) must be a mapping, not \(describe(node))", at: location(node))
        return nil
    }

    /// Like ``mapping(_:_:)`` but an empty value (`bob:` or `bob: ~`) is an empty mapping.
    mutating func optionalMapping(_ node: Node, _ what: String) -> Node.Mapping? {
        if isNull(node) { return Node.Mapping([]) }
        return mapping(node, what)
    }

    mutating func sequence(_ node: Node, _ what: String) -> Node.Sequence? {
        if let sequence = node.sequence { return sequence }
        log.error(.invalidInput, "\(what) must be a list, not \(describe(node))", at: location(node))
        return nil
    }

    /// The fields of a mapping by name, after reporting unknown fields (with a
    /// suggestion) and non-string keys. `known` is every field the format defines.
    mutating func fields(_ mapping: Node.Mapping, known: [String], in what: String, unknownIsWarning: Bool = false)
        -> [String: (key: Node, value: Node)]
    {
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard let name = scalarString(key) else {
                log.error(.invalidInput, "\(what) has a key that is not a string", at: location(key))
                continue
            }
            if known.contains(name) {
                result[name] = (key, value)
            } else {
                let message = "unknown field '\(name)' in \(what)\(Suggestion.hint(for: name, in: known))"
                if unknownIsWarning {
                    log.warning(.unknownField, message, at: location(key))
                } else {
                    log.error(.unknownField, message, at: location(key))
                }
            }
        }
        return result
    }

    // MARK: Scalars

    func isNull(_ node: Node) -> Bool {
        node.scalar != nil && node.tagName == .null
    }

    func scalarString(_ node: Node) -> String? {
        guard let scalar = node.scalar else { return nil }
        return scalar.string
    }

    /// A string value, taken as written: `12345` or `2027-06-30` stay text.
    /// Empty values, booleans and collections are refused, since `key: yes`
    /// or `key:` would otherwise change meaning silently.
    mutating func string(_ node: Node, _ what: String) -> Located<String>? {
        guard let scalar = node.scalar, node.tagName != .null, node.tagName != .bool || scalar.style != .plain else {
            let quote = node.tagName == .bool ? " (quote it to mean the text)" : ""
            log.error(.invalidInput, "\(what) must be a string, not \(describe(node))\(quote)", at: location(node))
            return nil
        }
        return Located(scalar.string, at: location(node))
    }

    mutating func int(_ node: Node, _ what: String) -> Located<Int>? {
        guard node.scalar != nil, node.tagName == .int, let value = node.int else {
            log.error(.invalidInput, "\(what) must be a whole number, not \(describe(node))", at: location(node))
            return nil
        }
        return Located(value, at: location(node))
    }

    mutating func bool(_ node: Node, _ what: String) -> Located<Bool>? {
        guard node.scalar != nil, node.tagName == .bool, let value = node.bool else {
            log.error(.invalidInput, "\(what) must be true or false, not \(describe(node))", at: location(node))
            return nil
        }
        return Located(value, at: location(node))
    }

    /// A list of strings; a single string is not accepted for a list.
    mutating func strings(_ node: Node, _ what: String) -> [Located<String>]? {
        guard let sequence = sequence(node, what) else { return nil }
        return sequence.compactMap { string($0, "each entry of \(what)") }
    }

    /// What a node is, for messages: `a list`, `a mapping`, `the number 3`, ...
    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch node.tagName {
            case .null: return "an empty value"
            case .bool: return "the boolean '\(scalar.string)'"
            case .int, .float: return "the number '\(scalar.string)'"
            case .timestamp: return "the date '\(scalar.string)'"
            default: return "the string '\(scalar.string)'"
            }
        }
    }
}

extension Node {
    /// The resolved tag's name (`Tag.name` itself is not public).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}
