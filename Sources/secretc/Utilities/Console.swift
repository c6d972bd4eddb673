import Foundation
import Logging

/// A failure the user can act on: one `secretc: error:` line, then hints.
struct CLIFailure: Error {
    var message: String
    var hints: [String] = []
    /// 1 for problems found (the default), 2 for usage errors.
    var exitCode: Int32 = 1
}

/// Writing to the terminal in secretc's voice.
enum Console {
    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("secretc: error: \(message)\n".utf8))
    }

    static func hint(_ message: String) {
        FileHandle.standardError.write(Data("secretc: hint: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("secretc: \(message)\n".utf8))
    }

    static func report(_ failure: CLIFailure) {
        error(failure.message)
        failure.hints.forEach(hint)
    }

    /// Colour only for a terminal, and never when `NO_COLOR` is set (no-color.org).
    static var stdoutWantsColour: Bool {
        let environment = ProcessInfo.processInfo.environment
        if let noColour = environment["NO_COLOR"], !noColour.isEmpty { return false }
        if environment["TERM"] == "dumb" { return false }
        return isatty(STDOUT_FILENO) == 1
    }
}

/// The kernel's log as `exec` and `get` show it: warnings and errors only,
/// one `secretc: warning:` line each with its metadata (never a value).
struct ConsoleLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.level >= .warning, event.level < .error else { return }  // errors are thrown and reported
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let text = ([event.message.description] + fields).joined(separator: " ")
        // Names and patterns come from the bundle: no control character reaches the terminal.
        let escaped = text.unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }
        FileHandle.standardError.write(Data("secretc: warning: \(escaped.joined())\n".utf8))
    }

    static var logger: Logger { Logger(label: "secretc") { _ in ConsoleLogHandler() } }
}
