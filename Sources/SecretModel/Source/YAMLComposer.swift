internal import CYAML

/// Builds ``YAMLNode`` trees from libyaml's event stream.
///
/// libyaml is the parser Yams wraps; reading its events directly avoids
/// building (and resolving tags for) a heavier node per scalar, which made
/// large declarations several times slower. Duplicate mapping keys are
/// collected, each at its second occurrence, instead of ending the parse.
struct YAMLComposer {
    /// A syntax problem, as libyaml reports it (1-based positions).
    struct SyntaxError: Error {
        var message: String
        var line: Int
        var column: Int
    }

    /// A mapping key that appeared before in the same mapping.
    struct DuplicateKey {
        var key: String
        var line: Int
        var column: Int
        var firstLine: Int
    }

    /// Deeper nesting is refused: no valid file comes close, and hostile input
    /// must not exhaust the stack.
    static let maximumDepth = 64

    private(set) var duplicates: [DuplicateKey] = []
    private var anchors: [String: YAMLNode] = [:]
    private var depth = 0

    /// Composes the single document in `text`; nil when it holds none.
    /// - Throws: ``SyntaxError``, at the first syntax problem.
    mutating func compose(_ text: String) throws(SyntaxError) -> YAMLNode? {
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        // libyaml's string reader points back at the parser, so it must stay at one address.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        parser.initialize(to: yaml_parser_t())
        defer {
            parser.deinitialize(count: 1)
            parser.deallocate()
        }
        guard yaml_parser_initialize(parser) == 1 else {
            throw SyntaxError(message: "out of memory", line: 1, column: 1)
        }
        defer { yaml_parser_delete(parser) }
        return try bytes.withUnsafeBufferPointer { buffer throws(SyntaxError) -> YAMLNode? in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            var stream = EventStream(parser: parser)
            return try composeStream(&stream)
        }
    }

    private mutating func composeStream(_ stream: inout EventStream) throws(SyntaxError) -> YAMLNode? {
        var root: YAMLNode?
        var documents = 0
        while true {
            let event = try stream.next()
            defer { event.release() }
            switch event.type {
            case YAML_STREAM_START_EVENT, YAML_DOCUMENT_END_EVENT:
                continue
            case YAML_STREAM_END_EVENT:
                return root
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    throw SyntaxError(
                        message: "the file holds more than one document", line: event.line, column: event.column)
                }
                let next = try stream.next()
                root = try composeNode(next, &stream)
            default:
                throw SyntaxError(message: "unexpected event", line: event.line, column: event.column)
            }
        }
    }

    /// Composes the node that starts with `event` (which this call releases).
    private mutating func composeNode(_ event: Event, _ stream: inout EventStream) throws(SyntaxError) -> YAMLNode {
        defer { event.release() }
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else {
            throw SyntaxError(
                message: "nesting deeper than \(Self.maximumDepth) levels", line: event.line, column: event.column)
        }
        switch event.type {
        case YAML_ALIAS_EVENT:
            let name = event.aliasAnchor
            guard let node = anchors[name] else {
                throw SyntaxError(message: "unknown alias '*\(name)'", line: event.line, column: event.column)
            }
            return node
        case YAML_SCALAR_EVENT:
            let node = YAMLNode.scalar(event.scalarText, style: event.scalarStyle, line: event.line, column: event.column)
            if let anchor = event.scalarAnchor { anchors[anchor] = node }
            return node
        case YAML_SEQUENCE_START_EVENT:
            var items: [YAMLNode] = []
            while true {
                let next = try stream.next()
                if next.type == YAML_SEQUENCE_END_EVENT {
                    next.release()
                    break
                }
                items.append(try composeNode(next, &stream))
            }
            let node = YAMLNode(
                kind: .sequence, line: event.line, column: event.column, text: "", style: .plain, children: items)
            if let anchor = event.sequenceAnchor { anchors[anchor] = node }
            return node
        case YAML_MAPPING_START_EVENT:
            var children: [YAMLNode] = []
            var seen: [String: Int] = [:]
            while true {
                let next = try stream.next()
                if next.type == YAML_MAPPING_END_EVENT {
                    next.release()
                    break
                }
                let key = try composeNode(next, &stream)
                let value = try composeNode(try stream.next(), &stream)
                if key.isScalar {
                    if let first = seen[key.text] {
                        duplicates.append(DuplicateKey(key: key.text, line: key.line, column: key.column, firstLine: first))
                        continue
                    }
                    seen[key.text] = key.line
                }
                children.append(key)
                children.append(value)
            }
            let node = YAMLNode(
                kind: .mapping, line: event.line, column: event.column, text: "", style: .plain, children: children)
            if let anchor = event.mappingAnchor { anchors[anchor] = node }
            return node
        default:
            throw SyntaxError(message: "unexpected event", line: event.line, column: event.column)
        }
    }
}

/// Pulls events from a libyaml parser, turning its errors into ``YAMLComposer/SyntaxError``.
private struct EventStream {
    let parser: UnsafeMutablePointer<yaml_parser_t>

    func next() throws(YAMLComposer.SyntaxError) -> Event {
        let event = Event()
        guard yaml_parser_parse(parser, &event.raw) == 1 else {
            event.isLive = false
            throw error()
        }
        return event
    }

    /// libyaml's own words, in the style Yams used: "while parsing X at L:C: problem".
    private func error() -> YAMLComposer.SyntaxError {
        let parser = self.parser.pointee
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        if parser.error == YAML_READER_ERROR {
            return .init(message: "unreadable text: \(problem) at byte \(parser.problem_offset)", line: 1, column: 1)
        }
        var context = ""
        if let text = parser.context {
            context = "\(String(cString: text)) at \(parser.context_mark.line + 1):\(parser.context_mark.column + 1): "
        }
        return .init(
            message: "invalid syntax: \(context)\(problem)",
            line: Int(parser.problem_mark.line) + 1, column: Int(parser.problem_mark.column) + 1)
    }
}

/// Owns one `yaml_event_t`.
private final class Event {
    var raw = yaml_event_t()
    var isLive = true

    func release() {
        if isLive { yaml_event_delete(&raw) }
        isLive = false
    }

    deinit { release() }

    var type: yaml_event_type_t { raw.type }
    var line: Int { Int(raw.start_mark.line) + 1 }
    var column: Int { Int(raw.start_mark.column) + 1 }

    var scalarText: String {
        let scalar = raw.data.scalar
        guard let value = scalar.value else { return "" }
        return String(decoding: UnsafeBufferPointer(start: value, count: scalar.length), as: UTF8.self)
    }

    var scalarStyle: YAMLNode.Style {
        switch raw.data.scalar.style {
        case YAML_PLAIN_SCALAR_STYLE: return .plain
        case YAML_LITERAL_SCALAR_STYLE, YAML_FOLDED_SCALAR_STYLE: return .block
        default: return .quoted
        }
    }

    var scalarAnchor: String? { raw.data.scalar.anchor.map { String(cString: $0) } }
    var sequenceAnchor: String? { raw.data.sequence_start.anchor.map { String(cString: $0) } }
    var mappingAnchor: String? { raw.data.mapping_start.anchor.map { String(cString: $0) } }
    var aliasAnchor: String { raw.data.alias.anchor.map { String(cString: $0) } ?? "" }
}
