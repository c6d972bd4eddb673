/// A position in a source file: 1-based line and column (in Unicode scalars).
public struct SourceLocation: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The path as shown to users (relative to the working directory when inside it).
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}

/// How bad a diagnostic is; `--strict` turns warnings into errors.
public enum Severity: String, Sendable, Hashable, Codable {
    case error
    case warning
}

/// Stable, machine-readable problem codes (documented in `docs/diagnostics.md`).
public enum DiagnosticCode: String, Sendable, Hashable, Codable, CaseIterable {
    /// The file is not well-formed YAML or JSON.
    case syntax = "SYNTAX"
    /// A value has the wrong type, shape or grammar.
    case invalidInput = "INVALID_INPUT"
    /// A mapping has a field the format does not define.
    case unknownField = "UNKNOWN_FIELD"
    /// A reference names something that is not declared, or a file is missing.
    case notFound = "NOT_FOUND"
    /// Two things claim the same name, slot, file or environment variable.
    case conflict = "CONFLICT"
    /// The format version is newer than this secretc understands.
    case unsupported = "UNSUPPORTED"
    /// A key file holds something that must not be committed (a secret key).
    case forbidden = "FORBIDDEN"
    /// A key cannot do what its role needs (encrypt, sign), or is revoked.
    case keyUnusable = "KEY_UNUSABLE"
    /// A key or a slot has expired, or expires within 30 days (a warning).
    case expired = "EXPIRED"
    /// An environment declares more slots than its quota.
    case quotaExceeded = "QUOTA_EXCEEDED"
    /// A required manifest key has no declared slot.
    case incomplete = "INCOMPLETE"
    /// Something is declared but never used.
    case unused = "UNUSED"
    /// A bundle does not extend the base revision's bundle (`check --base`).
    case rollback = "ROLLBACK"
}

/// One problem found in a project, located like a compiler error.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public var severity: Severity
    public var code: DiagnosticCode
    public var message: String
    public var location: SourceLocation

    public init(_ severity: Severity, _ code: DiagnosticCode, _ message: String, at location: SourceLocation) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
    }

    /// `file:line:col: error: message`
    public var description: String { "\(location): \(severity.rawValue): \(message)" }
}

/// Collects diagnostics; nothing stops at the first problem.
public struct DiagnosticLog: Sendable {
    public private(set) var diagnostics: [Diagnostic] = []

    public init() {}

    public mutating func error(_ code: DiagnosticCode, _ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(.error, code, message, at: location))
    }

    public mutating func warning(_ code: DiagnosticCode, _ message: String, at location: SourceLocation) {
        diagnostics.append(Diagnostic(.warning, code, message, at: location))
    }

    public mutating func append(contentsOf other: DiagnosticLog) {
        diagnostics.append(contentsOf: other.diagnostics)
    }

    public var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Diagnostics in file, line, column order, each once; warnings promoted when `strict`.
    public func sorted(strict: Bool = false) -> [Diagnostic] {
        var seen = Set<Diagnostic>()
        return diagnostics
            .map { diagnostic in
                var copy = diagnostic
                if strict { copy.severity = .error }
                return copy
            }
            .filter { seen.insert($0).inserted }
            .sorted { ($0.location, $0.message) < ($1.location, $1.message) }
    }
}
