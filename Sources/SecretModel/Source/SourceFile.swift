#if canImport(Crypto)
import Crypto
#endif
import Foundation

/// A text file read for validation, with the path users see.
public struct SourceFile: Sendable {
    /// Absolute path, for reading.
    public var url: URL
    /// The path as shown in diagnostics.
    public var displayPath: String
    public var text: String
    /// SHA-256 of the bytes read, for recording what a result was derived
    /// from (nil for text that was not read from a file).
    public var sha256: [UInt8]?

    public init(url: URL, text: String, sha256: [UInt8]? = nil) {
        self.url = url
        self.displayPath = Self.displayPath(for: url)
        self.text = text
        self.sha256 = sha256
    }

    /// A location in this file.
    public func location(line: Int, column: Int) -> SourceLocation {
        SourceLocation(file: displayPath, line: line, column: column)
    }

    /// The start of the file, for problems with the file as a whole.
    public var start: SourceLocation { location(line: 1, column: 1) }

    /// `url`'s path relative to the working directory when it lies inside it.
    public static func displayPath(for url: URL) -> String {
        let path = url.standardizedFileURL.path
        let cwd = FileManager.default.currentDirectoryPath
        let prefix = cwd.hasSuffix("/") ? cwd : cwd + "/"
        return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : path
    }

    /// Reads a UTF-8 file.
    /// - Returns: nil, after logging a located diagnostic, when it cannot.
    /// - Parameter name: the file as the user wrote it, for messages (default: its display path).
    static func read(
        _ url: URL, what: String, named name: String? = nil, from reference: SourceLocation?,
        into log: inout DiagnosticLog
    ) -> SourceFile? {
        let display = name ?? displayPath(for: url)
        let at = reference ?? SourceLocation(file: displayPath(for: url), line: 1, column: 1)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) {
                log.error(.notFound, "\(what) '\(display)' is \(isDirectory.boolValue ? "a directory" : "not readable")", at: at)
            } else {
                log.error(.notFound, "\(what) '\(display)' does not exist", at: at)
            }
            return nil
        }
        guard let text = String(data: data, encoding: .utf8) else {
            log.error(.syntax, "\(what) '\(display)' is not UTF-8 text", at: at)
            return nil
        }
        #if canImport(Crypto)
        return SourceFile(url: url, text: text, sha256: Array(SHA256.hash(data: data)))
        #else
        return SourceFile(url: url, text: text, sha256: nil)  // the parsers alone, as scripts/fuzz builds them
        #endif
    }
}
