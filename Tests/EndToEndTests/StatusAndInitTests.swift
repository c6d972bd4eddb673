import Foundation
import TestSupport
import Testing

@Suite("secretc status and init, end to end")
struct StatusAndInitTests {
    let example = ["--config", "examples/gridos/secretc.yaml"]

    @Test func statusJSONHasTheSeedShape() throws {
        let result = try Secretc.run(
            ["status"] + example + ["--user", "bob", "--plugin", "stripe", "--format", "json"], in: Secretc.packageRoot.path)
        #expect(result.status == 0)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [[String: Any]])
        #expect(list.count == 1)
        let entry = list[0]
        #expect(entry["plugin_slug"] as? String == "stripe")
        #expect(entry["environment"] as? String == "production")
        #expect(entry["user"] as? String == "bob")
        #expect(entry["set_keys"] as? [String] == ["SECRET_KEY"])
        let declared = try #require(entry["declared"] as? [[String: Any]])
        #expect(declared.map { $0["key"] as? String } == ["SECRET_KEY", "WEBHOOK_SECRET"])
        #expect(declared[0]["label"] as? String == "Secret key")
        #expect(declared[0]["placeholder"] as? String == "sk_live_...")
        let slots = try #require(entry["slots"] as? [[String: Any]])
        #expect(slots[0]["status"] as? String == "active")
        #expect(slots[0]["hasValue"] as? Bool == true)
        #expect(slots[0]["writtenBy"] as? String == "ops")
        #expect(slots[1]["status"] as? String == "pending")
        #expect(slots[0]["reserved"] as? Bool == true)
        #expect(slots[0]["expires"] as? String == "2027-06-30")
        #expect(slots[0]["scopes"] as? [String] == ["formulas"])
    }

