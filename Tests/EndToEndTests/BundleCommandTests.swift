import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretCompiler
import TestSupport
import Testing

/// The example project in a scratch folder, with GnuPG homes holding some of
/// its EXAMPLE-ONLY secret keys.
final class ExampleDeployment: @unchecked Sendable {
    let scratch: TemporaryDirectory
    let root: URL
    var homes: [TemporaryGPGHome] = []

    init() throws {
        scratch = try TemporaryDirectory()
        root = try scratch.copy("examples/gridos")
    }

    /// A GnuPG home holding the named example keys.
    func home(_ keys: [String]) throws -> TemporaryGPGHome {
        let home = try TemporaryGPGHome()
        for key in keys {
            let armored = try Data(contentsOf: root.appendingPathComponent("example-secret-keys/\(key).EXAMPLE-ONLY.asc"))
            try home.gpg(["--import"], input: Array(armored))
        }
        homes.append(home)
        return home
    }

    /// The write cache of this deployment's commands (unless a test passes
    /// `SECRETC_CACHE_DIR`), so that their writes after the first go through it.
    var cache: URL { scratch.url.appendingPathComponent("write-cache") }

    /// The deployment's declarations file, and the write cache its commands use.
    var config: URL { root.appendingPathComponent("secretc.yaml") }
    var writeCache: WriteCache { WriteCache(folder: cache) }

    /// A first write as ops (the deployment-wide GitHub APP_ID), which
    /// records the project in the write cache; returns ops's home.
    func recordedByAFirstWrite() throws -> TemporaryGPGHome {
        let ops = try home(["ops"])
        #expect(try secretc(["set", "github", "--env", "production", "APP_ID=1"], home: ops).status == 0)
        return ops
    }

    func secretc(_ arguments: [String], home: TemporaryGPGHome? = nil, input: String? = nil,
                 environment: [String: String] = [:]) throws -> ProcessResult {
        // Readers' pins come from the operator, as a service's do: the example's ops key.
        var extra = ["SECRETC_CACHE_DIR": cache.path, "SECRETC_TRUSTED_ADMINS": "B10C30114A7A5CE22215A9196B7A4E014FFA39D1"]
            .merging(environment) { _, given in given }
        if let home { extra["GNUPGHOME"] = home.path }
        return try Secretc.run(arguments, in: root.path, input: input.map { Array($0.utf8) }, environment: extra)
    }

    /// A write of `value` into `user`'s `slot` made by hand (sealed and
    /// signed with the user's key, as a tool other than secretc could),
    /// with `change` applied to the epoch first — it is re-signed after —
    /// then put into the production bundle. `now` dates the epoch.
    func handWrite(
        _ value: String, to slot: SlotKey, by user: String, now: Date = Date(),
        sign: ((TemporaryGPGHome, [UInt8], String) throws -> [UInt8])? = nil,
        change: (inout Epoch, Context) throws -> Void = { _, _ in }
    ) throws {
        let file = root.appendingPathComponent("secrets/production.bundle")
        var bundle = try SecretBundle(parsing: Array(try Data(contentsOf: file)))
        let home = try self.home([user])
        try home.gpg(["--import", root.appendingPathComponent("keys/runtime-production.asc").path])
        let context = try Context(home: home.path)
        var (epoch, sealed) = try EpochSealer(onto: bundle, writer: bundle.users[user]!).seal(
            [.init(slot: slot, value: SecureBytes(value))], after: bundle.epochs, now: now, encryptor: context, signer: context)
        try change(&epoch, context)
        let payload = epoch.payload(environment: bundle.environment, dataKeyDigest: Digest.sha256Hex(epoch.dataKeyMessage))
        epoch.signature = try sign?(home, payload, epoch.writer) ?? context.signDetached(payload, as: epoch.writer)
        bundle.epochs.append(epoch)
        for index in bundle.slots.indices where bundle.slots[index].slot == slot { bundle.slots[index].value = sealed[slot]! }
        try Data(bundle.serialized()).write(to: file)
    }

    func bundle(_ environment: String = "production") throws -> String {
        try String(contentsOf: root.appendingPathComponent("secrets/\(environment).bundle"), encoding: .utf8)
    }

    deinit { homes.forEach { $0.close() } }
}

