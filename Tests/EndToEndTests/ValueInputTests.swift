import Foundation
import TestSupport
import Testing

/// Issue: nothing lost without a word. A bare KEY with no value behind it
/// (end of input, an empty line, an empty file, an empty answer at the
/// prompt) is an error that writes nothing; only `KEY=` or `unset`
/// deletes. A value typed where a key belongs is never echoed.
@Suite("set: values are never lost or shown by mistake")
struct ValueInputTests {
    func unchanged(_ deployment: ExampleDeployment, _ before: String, _ result: ProcessResult) throws {
        #expect(result.status == 1, "\(result.stdoutText)")
        #expect(try deployment.bundle() == before, "the bundle changed")
        #expect(!result.stdoutText.contains("deleted"))
    }

    @Test func endOfInputAndEmptyLinesWriteNothing() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let before = try deployment.bundle()
        let cases: [(arguments: [String], input: String, says: String)] = [
            (["APP_ID"], "", "standard input ended before its line"),
            (["TOKEN", "APP_ID"], "ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE9\n", "no value for APP_ID"),
            (["APP_ID"], "\n", "its line on standard input is empty"),
        ]
        for (arguments, input, says) in cases {
            let result = try deployment.secretc(["set", "github", "--env", "production"] + arguments, home: ops, input: input)
            try unchanged(deployment, before, result)
            #expect(result.stderrText.contains(says), "\(result.stderrText)")
            #expect(result.stderrText.contains("to delete it, write `"))
        }
        let empty = deployment.scratch.url.appendingPathComponent("empty")
        try Data().write(to: empty)
        let file = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=@\(empty.path)"], home: ops)
        try unchanged(deployment, before, file)
        // KEY= still deletes, explicitly.
        let deleted = try deployment.secretc(["set", "github", "--env", "production", "APP_ID="], home: ops)
        #expect(deleted.status == 0)
        #expect(deleted.stdoutText.hasPrefix("deleted -/github/APP_ID"))
    }

    @Test func aValueTypedAsAKeyIsNeverShown() throws {
        let deployment = try ExampleDeployment()
        let alice = try deployment.home(["alice"])
        let before = try deployment.bundle()
        for word in ["sk-CANARY-12345", "sk-CANARY-12345=x", "sk_canary_12345"] {
            let result = try deployment.secretc(["set", "github", "--user", "alice", "--env", "production", word], home: alice)
            try unchanged(deployment, before, result)
            #expect(!result.stderrText.contains("CANARY") && !result.stderrText.contains("canary"), "\(result.stderrText)")
            #expect(result.stderrText.contains("not a key name"))
        }
        let typo = try deployment.secretc(["set", "github", "--user", "alice", "--env", "production", "TOKN=x"], home: alice)
        try unchanged(deployment, before, typo)
        #expect(typo.stderrText.contains("did you mean 'TOKEN'?"), "\(typo.stderrText)")
        #expect(typo.stderrText.contains("declared: TOKEN"))
    }

    /// At a terminal (a pseudo-terminal here), the prompt names what it asks
    /// for, echoes nothing, and an empty answer writes nothing.
    @Test func thePromptNamesTheSlotAndAnEmptyAnswerWritesNothing() throws {
        let deployment = try ExampleDeployment()
        let alice = try deployment.home(["alice"])
        let before = try deployment.bundle()
        let script = """
            import os, pty, sys, time
            pid, fd = pty.fork()
            if pid == 0:
                os.execv(sys.argv[1], sys.argv[1:])
            out = b""
            while b"(input hidden): " not in out:
                out += os.read(fd, 1024)
            os.write(fd, b"\\n")
            while True:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            _, status = os.waitpid(pid, 0)
            sys.stdout.write(out.decode(errors="replace"))
            sys.exit(os.waitstatus_to_exitcode(status))
            """
        let result = try run(
            "/usr/bin/env",
            ["python3", "-c", script, Secretc.executable, "set", "github", "--user", "alice", "--env", "production", "TOKEN"],
            environment: [
                "GNUPGHOME": alice.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                "SECRETC_CACHE_DIR": deployment.cache.path,
            ],
            directory: deployment.root.path)
        #expect(result.status == 1, "\(result.stdoutText)")
        #expect(result.stdoutText.contains("production alice/github TOKEN (input hidden): "), "\(result.stdoutText)")
        #expect(result.stdoutText.contains("no value for TOKEN: the answer is empty; nothing was written"))
        #expect(try deployment.bundle() == before)
    }
}

