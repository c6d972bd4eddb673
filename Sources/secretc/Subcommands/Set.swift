import ArgumentParser
import Foundation
import GPG
import SecretCompiler
import SecretCore
import SecretModel

struct Set_: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set or rotate values (an upsert); an empty value deletes.",
        discussion: """
            KEY=VALUE takes the value as given (visible to other users of this machine in the process list: \
            prefer the other forms); KEY=@PATH reads a file (one trailing newline removed); a bare KEY reads one \
            line from standard input, in order, or prompts without echo on a terminal, naming the environment, \
            owner, plugin and key. Keys not named are untouched; only KEY= (or `secretc unset`) deletes: end of \
            input, an empty line, an empty answer or an empty file is an error, and nothing is written. Needs only public keys plus the writer's own signing key: a user's key \
            writes that user's slots, an admin's any slot. Writes after the first work from the write cache's \
            record of the verified project and bundle while their files are unchanged ($SECRETC_CACHE_DIR, else \
            ~/.cache/secretc; SECRETC_CACHE_DIR= turns it off).
            """)

    @OptionGroup var options: BundleOptions

    @OptionGroup var owner: OwnerOptions

    @Argument(help: "KEY=VALUE, KEY=@PATH or KEY.", completion: Completions.assignments)
    var assignments: [String]

    func validate() throws {
        if assignments.isEmpty { throw ValidationError("name at least one KEY") }
    }

    func run() throws {
        for assignment in assignments {
            let key = assignment.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard NameKind.secretKey.accepts(String(key)) else {
                throw CLIFailure(
                    message: "an argument is not a key name (not shown: it may be a value)",
                    hints: [
                        "keys are \(NameKind.secretKey.rule); `secretc status --plugin \(owner.plugin)` lists them",
                        "give a value as KEY=@FILE, or as KEY alone to be asked for it",
                    ])
            }
        }
        let target = try options.writeTarget()
        var input = ValueInput(
            asking: "\(target.environmentName) \(owner.user ?? "deployment-wide")/\(owner.plugin)")
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
/// Deleting is explicit (`KEY=`): a form that yields no value is an error.
struct ValueInput {
    /// Whose slots of which plugin in which environment, for the prompt.
    let asking: String

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
        guard !bytes.isEmpty else { throw Self.noValue(key, "'\(path)' is empty") }
        return (key, SecureBytes(bytes))
    }

    /// Nothing to write for `key`: an error, never a delete.
    static func noValue(_ key: String, _ why: String) -> CLIFailure {
        CLIFailure(
            message: "no value for \(key): \(why); nothing was written",
            hints: ["to delete it, write `\(key)=` or use `secretc unset`"])
    }

    /// One line from standard input, or a prompt without echo on the terminal.
    private mutating func readLine(for key: String) throws -> SecureBytes? {
        if isatty(STDIN_FILENO) == 1 { return try prompt(for: key) }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        var ended = true
        while Foundation.read(STDIN_FILENO, &byte, 1) == 1 {
            ended = false
            if byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !ended else { throw Self.noValue(key, "standard input ended before its line") }
        guard !bytes.isEmpty else { throw Self.noValue(key, "its line on standard input is empty") }
        return SecureBytes(bytes)
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
        let question = Array("\(asking) \(key) (input hidden): ".utf8)
        _ = write(tty, question, question.count)
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        var answered = false
        while Foundation.read(tty, &byte, 1) == 1 {
            if byte == UInt8(ascii: "\n") {
                answered = true
                break
            }
            bytes.append(byte)
        }
        _ = write(tty, "\n", 1)
        guard answered else { throw Self.noValue(key, "the terminal's input ended (Ctrl-D)") }
        guard !bytes.isEmpty else { throw Self.noValue(key, "the answer is empty") }
        return SecureBytes(bytes)
    }
}