    @Test func statusTable() throws {
        let result = try Secretc.run(["status"] + example + ["--user", "alice", "--env", "staging"], in: Secretc.packageRoot.path)
        #expect(result.status == 0)
        let lines = result.stdoutText.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines[0] == "staging · alice · github")
        #expect(lines[1].hasPrefix("  TOKEN  active    Personal access token  (by alice 20"))
        #expect(lines[2] == "staging · alice · shopify")
        #expect(lines[3].hasPrefix("  STORE_DOMAIN  active    Store domain  (by alice 20"))
        #expect(lines[4].hasPrefix("  ADMIN_TOKEN   active    Admin API token  (by alice 20"))
    }

    @Test func statusRefusesUndeclaredFilters() throws {
        let result = try Secretc.run(["status"] + example + ["--user", "mallory"], in: Secretc.packageRoot.path)
        #expect(result.status == 1)
        #expect(result.stderrText.hasPrefix("secretc: error: user 'mallory' is not declared [NOT_FOUND]\n"))
    }

    @Test func statusRefusesABrokenProject() throws {
        let scratch = try TemporaryDirectory()
        let project = try scratch.copy("examples/gridos")
        try scratch.edit("gridos/secretc.yaml", replacing: "admins: [ops]", with: "admins: [opz]")
        let result = try Secretc.run(["status"], in: project.path)
        #expect(result.status == 1)
        #expect(result.stdoutText == "")
        #expect(result.stderrText.contains("secretc.yaml:11:10: error: admin names undeclared key 'opz'"))
        #expect(result.stderrText.hasSuffix("""
            secretc: error: the declarations have 1 error
            secretc: hint: run `secretc check` for the full report

            """))
    }

    @Test func initScaffoldsAProjectThatPassesCheck() throws {
        let gpgHome = try TemporaryGPGHome()
        defer { gpgHome.close() }
        let scratch = try TemporaryDirectory()
        let environment = ["GNUPGHOME": gpgHome.path]
        let result = try Secretc.run(
            ["init", "--admin", "ops", "--env", "production", "--env", "staging",
             "--generate-key", "ops", "--generate-key", "runtime-production", "--generate-key", "runtime-staging"],
            in: scratch.path, environment: environment)
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText.contains("created secretc.yaml"))
        #expect(result.stdoutText.contains("created plugins/example/manifest.json"))
        #expect(result.stdoutText.contains("generated key 'runtime-staging' "))
        #expect(result.stdoutText.hasSuffix("next: run `secretc check`\n"))

        let uncompiled = try Secretc.run(["check"], in: scratch.path)
        #expect(uncompiled.status == 0, "\(uncompiled.stdoutText)")
        #expect(uncompiled.stdoutText.contains("warning: bundle 'secrets/staging.bundle' does not exist yet"))
        for env in ["production", "staging"] {
            let compile = try Secretc.run(["compile", "--env", env], in: scratch.path, environment: environment)
            #expect(compile.status == 0, "\(compile.stderrText)")
            let set = try Secretc.run(
                ["set", "example", "--env", env, "API_TOKEN"], in: scratch.path, input: Array("tok_12345678\n".utf8),
                environment: environment)
            #expect(set.status == 0, "\(set.stderrText)")
        }
        let check = try Secretc.run(["check", "--strict"], in: scratch.path)
        #expect(check.status == 0, "\(check.stdoutText)")
        #expect(check.stdoutText == "check: ok (1 plugin, 0 users, 2 environments, 2 slots)\n")

        // The secret halves stay in the GnuPG home: nothing in the project holds one.
        let files = FileManager.default.enumerator(atPath: scratch.path)?.allObjects as? [String] ?? []
        for file in files {
            let text = (try? String(contentsOfFile: scratch.url.appendingPathComponent(file).path, encoding: .utf8)) ?? ""
            #expect(!text.contains("PRIVATE KEY"), "\(file)")
        }
        let secrets = String(decoding: try gpgHome.gpg(["--list-secret-keys", "--with-colons"]), as: UTF8.self)
        #expect(secrets.split(separator: "\n").filter { $0.hasPrefix("sec:") }.count == 3)
        let gitignore = try String(contentsOf: scratch.url.appendingPathComponent(".gitignore"), encoding: .utf8)
        #expect(gitignore.contains("*.secret.asc"))

        // Never overwrite: a second init refuses; adding a key to the project works.
        let again = try Secretc.run(["init"], in: scratch.path, environment: environment)
        #expect(again.status == 1)
        #expect(again.stderrText.hasPrefix("secretc: error: secretc.yaml already exists\n"))
        // A person's key in an existing project: declared, with the next step, and
        // never a hint to export its secret half.
        let config = scratch.url.appendingPathComponent("secretc.yaml")
        try (try String(contentsOf: config, encoding: .utf8)).replacingOccurrences(of: "users: {}", with: "users:\n  alice: {}")
            .write(to: config, atomically: true, encoding: .utf8)
        let add = try Secretc.run(["init", "--generate-key", "alice"], in: scratch.path, environment: environment)
        #expect(add.status == 0, "\(add.stderrText)")
        #expect(FileManager.default.fileExists(atPath: scratch.url.appendingPathComponent("keys/alice.asc").path))
        #expect(add.stdoutText.contains("added `alice: keys/alice.asc` to keys: in secretc.yaml\n"), "\(add.stdoutText)")
        #expect(add.stdoutText.contains("next: give user alice the key: `alice: { key: alice }` under users:"))
        #expect(!add.stdoutText.contains("SECRETC_GPG_KEY") && !add.stdoutText.contains("export-secret"))
        let declared = try String(contentsOf: config, encoding: .utf8)
        #expect(declared.contains("  runtime-staging: keys/runtime-staging.asc\n  alice: keys/alice.asc\n"), "\(declared)")
        #expect(try Secretc.run(["check"], in: scratch.path, environment: environment).status == 0)
        let duplicate = try Secretc.run(["init", "--generate-key", "alice"], in: scratch.path, environment: environment)
        #expect(duplicate.status == 1)
        #expect(duplicate.stderrText == "secretc: error: keys/alice.asc already exists; not replacing a key\n")
    }

    @Test func initWithoutKeysSaysWhatIsMissing() throws {
        let scratch = try TemporaryDirectory()
        let result = try Secretc.run(["init"], in: scratch.path)
        #expect(result.status == 0)
        #expect(result.stdoutText.hasSuffix(
            "next: run `secretc check`; first add the public keys keys/ops.asc, keys/runtime-production.asc (or rerun with --generate-key)\n"))
        let check = try Secretc.run(["check"], in: scratch.path)
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("secretc.yaml:6:8: error: key file 'keys/ops.asc' of key 'ops' does not exist [NOT_FOUND]"))
        let invalid = try Secretc.run(["init", "--admin", "Ops"], in: scratch.path)
        #expect(invalid.status == 2)
    }
}