/// Issue: messages that send the user the right way. A misspelt environment,
/// plugin or user gets the closest declared name and the list; every CLI
/// error carries its code, as `check`'s diagnostics do.
@Suite("CLI errors: codes and did-you-mean")
struct CLIErrorTests {
    @Test func misspeltNamesGetASuggestionAndACode() throws {
        let deployment = try ExampleDeployment()
        let alice = try deployment.home(["alice"])
        let cases: [(arguments: [String], says: String)] = [
            (["set", "github", "--user", "alice", "--env", "prod", "TOKEN=github_pat_x_00000000000000000000"],
             "environment 'prod' is not declared; did you mean 'production'? [NOT_FOUND]"),
            (["set", "githb", "--user", "alice", "--env", "production", "TOKEN=x"],
             "plugin 'githb' is not declared; did you mean 'github'? [NOT_FOUND]"),
            (["set", "github", "--user", "alcie", "--env", "production", "TOKEN=x"],
             "user 'alcie' is not declared; did you mean 'alice'? [NOT_FOUND]"),
            (["status", "--user", "bbo"], "user 'bbo' is not declared; did you mean 'bob'? [NOT_FOUND]"),
            (["set", "stripe", "--user", "bob", "--env", "production", "SECRET_KEY=sk_live_EXAMPLEaliceWritesBob0"],
             "[FORBIDDEN]"),
        ]
        for (arguments, says) in cases {
            let result = try deployment.secretc(arguments, home: alice)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderrText.contains(says), "\(arguments): \(result.stderrText)")
            #expect(!result.stderrText.contains("aliceWritesBob"))
        }
    }
}

/// Issue: one message, one fix, naming the thing that is wrong.
@Suite("CLI errors: the cause, not a symptom")
struct CauseTests {
    @Test func aMissingGnuPGHomeIsNamed() throws {
        let deployment = try ExampleDeployment()
        let missing = deployment.scratch.url.appendingPathComponent("no-such-home").path
        for arguments in [
            ["exec", "--env", "production", "--", "/bin/true"], ["set", "github", "--env", "production", "APP_ID=1"],
        ] {
            let result = try deployment.secretc(arguments, environment: ["GNUPGHOME": missing])
            #expect(result.status == 1)
            #expect(result.stderrText.contains("the GnuPG home \(missing) (GNUPGHOME) does not exist"), "\(result.stderrText)")
        }
    }

    @Test func aWrongRuntimeKeyVariableIsBlamedNotTheBundle() throws {
        let deployment = try ExampleDeployment()
        let empty = try deployment.home([])
        let public_ = try String(contentsOf: deployment.root.appendingPathComponent("keys/runtime-production.asc"), encoding: .utf8)
        for (value, says) in [("garbage", "SECRETC_GPG_KEY holds no OpenPGP key at all"), (public_, "SECRETC_GPG_KEY holds a public key, not a secret key")] {
            let result = try deployment.secretc(
                ["exec", "--env", "production", "--", "/bin/true"], home: empty, environment: ["SECRETC_GPG_KEY": value])
            #expect(result.status == 1)
            #expect(result.stderrText.contains(says), "\(result.stderrText)")
            #expect(!result.stderrText.contains("secrets/production.bundle"), "\(result.stderrText)")
            #expect(!result.stderrText.contains("or set SECRETC_GPG_KEY"))
        }
    }

    /// set and compile give the same fix when no allowed key is here.
    @Test func noSignerHereGetsOneFix() throws {
        let deployment = try ExampleDeployment()
        let empty = try deployment.home([])
        let set = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=1"], home: empty)
        let compile = try deployment.secretc(["compile", "--env", "production", "--reseal"], home: empty)
        for result in [set, compile] {
            #expect(result.status == 1)
            #expect(result.stderrText.contains("secretc: hint: import the secret key of one of ops into GNUPGHOME=\(empty.path)"),
                    "\(result.stderrText)")
        }
    }
}