@Suite("set, unset, compile, get end to end")
struct BundleCommandTests {
    @Test func aWriteOnlyUserWritesHerOwnSlotsOnly() throws {
        let deployment = try ExampleDeployment()
        let alice = try deployment.home(["alice"])
        let before = try deployment.bundle()
        let secret = "shpat_ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"
        let set = try deployment.secretc(
            ["set", "shopify", "--user", "alice", "--env", "production", "ADMIN_TOKEN"], home: alice, input: secret + "\n")
        #expect(set.status == 0, "\(set.stderrText)")
        #expect(set.stdoutText.hasPrefix("set alice/shopify/ADMIN_TOKEN in production, signed by alice at ") == false)
        #expect(set.stdoutText == "set alice/shopify/ADMIN_TOKEN in production, signed by alice\n")
        let after = try deployment.bundle()
        let changed = Set(after.split(separator: "\n")).symmetricDifference(Set(before.split(separator: "\n")))
        #expect(changed.count <= 3, "one slot changes at most 3 lines: \(changed.count)")
        #expect(!after.contains(secret))

        // She cannot read it back, nor write anyone else's slot; the refused write changes nothing.
        let get = try deployment.secretc(["get", "shopify", "ADMIN_TOKEN", "--user", "alice", "--env", "production"], home: alice)
        #expect(get.status == 1)
        #expect(get.stdoutText == "")
        #expect(get.stderrText.contains("no secret key of a recipient is available"), "\(get.stderrText)")
        let forbidden = try deployment.secretc(
            ["set", "stripe", "--user", "bob", "--env", "production", "SECRET_KEY=sk_live_0000000000000000"], home: alice)
        #expect(forbidden.status == 1)
        #expect(forbidden.stderrText == """
            secretc: error: no key in the GnuPG home may write slots of user 'bob' [FORBIDDEN]
            secretc: hint: import the secret key of one of ops into GNUPGHOME=\(alice.path), or point GNUPGHOME at the home that holds one

            """)
        let asAlice = try deployment.secretc(
            ["set", "github", "--env", "production", "--as", "alice", "APP_ID=99"], home: alice)
        #expect(asAlice.status == 1)
        #expect(asAlice.stderrText.hasPrefix("secretc: error: key 'alice' may not write slots of the deployment [FORBIDDEN]\n"))
        #expect(try deployment.bundle() == after, "refused writes leave the bundle byte-identical")

        // A runtime key holder reads it.
        let runtime = try deployment.home(["runtime-production"])
        let read = try deployment.secretc(["get", "shopify", "ADMIN_TOKEN", "--user", "alice", "--env", "production"], home: runtime)
        #expect(read.status == 0)
        #expect(read.stdoutText == secret)
    }

    @Test func valuesAreValidatedAndReservedSlotsKept() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let before = try deployment.bundle()
        let bad = try deployment.secretc(
            ["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN=https://shop.example"], home: ops)
        #expect(bad.status == 1)
        #expect(bad.stderrText == """
            secretc: error: the value for 'STORE_DOMAIN' does not match its pattern ^[a-z0-9][a-z0-9-]*\\.myshopify\\.com$ [INVALID_INPUT]
            secretc: hint: expected something like myshop.myshopify.com

            """)
        #expect(!bad.stderrText.contains("https://shop.example"), "a refused value is not echoed")
        let undeclared = try deployment.secretc(["set", "shopify", "--user", "alice", "--env", "production", "NOPE=x"], home: ops)
        #expect(undeclared.status == 1)
        #expect(undeclared.stderrText.hasPrefix("secretc: error: plugin 'shopify' declares no secret 'NOPE' [NOT_FOUND]\n"))
        let reserved = try deployment.secretc(["unset", "stripe", "--user", "bob", "--env", "production"], home: ops)
        #expect(reserved.status == 1)
        #expect(reserved.stderrText.hasPrefix("secretc: error: slot production/bob/stripe/SECRET_KEY is reserved"))
        let empty = try deployment.secretc(["set", "stripe", "--user", "bob", "--env", "production", "SECRET_KEY="], home: ops)
        #expect(empty.status == 1, "an empty value deletes, and this slot is reserved")
        #expect(try deployment.bundle() == before)

        // Disconnect deletes every slot alice has for shopify; keys not named are untouched.
        let disconnect = try deployment.secretc(["unset", "shopify", "--user", "alice", "--env", "production"], home: ops)
        #expect(disconnect.status == 0)
        #expect(disconnect.stdoutText == "deleted alice/shopify/ADMIN_TOKEN, alice/shopify/STORE_DOMAIN in production, signed by ops\n")
        let status = try deployment.secretc(["status", "--user", "alice", "--plugin", "shopify", "--env", "production", "--format", "json"])
        let list = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout)) as? [[String: Any]])
        #expect(list.first?["set_keys"] as? [String] == [])
        let github = try deployment.secretc(["status", "--user", "alice", "--plugin", "github", "--env", "production", "--format", "json"])
        let githubList = try #require(try JSONSerialization.jsonObject(with: Data(github.stdout)) as? [[String: Any]])
        #expect(githubList.first?["set_keys"] as? [String] == ["TOKEN"])
    }

    @Test func compileReSealsAndTamperingIsCaught() throws {
        let deployment = try ExampleDeployment()
        let both = try deployment.home(["ops", "runtime-production"])
        let compile = try deployment.secretc(["compile", "--env", "production", "--reseal"], home: both)
        #expect(compile.status == 0, "\(compile.stderrText)")
        #expect(compile.stdoutText == "re-sealed secrets/production.bundle: 9 values, signed by ops\n")
        let text = try deployment.bundle()
        #expect(text.split(separator: "\n").filter { $0.hasPrefix("epoch ") }.count == 1)
        let get = try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: both)
        #expect(get.stdoutText == "123456")

        let pinned = try deployment.secretc(
            ["get", "github", "APP_ID", "--env", "production"], home: both,
            environment: ["SECRETC_TRUSTED_ADMINS": "0000000000000000000000000000000000000000"])
        #expect(pinned.status == 1)
        #expect(pinned.stderrText.contains("which is not a trusted admin"))

        // One byte of one ciphertext: check (no keys) and get both refuse.
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let index = try #require(lines.firstIndex { $0.hasPrefix("slot - github APP_ID ") })
        var characters = Array(lines[index])
        let position = lines[index].distance(from: lines[index].startIndex, to: lines[index].firstIndex(of: ".")!) + 5
        characters[position] = characters[position] == "A" ? "B" : "A"
        lines[index] = String(characters)
        try lines.joined(separator: "\n").write(
            to: deployment.root.appendingPathComponent("secrets/production.bundle"), atomically: true, encoding: .utf8)
        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("secrets/production.bundle:\(index + 1):1: error: the bundle cannot be trusted: slot -/github/APP_ID"))
        let tampered = try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: both)
        #expect(tampered.status == 1)
        #expect(tampered.stdoutText == "")
    }

    @Test func getReadsABundleFileWithoutDeclarations() throws {
        let deployment = try ExampleDeployment()
        let runtime = try deployment.home(["runtime-production"])
        // Away from the project: only the bundle, the pins and a recipient's key.
        let copy = deployment.scratch.url.appendingPathComponent("production.bundle")
        try FileManager.default.copyItem(at: deployment.root.appendingPathComponent("secrets/production.bundle"), to: copy)
        let admin = "B10C30114A7A5CE22215A9196B7A4E014FFA39D1"  // the example's ops key
        let get = try deployment.secretc(
            ["get", "--bundle", copy.path, "--env", "production", "shopify", "ADMIN_TOKEN", "--user", "alice"], home: runtime,
            environment: ["SECRETC_TRUSTED_ADMINS": admin])
        #expect(get.status == 0, "\(get.stderrText)")
        #expect(get.stdoutText == "shpat_0000000000000000000000000example")

        let unpinned = try deployment.secretc(
            ["get", "--bundle", copy.path, "--env", "production", "github", "APP_ID"], home: runtime,
            environment: ["SECRETC_TRUSTED_ADMINS": ""])
        #expect(unpinned.status == 1)
        #expect(unpinned.stderrText.contains("SECRETC_TRUSTED_ADMINS"))

        let noKey = try deployment.secretc(
            ["get", "--bundle", copy.path, "--env", "production", "github", "APP_ID"], home: try deployment.home(["ops"]),
            environment: ["SECRETC_TRUSTED_ADMINS": admin])
        #expect(noKey.status == 1)
        #expect(noKey.stderrText.contains("no secret key of a recipient is available"))
        #expect(noKey.stdoutText == "")

        // A changed byte in a signature refuses the read before any value is printed.
        var text = try String(contentsOf: copy, encoding: .utf8)
        let policy = try #require(text.split(separator: "\n").first { $0.hasPrefix("policy ") })
        var bytes = Array(policy.utf8)
        bytes[bytes.count - 10] = bytes[bytes.count - 10] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        text = text.replacingOccurrences(of: String(policy), with: String(decoding: bytes, as: UTF8.self))
        try text.write(to: copy, atomically: true, encoding: .utf8)
        let tampered = try deployment.secretc(
            ["get", "--bundle", copy.path, "--env", "production", "github", "APP_ID"], home: runtime, environment: ["SECRETC_TRUSTED_ADMINS": admin])
        #expect(tampered.status == 1)
        #expect(tampered.stdoutText == "")
        #expect(tampered.stderrText.contains("policy: bad signature"))
    }

    @Test func checkAndStatusNeedNoKeysAndNeverPrintValues() throws {
        let deployment = try ExampleDeployment()
        let check = try deployment.secretc(["check"])
        #expect(check.status == 0)
        #expect(check.stdoutText == "quota: production 11 of 500, staging 11 of 100 slots\ncheck: ok (3 plugins, 4 users, 2 environments, 22 slots)\n")
        let status = try deployment.secretc(["status", "--format", "json"])
        #expect(status.status == 0)
        // The fake values examples/gridos/make-bundles wrote.
        let values = [
            "ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE0", "shpat_0000000000000000000000000example",
            "sk_live_EXAMPLEexample0000", "sk_test_EXAMPLEexample0000", "github_pat_EXAMPLE_alice_0000000000",
            "alice-example.myshopify.com",
        ]
        for output in [check.stdoutText, check.stderrText, status.stdoutText, status.stderrText] {
            for value in values { #expect(!output.contains(value), "\(value)") }
        }
        for environment in ["production", "staging"] {
            let text = try deployment.bundle(environment)
            for value in values { #expect(!text.contains(value), "\(value) in \(environment)") }
        }
    }

    /// Two writers at once: the lock serializes them and neither update is lost.
    @Test func concurrentWritersNeverLoseAnUpdate() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops", "runtime-production"])
        let writes = [("github", "APP_ID=777"), ("github", "TOKEN=ghp_CONCURRENTconcurrentCONCURRENTconcur")]
        let group = DispatchGroup()
        let results = ResultBox()
        for (plugin, assignment) in writes {
            DispatchQueue.global().async(group: group) {
                let result = try? deployment.secretc(["set", plugin, "--env", "production", assignment], home: ops)
                results.append(result?.status ?? -1)
            }
        }
        group.wait()
        #expect(results.values == [0, 0])
        #expect(try deployment.secretc(["check"]).status == 0)
        #expect(try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: ops).stdoutText == "777")
        #expect(try deployment.secretc(["get", "github", "TOKEN", "--env", "production"], home: ops).stdoutText
            == "ghp_CONCURRENTconcurrentCONCURRENTconcur")
    }

    /// After writes, no file anywhere in the project holds the plaintext.
    @Test func noFileHoldsAPlaintextValue() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let secret = "sk_live_PLAINTEXTneverONdisk00"
        #expect(try deployment.secretc(["set", "stripe", "--user", "bob", "--env", "production", "SECRET_KEY"],
                                       home: ops, input: secret + "\n").status == 0)
        // A second write goes through the write cache, which is searched too.
        #expect(try deployment.secretc(["set", "stripe", "--user", "bob", "--env", "production", "WEBHOOK_SECRET"],
                                       home: ops, input: "whsec_PLAINTEXTneverONdisk111111\n").status == 0)
        let files = FileManager.default.enumerator(atPath: deployment.scratch.path)?.allObjects as? [String] ?? []
        #expect(files.contains("gridos/secrets/production.bundle"))
        #expect(files.contains { $0.hasPrefix("write-cache/write-") })
        #expect(files.contains { $0.hasPrefix("write-cache/spare-") }, "the kept bundle version is searched too")
        for file in files {
            let data = (try? Data(contentsOf: deployment.scratch.url.appendingPathComponent(file))) ?? Data()
            #expect(data.range(of: Data(secret.utf8)) == nil, "\(file)")
            #expect(data.range(of: Data("whsec_PLAINTEXTneverONdisk111111".utf8)) == nil, "\(file)")
        }
        let temporary = (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
        #expect(!temporary.contains { $0.hasSuffix(".tmp") && $0.contains("bundle") })
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Int32] = []
    func append(_ value: Int32) { lock.withLock { storage.append(value) } }
    var values: [Int32] { lock.withLock { storage.sorted() } }
}
