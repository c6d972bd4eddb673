import ArgumentParser
import Foundation
import GPG
import SecretCore
import SecretModel

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scaffold a project, and generate key pairs for its principals.",
        discussion: """
            Writes secretc.yaml, keys/, an example plugin manifest and .gitignore entries; never overwrites a file.
            --generate-key NAME creates a key pair in the GnuPG home (GNUPGHOME or ~/.gnupg), writes its public \
            half to keys/NAME.asc and leaves the secret half in the GnuPG home, never in the repository. \
            It also works in an existing project. --git configures this clone for bundles: git's merge driver \
            (`secretc merge-bundles`) and the textconv that makes `git diff` show slot-level lines (`secretc show`), \
            and the .gitattributes line naming both.
            """)

    @Option(help: ArgumentHelp("The project folder.", valueName: "path"))
    var directory: String = "."

    @Option(help: "The admin key name written into a new secretc.yaml.")
    var admin: String = "ops"

    @Option(name: .customLong("env"), help: "An environment for a new secretc.yaml (repeatable; default production).")
    var environments: [String] = []

    @Option(name: .customLong("generate-key"), help: "Generate a key pair NAME (repeatable).")
    var generateKeys: [String] = []

    @Flag(help: "Configure this git clone's merge driver and diff textconv for bundles (once per clone).")
    var git = false

    func validate() throws {
        for name in [admin] + generateKeys where !NameKind.principal.accepts(name) {
            throw ValidationError("invalid key name '\(name)': use \(NameKind.principal.rule)")
        }
        for name in environments where !NameKind.environment.accepts(name) {
            throw ValidationError("invalid environment name '\(name)': use \(NameKind.environment.rule)")
        }
    }

    func run() throws {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        let config = root.appendingPathComponent(Project.configName)
        let exists = FileManager.default.fileExists(atPath: config.path)
        if exists && generateKeys.isEmpty && !git {
            throw CLIFailure(
                message: "\(SourceFile.displayPath(for: config)) already exists",
                hints: ["use `secretc init --generate-key NAME` to add a key to an existing project, "
                    + "`secretc init --git` to set up this clone"])
        }
        if !exists { try scaffold(root) }
        for name in generateKeys {
            let recipient = try generate(name, in: root)
            if exists { try register(name, in: config, recipient: recipient) }
        }
        if git { try configureGit(root) }
        if !exists {
            let missing = ([admin] + environmentNames.map { "runtime-\($0)" }).filter { !generateKeys.contains($0) }
            Console.out("next: run `secretc check`")
            Console.out(missing.isEmpty ? "\n" : "; first add the public keys \(missing.map { "keys/\($0).asc" }.joined(separator: ", ")) (or rerun with --generate-key)\n")
        }
    }

    private var environmentNames: [String] { environments.isEmpty ? ["production"] : environments }

    private func scaffold(_ root: URL) throws {
        try write(Scaffold.declarations(admin: admin, environments: environmentNames), to: root, "secretc.yaml")
        try write(Scaffold.exampleManifest, to: root, "plugins/example/manifest.json")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("keys"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            at: root.appendingPathComponent("secrets"), withIntermediateDirectories: true)
        try updateGitignore(root)
        try write(Self.attributesLine + "\n", to: root, ".gitattributes")
        if !git {
            Console.out("for merging writes from two branches and readable `git diff`s, once per clone: secretc init --git\n")
        }
    }

    static let attributesLine = "secrets/*.bundle merge=secretc diff=secretc"

    /// Names the merge driver and the textconv in this clone's git config,
    /// and makes sure .gitattributes names both for the bundles.
    private func configureGit(_ root: URL) throws {
        func git(_ arguments: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["git", "-C", root.path] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        guard git(["rev-parse", "--is-inside-work-tree"]) else {
            throw CLIFailure(message: "\(SourceFile.displayPath(for: root)) is not inside a git work tree", hints: ["git init first"])
        }
        // git runs these with a shell: the command must be found however git is started.
        let command = Self.selfCommand()
        let settings = [
            ("merge.secretc.name", "secretc bundle merge (writes from both sides)"),
            ("merge.secretc.driver", "\(command) merge-bundles %O %A %B"),
            ("diff.secretc.textconv", "\(command) show"),
        ]
        for (key, value) in settings {
            guard git(["config", key, value]) else { throw CLIFailure(message: "git config \(key) failed") }
            Console.out("git config \(key) \"\(value)\"\n")
        }
        try updateAttributes(root)
    }

    /// `secretc` when that is what the shell finds, else this executable's path.
    private static func selfCommand() -> String {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for folder in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent("secretc")
            if candidate.resolvingSymlinksInPath().path == me { return "secretc" }
        }
        return me.contains(" ") ? "'\(me)'" : me
    }

    /// Adds `diff=secretc` and `merge=secretc` to the bundle line of
    /// .gitattributes (or the line itself), keeping every other line.
    private func updateAttributes(_ root: URL) throws {
        let url = root.appendingPathComponent(".gitattributes")
        let existing = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        var lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        if let index = lines.firstIndex(where: { $0.contains("merge=secretc") || $0.contains("diff=secretc") }) {
            for attribute in ["merge=secretc", "diff=secretc"] where !lines[index].split(separator: " ").contains(Substring(attribute)) {
                lines[index] += " \(attribute)"
            }
        } else {
            lines.append(Self.attributesLine)
        }
        let text = lines.joined(separator: "\n") + "\n"
        guard text != existing else { return }
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw CLIFailure(message: "cannot update \(SourceFile.displayPath(for: url)): \(error.localizedDescription)")
        }
        Console.out("updated \(SourceFile.displayPath(for: url)) (commit it)\n")
    }

    /// Generates the key pair and writes its public half; true when the
    /// declarations name it as an environment's recipient (a service's key).
    @discardableResult
    private func generate(_ name: String, in root: URL) throws -> Bool {
        let destination = root.appendingPathComponent("keys/\(name).asc")
        if FileManager.default.fileExists(atPath: destination.path) {
            throw CLIFailure(message: "\(SourceFile.displayPath(for: destination)) already exists; not replacing a key")
        }
        let context: Context
        let key: KeyInfo
        let armored: String
        do {
            context = try Context(passphrase: LaunchEnvironment.passphrase)
            key = try context.generateKey(userID: "\(name) (secretc) <\(name)@secretc.invalid>")
            armored = try context.exportPublicKey(key.fingerprint)
        } catch let error as GPGError {
            throw CLIFailure(message: "cannot generate key '\(name)': \(error)")
        }
        try write(armored, to: root, "keys/\(name).asc")
        let home = ProcessInfo.processInfo.environment["GNUPGHOME"] ?? "~/.gnupg"
        let recipient = declarations(root.appendingPathComponent(Project.configName)).map { declared in
            declared.environments.contains { $0.recipients?.contains { $0.value == name } == true }
        } ?? name.hasPrefix("runtime-")
        // Only a service's key leaves the GnuPG home: a person's stays there.
        let service = recipient
            ? "\n  for the service: gpg --armor --export-secret-keys \(key.fingerprint), into its secret store "
                + "(SECRETC_GPG_KEY), never into the repository"
            : ""
        Console.out("""
            generated key '\(name)' \(key.fingerprint)
              public half:  \(SourceFile.displayPath(for: destination)) (commit it)
              secret half:  in the GnuPG home \(home), not in the repository\(service)

            """)
        return recipient
    }

    private func declarations(_ config: URL) -> Declarations? {
        guard let text = try? String(contentsOf: config, encoding: .utf8) else { return nil }
        return Declarations.parse(SourceFile(url: config, text: text))
    }

    /// Adds `NAME: keys/NAME.asc` to the `keys:` block of an existing
    /// secretc.yaml (keeping every other line and comment), or prints the
    /// line to add when the block is not one entry per line; then says what
    /// comes next for that kind of principal.
    private func register(_ name: String, in config: URL, recipient: Bool) throws {
        let display = SourceFile.displayPath(for: config)
        let entry = "\(name): keys/\(name).asc"
        guard let declared = declarations(config), var text = try? String(contentsOf: config, encoding: .utf8) else {
            Console.out("next: add `\(entry)` under keys: in \(display)\n")
            return
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if declared.keys.contains(where: { $0.name.value == name }) {
            Console.note("\(display) already names key '\(name)'")
        } else if let last = declared.keys.max(by: { $0.name.location.line < $1.name.location.line }),
                  last.name.location.line <= lines.count,
                  lines[last.name.location.line - 1].drop { $0 == " " }.hasPrefix("\(last.name.value):")
        {
            // After the last entry and any line indented under it.
            let indent = last.name.location.column - 1
            var index = last.name.location.line
            while index < lines.count, lines[index].prefix { $0 == " " }.count > indent,
                  !lines[index].allSatisfy({ $0 == " " }) { index += 1 }
            lines.insert(String(repeating: " ", count: indent) + entry, at: index)
            text = lines.joined(separator: "\n")
            do {
                try Data(text.utf8).write(to: config, options: .atomic)
            } catch {
                throw CLIFailure(message: "cannot update \(display): \(error.localizedDescription)")
            }
            Console.out("added `\(entry)` to keys: in \(display)\n")
        } else {
            Console.out("next: add `\(entry)` under keys: in \(display)\n")
        }
        Console.out(nextStep(for: name, declared, recipient: recipient) + "\n")
    }

    /// What a new key is for, as the declarations use it (or could).
    private func nextStep(for name: String, _ declared: Declarations, recipient: Bool) -> String {
        if declared.admins.contains(where: { $0.value == name }) {
            return "next: '\(name)' is an admin: it signs policies (`secretc compile --as \(name)`) and may write any slot"
        }
        if recipient {
            let environments = declared.environments.filter { $0.recipients?.contains { $0.value == name } == true }
                .map(\.name.value)
            let which = environments.isEmpty ? "E" : environments.joined(separator: ", ")
            return "next: '\(name)' reads the bundle of \(which) at boot: an admin re-seals it to the new recipient "
                + "(`secretc compile --env \(environments.first ?? "E")`, with a current recipient's key)"
        }
        if let user = declared.users.first(where: { $0.key?.value == name }) {
            return "next: user \(user.id.value) writes with it: an admin re-signs the policy (`secretc compile`, "
                + "an admin's key only); then \(user.id.value) runs `secretc set PLUGIN --user \(user.id.value) KEY`"
        }
        if let user = declared.users.first(where: { $0.id.value == name }) {
            return "next: give user \(user.id.value) the key: `\(user.id.value): { key: \(name) }` under users:, "
                + "then an admin re-signs the policy (`secretc compile`, an admin's key only)"
        }
        return "next: name '\(name)' in \(Project.configName): as a user's key (`users: ID: { key: \(name) }`), under "
            + "admins:, or in an environment's recipients:; then an admin runs `secretc compile`"
    }

    private func write(_ text: String, to root: URL, _ relative: String) throws {
        let url = root.appendingPathComponent(relative)
        guard !FileManager.default.fileExists(atPath: url.path) else {
            Console.note("kept existing \(SourceFile.displayPath(for: url))")
            return
        }
        do {
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url, options: .withoutOverwriting)
        } catch {
            throw CLIFailure(message: "cannot write \(SourceFile.displayPath(for: url)): \(error.localizedDescription)")
        }
        Console.out("created \(SourceFile.displayPath(for: url))\n")
    }

    private func updateGitignore(_ root: URL) throws {
        let url = root.appendingPathComponent(".gitignore")
        let existing = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
        let present = Set(existing.split(separator: "\n").map(String.init))
        let missing = Scaffold.gitignoreLines.filter { !present.contains($0) }
        guard !missing.isEmpty else { return }
        let prefix = existing.isEmpty || existing.hasSuffix("\n") ? "" : "\n"
        let text = existing + prefix + missing.joined(separator: "\n") + "\n"
        do {
            try Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw CLIFailure(message: "cannot update \(SourceFile.displayPath(for: url)): \(error.localizedDescription)")
        }
        Console.out("updated \(SourceFile.displayPath(for: url))\n")
    }
}
