import ArgumentParser
import Foundation
import GPG
import SecretCompiler
import SecretModel

struct Set_: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set or rotate values (an upsert); an empty value deletes.",
        discussion: """
            KEY=VALUE takes the value as given (visible to other users of this machine in the process list: \
            prefer the other forms); KEY=@PATH reads a file (one trailing newline removed); a bare KEY reads one \
            line from standard input, in order, or prompts without echo on a terminal. Keys not named are \
            untouched; KEY= deletes. Needs only public keys plus the writer's own signing key: a user's key \
            writes that user's slots, an admin's any slot. Writes after the first work from the write cache's \
            record of the verified project and bundle while their files are unchanged ($SECRETC_CACHE_DIR, else \
            ~/.cache/secretc; SECRETC_CACHE_DIR= turns it off).
            """)

    @OptionGroup var options: BundleOptions

    @OptionGroup var owner: OwnerOptions

    @Argument(help: "KEY=VALUE, KEY=@PATH or KEY.")
    var assignments: [String]

    func validate() throws {
        if assignments.isEmpty { throw ValidationError("name at least one KEY") }
    }

    func run() throws {
        let target = try options.writeTarget()
        var input = ValueInput()
        var changes: [(key: String, value: SecureBytes?)] = []
        for assignment in assignments { changes.append(try input.read(assignment)) }
        let (report, environment) = try target.write(.upsert(changes), owner)
        Console.out(report.summary(environment: environment))
    }
}

extension WriteReport {
    func summary(environment: String) -> String {
        guard let signer else { return "nothing to change in \(environment)\n" }
        var lines: [String] = []
        if !set.isEmpty { lines.append("set \(set.joined(separator: ", "))") }
        if !deleted.isEmpty { lines.append("deleted \(deleted.joined(separator: ", "))") }
        return lines.joined(separator: "; ") + " in \(environment), signed by \(signer)\n"
    }
}

/// Where `set` gets each value from, never from anything that could log it.
struct ValueInput {
    private var standardInput: FileHandle?

    mutating func read(_ assignment: String) throws -> (key: String, value: SecureBytes?) {
        guard let equals = assignment.firstIndex(of: "=") else {
            return (assignment, try readLine(for: assignment))
        }
        let key = String(assignment[..<equals])
        var value = String(assignment[assignment.index(after: equals)...])
        guard value.hasPrefix("@") else { return (key, value.isEmpty ? nil : SecureBytes(value)) }
        let path = String(value.dropFirst())
        value = ""
        guard var bytes = FileManager.default.contents(atPath: path).map(Array.init) else {
            throw CLIFailure(message: "cannot read '\(path)' for \(key)")
        }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return (key, bytes.isEmpty ? nil : SecureBytes(bytes))
    }

    /// One line from standard input, or a prompt without echo on the terminal.
    private mutating func readLine(for key: String) throws -> SecureBytes? {
        if isatty(STDIN_FILENO) == 1 { return try prompt(for: key) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while Foundation.read(STDIN_FILENO, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return bytes.isEmpty ? nil : SecureBytes(bytes)
    }

    private func prompt(for key: String) throws -> SecureBytes? {
        let tty = open("/dev/tty", O_RDWR)
        guard tty >= 0 else { throw CLIFailure(message: "no terminal to prompt for \(key)") }
        defer { close(tty) }
        var saved = termios()
        tcgetattr(tty, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(tty, TCSAFLUSH, &silent)
        defer { tcsetattr(tty, TCSAFLUSH, &saved) }
        let question = Array("\(key): ".utf8)
        _ = write(tty, question, question.count)
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while Foundation.read(tty, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        _ = write(tty, "\n", 1)
        return bytes.isEmpty ? nil : SecureBytes(bytes)
    }
}
