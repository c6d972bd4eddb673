import Foundation

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
