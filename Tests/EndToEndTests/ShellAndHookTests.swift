import Foundation
import TestSupport
import Testing

/// What a team installs around the binary: bash completion from the
/// declarations, the man page, and the pre-commit hooks.
@Suite("completions, man page and pre-commit hooks end to end")
struct ShellAndHookTests {
    /// Completes the words through the script `secretc --generate-completion-script bash`
    /// prints, in a real bash, as typing `words` then Tab would.
    private func complete(_ words: [String], in directory: String) throws -> [String] {
        let line = ([Secretc.executable] + words).map { $0.isEmpty ? "''" : $0 }.joined(separator: " ")
        let script = """
            source <("$SECRETC" --generate-completion-script bash)
            COMP_WORDS=(\(line)); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
            COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
            _secretc "$SECRETC" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let result = try run("/bin/bash", ["-c", script], environment: [
            "SECRETC": Secretc.executable, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
        ], directory: directory)
        #expect(result.status == 0, "\(result.stderrText)")
        return result.stdoutText.split(separator: "\n").map(String.init).filter { !$0.isEmpty }.sorted()
    }

    @Test func bashCompletesNamesFromTheDeclarations() throws {
        let scratch = try TemporaryDirectory()
        let root = try scratch.copy("examples/gridos").path
        #expect(try complete(["set", "sh"], in: root) == ["shopify"])
        #expect(try complete(["set", "shopify", "--user", ""], in: root) == ["alice", "bob", "carol", "dave"])
        #expect(try complete(["set", "shopify", "--user", "alice", "A"], in: root) == ["ADMIN_TOKEN=", "API_VERSION="])
        #expect(try complete(["get", "--env", ""], in: root) == ["production", "staging"])
        #expect(try complete(["unset", "github", "T"], in: root) == ["TOKEN"])
        #expect(try complete(["compile", "--as", "o"], in: root) == ["ops"])
        #expect(try complete(["log", "--plugin", "st"], in: root) == ["stripe"])
        // From a subfolder, and through --config from anywhere, as the commands find the project.
        #expect(try complete(["status", "--user", "b"], in: root + "/plugins/stripe") == ["bob"])
        #expect(try complete(["status", "--config", root, "--plugin", "g"], in: scratch.path) == ["github"])
        // No project: nothing offered, and no error on the terminal.
        #expect(try complete(["set", ""], in: scratch.path) == [])
    }

    @Test func zshAndFishScriptsAskTheBinaryForNames() throws {
        for shell in ["zsh", "fish"] {
            let script = try Secretc.run(["--generate-completion-script", shell])
            #expect(script.status == 0)
            #expect(script.stdoutText.contains("---completion set -- --user"), "\(shell) completes --user from the declarations")
        }
    }

    /// docs/man/secretc.1 is generated (scripts/manual); a command or option
    /// added since must not be missing from it.
    @Test func theManPageNamesEveryCommandAndOption() throws {
        let page = try String(contentsOf: Secretc.packageRoot.appendingPathComponent("docs/man/secretc.1"), encoding: .utf8)
        let dump = try Secretc.run(["--experimental-dump-help"])
        let help = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdoutText.utf8)) as? [String: Any])
        let lines = Set(page.split(separator: "\n").map(String.init))
        var missing: [String] = []
        func visit(_ command: [String: Any], path: [String]) {
            let name = command["commandName"] as? String ?? ""
            if !path.isEmpty, !lines.contains(".It Em \(name)") { missing.append((path + [name]).joined(separator: " ")) }
            for argument in command["arguments"] as? [[String: Any]] ?? [] {
                guard argument["shouldDisplay"] as? Bool ?? true,
                      let long = (argument["names"] as? [[String: Any]])?.first(where: { $0["kind"] as? String == "long" }),
                      let option = long["name"] as? String
                else { continue }
                if !page.contains("Fl -\(option) "), !page.contains("Fl -\(option)\n") { missing.append((path + [name, "--" + option]).joined(separator: " ")) }
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] { visit(sub, path: path + [name]) }
        }
        visit(help["command"] as? [String: Any] ?? [:], path: [])
        #expect(missing.isEmpty, "docs/man/secretc.1 misses \(missing); run scripts/manual")
    }

    /// The hooks run what .pre-commit-hooks.yaml says they run.
    private func hookEntry(_ id: String) throws -> [String] {
        let text = try String(contentsOf: Secretc.packageRoot.appendingPathComponent(".pre-commit-hooks.yaml"), encoding: .utf8)
        let hook = try #require(text.components(separatedBy: "\n- id: \(id)\n").dropFirst().first)
        let entry = try #require(hook.split(separator: "\n").first { $0.hasPrefix("  entry: ") })
        let words = entry.dropFirst("  entry: ".count).split(separator: " ").map(String.init)
        #expect(words.first == "secretc")
        return Array(words.dropFirst())
    }

    @Test func theGuardRefusesStagedSecretKeysAndConsumedDotenvFiles() throws {
        let deployment = try ExampleDeployment()
        let root = deployment.root.path
        func git(_ arguments: [String]) throws {
            let result = try run("/usr/bin/env", ["git", "-C", root] + arguments)
            #expect(result.status == 0, "git \(arguments): \(result.stderrText)")
        }
        try git(["init", "-q"])
        // The example ships its demo secret keys on purpose; a project does not.
        try "example-secret-keys/\n".write(toFile: root + "/.git/info/exclude", atomically: true, encoding: .utf8)
        try git(["add", "-A"])
        let guardHook = try hookEntry("secretc-guard")
        // The example as committed passes: public keys, bundles, manifests.
        let clean = try deployment.secretc(guardHook)
        #expect(clean.status == 0, "\(clean.stderrText)")

        // An armored secret key, staged under an innocent name.
        let keys = try deployment.home(["alice"])
        try keys.exportSecret("alice").write(toFile: root + "/alice-backup.txt", atomically: true, encoding: .utf8)
        // A binary one, as `gpg --export-secret-keys` writes it.
        let binary = try keys.gpg(["--passphrase", "", "--export-secret-keys", keys.fingerprint(of: "alice")])
        try Data(binary).write(to: URL(fileURLWithPath: root + "/keys/alice.gpg"))
        // A dotenv file imported, then staged; and a copy of it elsewhere.
        let ops = try deployment.home(["ops"])
        let dotenv = "STORE_DOMAIN=guard-shop.myshopify.com\nADMIN_TOKEN=shpat_GUARDCANARY0123456789abcdef01234\n"
        try dotenv.write(toFile: root + "/shop.env", atomically: true, encoding: .utf8)
        let imported = try deployment.secretc(
            ["import", "dotenv", "shop.env", "--plugin", "shopify", "--user", "alice", "--env", "production"], home: ops)
        #expect(imported.status == 0, "\(imported.stderrText)")
        try FileManager.default.createDirectory(atPath: root + "/config", withIntermediateDirectories: true)
        // Reformatted: another order, a comment, quotes, Windows line ends.
        try "# prod\r\nADMIN_TOKEN=\"shpat_GUARDCANARY0123456789abcdef01234\"\r\nSTORE_DOMAIN=guard-shop.myshopify.com\r\n"
            .write(toFile: root + "/config/.env", atomically: true, encoding: .utf8)
        // And a file that merely talks about keys, which is fine.
        try "Export with gpg --armor --export; never --export-secret-keys.\n"
            .write(toFile: root + "/NOTES.md", atomically: true, encoding: .utf8)
        try git(["add", "-A"])

        let staged = try deployment.secretc(guardHook)
        #expect(staged.status == 1)
        let lines = staged.stderrText.split(separator: "\n").map(String.init)
        #expect(lines.contains("alice-backup.txt: error: holds an OpenPGP secret key; a secret key never goes into the repository [FORBIDDEN]"),
                "\(staged.stderrText)")
        #expect(lines.contains("keys/alice.gpg: error: holds an OpenPGP secret key; a secret key never goes into the repository [FORBIDDEN]"))
        #expect(lines.contains { $0.hasPrefix("shop.env: error: holds STORE_DOMAIN=… imported from shop.env on ") })
        #expect(lines.contains { $0.hasPrefix("config/.env: error: holds ADMIN_TOKEN=… imported from shop.env on ") },
                "a copy is recognised by its entries")
        #expect(!staged.stderrText.contains("NOTES.md"))
        #expect(staged.stderrText.contains("secretc: error: 4 files must not be committed [FORBIDDEN]"))
        #expect(!staged.stderrText.contains("GUARDCANARY"), "nothing from inside a file is printed")

        // pre-commit passes file names: the same verdicts for the same files.
        let named = try deployment.secretc(guardHook + ["NOTES.md", "config/.env"])
        #expect(named.status == 1)
        #expect(named.stderrText.contains("config/.env: error:"))
        // A name that looks like an option is a file name after `--`, as the hook passes them.
        #expect(try deployment.secretc(guardHook + ["--version"]).status == 1, "a file named --version is checked, not obeyed")
        #expect(!named.stderrText.contains("NOTES.md"))
        #expect(try deployment.secretc(guardHook + ["NOTES.md", "secretc.yaml"]).status == 0)

        // Unstaged, the commit may go on.
        try git(["rm", "-q", "--cached", "alice-backup.txt", "keys/alice.gpg", "shop.env", "config/.env"])
        #expect(try deployment.secretc(guardHook).status == 0)
    }

    @Test func theCheckHookPassesOnTheExample() throws {
        let deployment = try ExampleDeployment()
        _ = try run("/usr/bin/env", ["git", "-C", deployment.root.path, "init", "-q"])
        #expect(try deployment.secretc(["init", "--git"]).status == 0)
        let check = try deployment.secretc(try hookEntry("secretc-check"))
        #expect(check.status == 0, "\(check.stdoutText)\(check.stderrText)")
    }
}

/// Long work says what it is doing on a terminal (a pseudo-terminal from
/// `script` here), and prints nothing extra anywhere else.
@Suite("progress on a terminal end to end")
struct ProgressTests {
    private func onTerminal(_ arguments: [String], in deployment: ExampleDeployment, home: TemporaryGPGHome? = nil,
                            delay: String) throws -> ProcessResult {
        let command = ([Secretc.executable] + arguments).joined(separator: " ")
        var environment = ["SECRETC_PROGRESS_DELAY": delay, "TERM": "xterm"]
        if let home { environment["GNUPGHOME"] = home.path }
        return try runInScript(command, deployment, environment)
    }

    private func runInScript(_ command: String, _ deployment: ExampleDeployment, _ extra: [String: String]) throws -> ProcessResult {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "SECRETC_CACHE_DIR": "", "SECRETC_TRUSTED_ADMINS": "B10C30114A7A5CE22215A9196B7A4E014FFA39D1"]
        environment.merge(extra) { _, given in given }
        return try run("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment, directory: deployment.root.path)
    }

    @Test func checkAndCompileShowPhasesOnATerminalOnly() throws {
        let deployment = try ExampleDeployment()
        let check = try onTerminal(["check"], in: deployment, delay: "0")
        #expect(check.stdoutText.contains("\r\u{1B}[Ksecretc: reading the declarations…"), "\(check.stdoutText)")
        #expect(check.stdoutText.contains("\r\u{1B}[Ksecretc: verifying the bundles of 22 slots…\r\u{1B}[K"),
                "the line is erased before the report")
        let ops = try deployment.home(["ops", "runtime-production"])
        let compile = try onTerminal(["compile", "--reseal", "--env", "production"], in: deployment, home: ops, delay: "0")
        #expect(compile.stdoutText.contains("secretc: sealing "), "\(compile.stdoutText)")
        #expect(compile.stdoutText.contains("\r\u{1B}[Kre-sealed secrets/production.bundle:"), "\(compile.stdoutText)")
        // Quick work under the default delay: no progress line at all.
        let quick = try onTerminal(["check"], in: deployment, delay: "5")
        #expect(!quick.stdoutText.contains("reading the declarations"), "\(quick.stdoutText)")
        // Not a terminal: standard error holds nothing extra.
        let piped = try deployment.secretc(["compile", "--reseal", "--env", "production"], home: ops,
                                           environment: ["SECRETC_PROGRESS_DELAY": "0"])
        #expect(piped.status == 0)
        #expect(!piped.stderrText.contains("…"), "\(piped.stderrText)")
    }
}
