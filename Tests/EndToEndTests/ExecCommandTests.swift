import BundleFormat
import BundleSeal
import Foundation
import GPG
import TestSupport
import Testing

@Suite("secretc exec end to end")
struct ExecCommandTests {
    static let admin = "B10C30114A7A5CE22215A9196B7A4E014FFA39D1"
    /// Prints the named variables, one per line, `NAME=value` or `NAME unset`.
    static func printer(_ names: [String]) -> [String] {
        ["/bin/sh", "-c", names.map { "if [ -n \"${\($0)+x}\" ]; then echo \"\($0)=$\($0)\"; else echo \"\($0) unset\"; fi" }
            .joined(separator: "; ")]
    }

    @Test func passesTheUsersAndTheDeploymentsValuesInTheEnvironment() throws {
        let deployment = try ExampleDeployment()
        let runtime = try deployment.home(["runtime-production"])
        let names = ["SHOPIFY_STORE_DOMAIN", "GITHUB_TOKEN", "GITHUB_APP_ID", "STRIPE_SECRET_KEY", "KEPT", "SECRETC_GPG_KEY"]
        let result = try deployment.secretc(
            ["exec", "--env", "production", "--user", "alice", "--"] + Self.printer(names), home: runtime,
            environment: ["KEPT": "yes", "GITHUB_TOKEN": "overridden"])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == """
            SHOPIFY_STORE_DOMAIN=alice-example.myshopify.com
            GITHUB_TOKEN=github_pat_EXAMPLE_alice_0000000000
            GITHUB_APP_ID=123456
            STRIPE_SECRET_KEY unset
            KEPT=yes
            SECRETC_GPG_KEY unset

            """)
        // Without --user: deployment-wide values only.
        let shared = try deployment.secretc(
            ["exec", "--env", "production", "--"] + Self.printer(["GITHUB_TOKEN", "SHOPIFY_STORE_DOMAIN"]), home: runtime)
        #expect(shared.stdoutText == "GITHUB_TOKEN=ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE0\nSHOPIFY_STORE_DOMAIN unset\n")
    }

    @Test func readsAnArmoredKeyAndHidesItFromTheChild() throws {
        let deployment = try ExampleDeployment()
        let armored = try String(
            contentsOf: deployment.root.appendingPathComponent("example-secret-keys/runtime-production.EXAMPLE-ONLY.asc"),
            encoding: .utf8)
        let empty = try deployment.home([])
        let bundle = deployment.root.appendingPathComponent("secrets/production.bundle").path
        let result = try deployment.secretc(
            ["exec", "--bundle", bundle, "--env", "production", "--user", "bob", "--scope", "formulas", "--"]
                + Self.printer(["STRIPE_SECRET_KEY", "SECRETC_GPG_KEY"]),
            home: empty, environment: ["SECRETC_GPG_KEY": armored, "SECRETC_TRUSTED_ADMINS": Self.admin])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == "STRIPE_SECRET_KEY=sk_live_EXAMPLEexample0000\nSECRETC_GPG_KEY unset\n")

        // The operator holding only the bundle: `get` takes the same key, from
        // a folder without declarations and an empty GnuPG home.
        let get = try Secretc.run(
            ["get", "--bundle", bundle, "--env", "production", "stripe", "SECRET_KEY", "--user", "bob"],
            in: deployment.scratch.url.path,
            environment: ["GNUPGHOME": empty.path, "SECRETC_GPG_KEY": armored, "SECRETC_TRUSTED_ADMINS": Self.admin])
        #expect(get.status == 0, "\(get.stderrText)")
        #expect(get.stdoutText == "sk_live_EXAMPLEexample0000")
    }

    /// Fail small: alice signs a value that fails its manifest pattern (as a
    /// hand-made write can). The command still runs with everyone's values;
    /// her variable is removed, not replaced by the deployment-wide value or
    /// the caller's; a warning names her, never the value.
    @Test func anUnusableValueIsLeftOutWithAWarning() throws {
        let deployment = try ExampleDeployment()
        try deployment.handWrite("CANARY-not-a-token", to: SlotKey(owner: "alice", plugin: "github", key: "TOKEN"), by: "alice")

        let result = try deployment.secretc(
            ["exec", "--env", "production", "--user", "alice", "--"] + Self.printer(["GITHUB_TOKEN", "SHOPIFY_STORE_DOMAIN"]),
            home: try deployment.home(["runtime-production"]), environment: ["GITHUB_TOKEN": "from-the-caller"])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == "GITHUB_TOKEN unset\nSHOPIFY_STORE_DOMAIN=alice-example.myshopify.com\n")
        #expect(result.stderrText.hasPrefix("secretc: warning: secret values unavailable"), "\(result.stderrText)")
        #expect(result.stderrText.contains("writer=alice"))
        #expect(result.stderrText.contains("does not match its pattern"))
        #expect(!result.stderrText.contains("CANARY") && !result.stdoutText.contains("CANARY"))

        let get = try deployment.secretc(
            ["get", "--env", "production", "--user", "alice", "github", "TOKEN"], home: try deployment.home(["runtime-production"]))
        #expect(get.status == 1)
        #expect(get.stderrText.contains("alice/github/TOKEN serves no value: unavailable"), "\(get.stderrText)")
        #expect(!get.stderrText.contains("CANARY") && get.stdoutText.isEmpty)
    }

    /// One name for the passphrase; no SECRETC_GPG_* reaches the command,
    /// nor the gpg-agent secretc starts (both would keep it for their life).
    @Test func noSECRETC_GPGVariableReachesTheCommandOrTheAgent() throws {
        let deployment = try ExampleDeployment()
        let runtime = try deployment.home(["runtime-production"])
        try runtime.gpg(["--batch", "--quiet", "--no-tty", "--list-keys"])  // a home in use
        _ = try run("/usr/bin/env", ["gpgconf", "--homedir", runtime.path, "--kill", "gpg-agent"])
        let probe = "grep -l CANARY-PASSPHRASE /proc/[0-9]*/environ 2>/dev/null; env | grep -c '^SECRETC_GPG_' || true; "
            + "pgrep -f gpg-agent >/dev/null && echo agent-running"
        let result = try deployment.secretc(
            ["exec", "--env", "production", "--", "/bin/sh", "-c", probe], home: runtime,
            environment: ["SECRETC_GPG_PASSPHRASE": "CANARY-PASSPHRASE", "SECRETC_GPG_OTHER": "CANARY-PASSPHRASE-2"])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == "0\nagent-running\n", "\(result.stdoutText)")
        // The old name is not read, and says so.
        let old = try deployment.secretc(
            ["exec", "--env", "production", "--", "/bin/true"], home: runtime, environment: ["SECRETC_PASSPHRASE": "x"])
        #expect(old.stderrText.contains("SECRETC_PASSPHRASE is not read; the passphrase goes in SECRETC_GPG_PASSPHRASE"))
    }

    /// secretc holds values in memory: it marks itself non-dumpable (its
    /// /proc entries then belong to root, not to the user running it).
    @Test func secretcIsNotDumpable() throws {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }
        let deployment = try ExampleDeployment()
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: deployment.scratch.path)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = [
            "--reuid=4242", "--regid=4242", "--clear-groups", Secretc.executable, "set", "github", "--env", "production", "APP_ID",
        ]
        process.currentDirectoryURL = deployment.root
        process.environment = ["PATH": "/usr/bin:/bin", "SECRETC_CACHE_DIR": "", "HOME": "/nonexistent"]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // It waits for the value on standard input: look at it meanwhile.
        var owner: uid_t?
        for _ in 0..<50 where owner == nil || owner == 4242 {
            Thread.sleep(forTimeInterval: 0.1)
            var info = stat()
            if stat("/proc/\(process.processIdentifier)/status", &info) == 0 { owner = info.st_uid }
            if let owner, owner == 0 { break }
        }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        #expect(owner == 0, "a dumpable process's /proc entries belong to its user (4242)")
    }

    @Test func theCommandNeverRunsWhenLoadingFails() throws {
        let deployment = try ExampleDeployment()
        let runtime = try deployment.home(["runtime-production"])
        let marker = deployment.scratch.url.appendingPathComponent("ran").path
        let file = deployment.root.appendingPathComponent("secrets/production.bundle")
        var text = try String(contentsOf: file, encoding: .utf8)
        // Swap two characters inside alice's ciphertext.
        let line = text.split(separator: "\n").first { $0.hasPrefix("slot alice github TOKEN ") }!
        var bytes = Array(line.utf8)
        let at = bytes.firstIndex(of: UInt8(ascii: "."))! + 5
        bytes.swapAt(at, at + 1)
        text = text.replacingOccurrences(of: String(line), with: String(decoding: bytes, as: UTF8.self))
        try text.write(to: file, atomically: true, encoding: .utf8)
        let result = try deployment.secretc(["exec", "--env", "production", "--", "/usr/bin/touch", marker], home: runtime)
        #expect(result.status == 1)
        #expect(result.stderrText.hasPrefix("secretc: error: "))
        #expect(result.stderrText.contains("alice/github/TOKEN"))
        #expect(!FileManager.default.fileExists(atPath: marker))

        let pins = try deployment.secretc(
            ["exec", "--bundle", file.path, "--env", "production", "--", "/usr/bin/touch", marker], home: runtime,
            environment: ["SECRETC_TRUSTED_ADMINS": ""])
        #expect(pins.status == 1)
        #expect(pins.stderrText.contains("SECRETC_TRUSTED_ADMINS"))
        #expect(!FileManager.default.fileExists(atPath: marker))

        let missing = try deployment.secretc(["exec", "--env", "production"], home: runtime)
        #expect(missing.status == 2)
    }
}
