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
            It also works in an existing project.
            """)

    @Option(help: ArgumentHelp("The project folder.", valueName: "path"))
    var directory: String = "."

    @Option(help: "The admin key name written into a new secretc.yaml.")
    var admin: String = "ops"

    @Option(name: .customLong("env"), help: "An environment for a new secretc.yaml (repeatable; default production).")
    var environments: [String] = []

    @Option(name: .customLong("generate-key"), help: "Generate a key pair NAME (repeatable).")
    var generateKeys: [String] = []

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
        if exists && generateKeys.isEmpty {
            throw CLIFailure(
                message: "\(SourceFile.displayPath(for: config)) already exists",
                hints: ["use `secretc init --generate-key NAME` to add a key to an existing project"])
        }
        if !exists { try scaffold(root) }
        for name in generateKeys { try generate(name, in: root) }
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
        try write("secrets/*.bundle merge=secretc\n", to: root, ".gitattributes")
        Console.out("for merging writes from two branches, once per clone: "
            + "git config merge.secretc.driver \"secretc merge-bundles %O %A %B\"\n")
    }

    private func generate(_ name: String, in root: URL) throws {
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
        Console.out("""
            generated key '\(name)' \(key.fingerprint)
              public half:  \(SourceFile.displayPath(for: destination)) (commit it)
              secret half:  in the GnuPG home \(home), not in the repository
              for a service: gpg --armor --export-secret-keys \(key.fingerprint)  (into SECRETC_GPG_KEY)

            """)
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
