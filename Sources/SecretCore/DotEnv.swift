/// A dotenv file read as dotenv defines it: `KEY=value` lines, an optional
/// `export ` before the key, `#` comments (whole lines, or after a space
/// following an unquoted or quoted value), single quotes taken literally,
/// double quotes with backslash escapes (`\n \r \t \\ \" \'` …), both
/// quoted forms possibly spanning lines, unquoted values trimmed.
///
/// Keys must be secret key names, because they become ones. There is no
/// variable expansion: a `${…}` outside single quotes is refused rather
/// than imported as written or expanded differently from the tool that
/// wrote the file. No error message ever holds a value's bytes.
public struct DotEnv {
    public struct Entry {
        public var key: String
        public var value: [UInt8]
        public var line: Int
        public var column: Int
    }

    public struct Problem: Error, Equatable {
        public var line: Int
        public var column: Int
        public var message: String
    }

    public private(set) var entries: [Entry] = []

    public init(parsing given: [UInt8]) throws(Problem) {
        // As dotenv readers do: a byte-order mark is not part of the first
        // key, and a Windows line end is a line end, inside quotes too.
        var bytes = given.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(given.dropFirst(3)) : given
        var owned = bytes.count != given.count  // a copy of a value-holding file: wiped after
        if bytes.contains(0x0D) {
            var unified: [UInt8] = []
            unified.reserveCapacity(bytes.count)
            for (index, byte) in bytes.enumerated() where !(byte == 0x0D && index + 1 < bytes.count && bytes[index + 1] == 0x0A) {
                unified.append(byte)
            }
            if owned { bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
            bytes = unified
            owned = true
        }
        defer { if owned { bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } } }
        var reader = Reader(bytes: bytes)
        var seen: [String: Int] = [:]
        while !reader.atEnd {
            reader.skip { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            guard let first = reader.peek else { break }
            if first == 0x0A { reader.advance(); continue }
            if first == UInt8(ascii: "#") { reader.skipLine(); continue }
            if reader.consume("export ") || reader.consume("export\t") { reader.skip { $0 == 0x20 || $0 == 0x09 } }
            let (line, column) = (reader.line, reader.column)
            let keyStart = reader.index
            reader.skip { $0 != UInt8(ascii: "=") && $0 != 0x0A }
            guard reader.peek == UInt8(ascii: "=") else {
                throw Problem(line: line, column: column, message: "a line without KEY= (its text is not shown: it may be a value)")
            }
            let key = String(decoding: bytes[keyStart..<reader.index], as: UTF8.self)
                .trimmingTrailing { $0 == " " || $0 == "\t" }
            guard NameKind.secretKey.accepts(key) else {
                let shown = key.utf8.count <= 64 ? "'\(VisibleText.escaped(key))'" : "here"
                throw Problem(line: line, column: column,
                              message: "the key \(shown) is not a secret key name (\(NameKind.secretKey.rule))")
            }
            if let first = seen[key] {
                throw Problem(line: line, column: column, message: "\(key) is set twice; the first is at line \(first)")
            }
            seen[key] = line
            reader.advance()  // =
            reader.skip { $0 == 0x20 || $0 == 0x09 }
            let value = try reader.value(for: key)
            entries.append(Entry(key: key, value: value, line: line, column: column))
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0
        var line = 1
        var lineStart = 0
        var column: Int { index - lineStart + 1 }
        var atEnd: Bool { index >= bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[index] }

        mutating func advance() {
            if bytes[index] == 0x0A {
                line += 1
                lineStart = index + 1
            }
            index += 1
        }

        mutating func skip(while keep: (UInt8) -> Bool) {
            while let byte = peek, keep(byte) { advance() }
        }

        mutating func skipLine() {
            skip { $0 != 0x0A }
            if !atEnd { advance() }
        }

        mutating func consume(_ word: String) -> Bool {
            let word = Array(word.utf8)
            guard bytes.count - index >= word.count, Array(bytes[index..<(index + word.count)]) == word else { return false }
            index += word.count
            return true
        }

        mutating func value(for key: String) throws(Problem) -> [UInt8] {
            let (line, column) = (self.line, self.column)
            var value: [UInt8] = []
            switch peek {
            case UInt8(ascii: "'"):
                advance()
                while let byte = peek, byte != UInt8(ascii: "'") {
                    value.append(byte)
                    advance()
                }
                guard !atEnd else { throw Problem(line: line, column: column, message: "the value of \(key) has no closing '") }
                advance()
            case UInt8(ascii: "\""):
                advance()
                while let byte = peek, byte != UInt8(ascii: "\"") {
                    advance()
                    if byte == UInt8(ascii: "$"), peek == UInt8(ascii: "{") { throw Self.expansion(key, line, column) }
                    guard byte == UInt8(ascii: "\\"), let escaped = peek else {
                        value.append(byte)
                        continue
                    }
                    advance()
                    let decoded: [UInt8] = switch escaped {
                    case UInt8(ascii: "n"): [0x0A]
                    case UInt8(ascii: "r"): [0x0D]
                    case UInt8(ascii: "t"): [0x09]
                    case UInt8(ascii: "a"): [0x07]
                    case UInt8(ascii: "b"): [0x08]
                    case UInt8(ascii: "f"): [0x0C]
                    case UInt8(ascii: "v"): [0x0B]
                    case UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "$"): [escaped]
                    default: [UInt8(ascii: "\\"), escaped]
                    }
                    value += decoded
                }
                guard !atEnd else { throw Problem(line: line, column: column, message: "the value of \(key) has no closing \"") }
                advance()
            default:
                // Unquoted: to the end of the line or a comment after whitespace, trimmed.
                var previous: UInt8 = 0x20
                while let byte = peek, byte != 0x0A, !(byte == UInt8(ascii: "#") && (previous == 0x20 || previous == 0x09)) {
                    if byte == UInt8(ascii: "$"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "{") {
                        throw Self.expansion(key, line, column)
                    }
                    value.append(byte)
                    previous = byte
                    advance()
                }
                while let last = value.last, last == 0x20 || last == 0x09 || last == 0x0D { value.removeLast() }
                skipLine()
                return value
            }
            // After a quoted value: blanks, then an optional comment, then the line's end.
            skip { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            if let byte = peek, byte != 0x0A, byte != UInt8(ascii: "#") {
                throw Problem(line: self.line, column: self.column, message: "text after the quoted value of \(key)")
            }
            skipLine()
            return value
        }

        static func expansion(_ key: String, _ line: Int, _ column: Int) -> Problem {
            Problem(line: line, column: column, message: "the value of \(key) uses ${…} expansion, which import does not do: "
                + "write the value out, or single-quote it to keep it as written")
        }
    }
}

extension String {
    fileprivate func trimmingTrailing(_ drop: (Character) -> Bool) -> String {
        var text = self
        while let last = text.last, drop(last) { text.removeLast() }
        return text
    }
}
