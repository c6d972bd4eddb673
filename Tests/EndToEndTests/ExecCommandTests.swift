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
    }

    /// Fail small: alice signs a value that fails its manifest pattern (as a
    /// hand-made write can). The command still runs with everyone's values;
    /// her variable is removed, not replaced by the deployment-wide value or
    /// the caller's; a warning names her, never the value.
    @Test func anUnusableValueIsLeftOutWithAWarning() throws {
        let deployment = try ExampleDeployment()
        let file = deployment.root.appendingPathComponent("secrets/production.bundle")
        var bundle = try SecretBundle(parsing: Array(try Data(contentsOf: file)))
        let alice = try deployment.home(["alice"])
        try alice.gpg(["--import", deployment.root.appendingPathComponent("keys/runtime-production.asc").path])
        let context = try Context(home: alice.path)
        let slot = SlotKey(owner: "alice", plugin: "github", key: "TOKEN")
        let (epoch, sealed) = try EpochSealer(onto: bundle, writer: bundle.users["alice"]!).seal(
            [.init(slot: slot, value: SecureBytes("CANARY-not-a-token"))], after: bundle.epochs, encryptor: context,
            signer: context)
        bundle.epochs.append(epoch)
        for index in bundle.slots.indices where bundle.slots[index].slot == slot { bundle.slots[index].value = sealed[slot]! }
        try Data(bundle.serialized()).write(to: file)

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
