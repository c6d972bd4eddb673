import Foundation
import Logging
import SecretCore
import SecretKernel

/// A failure the user can act on: one `secretc: error:` line, then hints.
struct CLIFailure: Error {
    var message: String
    var hints: [String] = []
    /// 1 for problems found (the default), 2 for usage errors.
    var exitCode: Int32 = 1
    /// The diagnostic code (`NOT_FOUND`, `FORBIDDEN`, …), shown as `check` shows it.
    var code: String?
}

/// Writing to the terminal in secretc's voice.
enum Console {
    static func out(_ text: String) {
        Self.write(STDOUT_FILENO, text)
    }

    static func error(_ message: String) {
        Self.write(STDERR_FILENO, "secretc: error: \(VisibleText.escaped(message))\n")
    }

    static func hint(_ message: String) {
        Self.write(STDERR_FILENO, "secretc: hint: \(VisibleText.escaped(message))\n")
    }

    static func note(_ message: String) {
        Self.write(STDERR_FILENO, "secretc: \(VisibleText.escaped(message))\n")
    }

    /// Writes all of `text`, or as much as the reader takes: a closed pipe
    /// (EPIPE, SIGPIPE being ignored) ends the output, not the process.
    static func write(_ descriptor: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            bytes = bytes.dropFirst(count)
        }
    }

    static func report(_ failure: CLIFailure) {
        error(failure.message + (failure.code.map { " [\($0)]" } ?? ""))
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

/// The kernel's log as `exec` and `get` show it: warnings only (errors are
/// thrown and reported), one `secretc: warning:` line each (never a value).
enum ConsoleLogHandler {
    static var logger: Logger { Logger(label: "secretc") { _ in StandardErrorLines(levels: .warning ... .warning) } }
}

/// `path` as a shell word: as it is when it holds only safe characters,
/// else single-quoted, so a hint that is pasted runs what it says.
func shellQuoted(_ path: String) -> String {
    let safe = path.unicodeScalars.allSatisfy {
        CharacterSet.alphanumerics.contains($0) && $0.isASCII || "/._-+,:@%=".unicodeScalars.contains($0)
    }
    return safe && !path.isEmpty ? path : "'" + path.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
