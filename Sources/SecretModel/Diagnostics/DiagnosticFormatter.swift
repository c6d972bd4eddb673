import Foundation
import SecretCore

/// Renders diagnostics for people (compiler style), for tools (JSON) and for
/// GitHub Actions (workflow annotations).
public enum DiagnosticFormat: String, Sendable, CaseIterable {
    case text
    case json
    case github
}

public struct DiagnosticFormatter: Sendable {
    public var format: DiagnosticFormat
    /// ANSI colours, for a terminal that wants them.
    public var colour: Bool
    /// File contents by display path, for quoting the offending line.
    public var sources: [String: String]

    public init(format: DiagnosticFormat, colour: Bool = false, sources: [String: String] = [:]) {
        self.format = format
        self.colour = colour
        self.sources = sources
    }

    /// The whole report for `diagnostics` (already sorted), ending in a newline
    /// unless empty (text and GitHub formats) or a JSON array.
    public func render(_ diagnostics: [Diagnostic]) -> String {
        switch format {
        case .text:
            // Each file split into lines once, not once per diagnostic: a file
            // with 10,000 errors must cost linear time.
            var lines: [String: [Substring]] = [:]
            return diagnostics.map { text($0, &lines) }.joined()
        case .github: return diagnostics.map(github).joined()
        case .json: return json(diagnostics)
        }
    }

    /// `file:line:col: error: message [CODE]`, then the line and a caret.
    private func text(_ diagnostic: Diagnostic, _ lines: inout [String: [Substring]]) -> String {
        let severity = diagnostic.severity.rawValue + ":"
        let painted: String
        if colour {
            let code = diagnostic.severity == .error ? "\u{1B}[1;31m" : "\u{1B}[1;33m"
            painted = "\u{1B}[1m\(diagnostic.location):\u{1B}[0m \(code)\(severity)\u{1B}[0m"
        } else {
            painted = "\(diagnostic.location): \(severity)"
        }
        var out = "\(painted) \(VisibleText.escaped(diagnostic.message)) [\(diagnostic.code.rawValue)]\n"
        if let line = sourceLine(diagnostic.location, &lines) {
            let prefix = VisibleText.escaped(
                String(String.UnicodeScalarView(line.unicodeScalars.prefix(max(0, diagnostic.location.column - 1)))),
                keepingTabs: true)
            let padding = String(prefix.unicodeScalars.map { $0 == "\t" ? "\t" : " " })
            out += "    \(VisibleText.escaped(line, keepingTabs: true))\n    \(padding)^\n"
        }
        return out
    }

    private func sourceLine(_ location: SourceLocation, _ lines: inout [String: [Substring]]) -> String? {
        if lines[location.file] == nil, let text = sources[location.file] {
            lines[location.file] = text.split(separator: "\n", omittingEmptySubsequences: false)
        }
        guard let fileLines = lines[location.file], location.line >= 1, location.line <= fileLines.count else { return nil }
        let line = fileLines[location.line - 1]
        let trimmed = line.hasSuffix("\r") ? line.dropLast() : line
        // Never quote an over-long line (a key block, a minified manifest) in full.
        return trimmed.count > 200 ? nil : String(trimmed)
    }

    /// `::error file=F,line=L,col=C,title=CODE::message`
    private func github(_ diagnostic: Diagnostic) -> String {
        let command = diagnostic.severity == .error ? "error" : "warning"
        let location = diagnostic.location
        let properties = [
            "file=\(escapeProperty(location.file))", "line=\(location.line)", "col=\(location.column)",
            "title=\(escapeProperty("secretc " + diagnostic.code.rawValue))",
        ].joined(separator: ",")
        return "::\(command) \(properties)::\(escapeData(diagnostic.message))\n"
    }

    /// GitHub's workflow-command escaping, after every control character is made visible.
    private func escapeData(_ text: String) -> String {
        VisibleText.escaped(text).replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D")
            .replacingOccurrences(of: "\n", with: "%0A")
    }

    private func escapeProperty(_ text: String) -> String {
        escapeData(text).replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C")
    }

    /// A JSON array of `{file, line, column, severity, code, message}`.
    private func json(_ diagnostics: [Diagnostic]) -> String {
        struct Entry: Encodable {
            var file: String
            var line: Int
            var column: Int
            var severity: String
            var code: String
            var message: String
        }
        let entries = diagnostics.map {
            Entry(
                file: $0.location.file, line: $0.location.line, column: $0.location.column,
                severity: $0.severity.rawValue, code: $0.code.rawValue, message: VisibleText.escaped($0.message))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(entries)) ?? Data("[]".utf8)
        return VisibleText.jsonEscaped(String(decoding: data, as: UTF8.self)) + "\n"
    }
}
