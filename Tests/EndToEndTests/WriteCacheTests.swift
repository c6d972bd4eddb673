import Foundation
import GPG
import BundleSeal
@testable import SecretCompiler
import TestSupport
import Testing

/// Writes from the write cache: a record, outside the repository, that the
/// project's files and a bundle passed verification.
@Suite("set and unset through the write cache")
struct WriteCacheTests {
    /// A writer from the deployment's write cache, or nil when it has no
    /// record that still describes the project.
    func cachedWriter(_ deployment: ExampleDeployment, _ home: TemporaryGPGHome) throws -> SlotWriter? {
        try SlotWriter.cached(
            config: deployment.config, environment: "production",
            cache: deployment.writeCache, home: home.path)
    }

    /// Every answer of `set` and `unset` — refusals included — is the same,
    /// byte for byte, with a warm write cache and without any.
    @Test func aRecordedWriteAnswersLikeAFullOne() throws {
        let warm = try ExampleDeployment(), none = try ExampleDeployment()
        let homes = (warm: (ops: try warm.home(["ops"]), alice: try warm.home(["alice"])),
                     none: (ops: try none.home(["ops"]), alice: try none.home(["alice"])))
        let commands: [(arguments: [String], input: String?, asAlice: Bool)] = [
            (["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN"], "warm.myshopify.com\n", false),
            (["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN=https://x"], nil, false),
            (["set", "shopify", "--user", "alice", "--env", "production", "NOPE=1"], nil, false),
            (["set", "shopify", "--user", "zed", "--env", "production", "STORE_DOMAIN=z.myshopify.com"], nil, false),
            (["set", "square", "--user", "alice", "--env", "production", "TOKEN=1"], nil, false),
            (["set", "shopify", "--user", "bob", "--env", "production", "STORE_DOMAIN=b.myshopify.com"], nil, false),
            (["set", "stripe", "--user", "bob", "--env", "production", "SECRET_KEY="], nil, false),
            (["unset", "stripe", "--user", "bob", "--env", "production"], nil, false),
            (["set", "stripe", "--user", "bob", "--env", "production", "SECRET_KEY=sk_live_0000000000000000"], nil, true),
            (["set", "github", "--env", "staging", "APP_ID=5"], nil, false),
            (["unset", "shopify", "--user", "carol", "--env", "production", "API_VERSION"], nil, false),
            (["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN", "ADMIN_TOKEN"],
             "two.myshopify.com\nshpat_TWOtwoTWOtwoTWOtwoTWOtwoTWOtwo00\n", true),
            (["unset", "shopify", "--user", "alice", "--env", "production"], nil, false),
            (["set", "github", "--env", "production", "--as", "ops", "APP_ID=42"], nil, false),
        ]
        for command in commands {
            let withRecord = try warm.secretc(
                command.arguments, home: command.asAlice ? homes.warm.alice : homes.warm.ops, input: command.input)
            let without = try none.secretc(
                command.arguments, home: command.asAlice ? homes.none.alice : homes.none.ops, input: command.input,
                environment: ["SECRETC_CACHE_DIR": ""])
            let what = command.arguments.joined(separator: " ")
            #expect(withRecord.status == without.status, "\(what)")
            #expect(withRecord.stdoutText == without.stdoutText, "\(what)")
            // The same words, each naming its own GnuPG home.
            let homesNamed = [(homes.warm.alice, homes.none.alice), (homes.warm.ops, homes.none.ops)]
            let normalized = homesNamed.reduce(withRecord.stderrText) { $0.replacingOccurrences(of: $1.0.path, with: $1.1.path) }
            #expect(normalized == without.stderrText, "\(what)")
        }
        #expect(try cachedWriter(warm, homes.warm.ops) != nil, "the warm deployment wrote through its record")
        #expect(!FileManager.default.fileExists(atPath: none.cache.path))
        let runtime = (warm: try warm.home(["runtime-production"]), none: try none.home(["runtime-production"]))
        for (deployment, home) in [(warm, runtime.warm), (none, runtime.none)] {
            #expect(try deployment.secretc(["check"]).status == 0)
            let value = try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: home)
            #expect(value.stdoutText == "42")
        }
    }

    /// A warm write reads no declarations: it writes from the record, and
    /// what it writes verifies like any other write.
    @Test func aWarmWriteUsesTheRecord() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        #expect(try cachedWriter(deployment, ops) == nil, "nothing is recorded before a first write")
        #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=1"], home: ops).status == 0)
        let before = try deployment.bundle()
        let writer = try #require(try cachedWriter(deployment, ops))
        let token = "shpat_WARMwarmWARMwarmWARMwarmWARMwa00"
        let report = try #require(try writer.write(
            .upsert([("ADMIN_TOKEN", SecureBytes(token))]), plugin: "shopify", user: "alice", as: "ops"))
        #expect(report.set == ["alice/shopify/ADMIN_TOKEN"])
        #expect(report.signer == "ops")
        let after = try deployment.bundle()
        let changed = Set(after.split(separator: "\n")).symmetricDifference(Set(before.split(separator: "\n")))
        #expect(changed.count <= 3, "\(changed.count) lines changed")
        #expect(!after.contains(token))
        #expect(try deployment.secretc(["check"]).status == 0)
        let runtime = try deployment.home(["runtime-production"])
        let read = try deployment.secretc(["get", "shopify", "ADMIN_TOKEN", "--user", "alice", "--env", "production"], home: runtime)
        #expect(read.stdoutText == token)
        // The bundle it wrote is recorded as verified: the next write is warm too.
        let next = try #require(try cachedWriter(deployment, ops))
        #expect(try next.write(.disconnect, plugin: "shopify", user: "alice", as: "ops") != nil)
    }

    /// A changed manifest, key file or declarations file, a damaged record
    /// and an expiry reached each make the record useless.
    @Test func anyChangedFileIsAMiss() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        #expect(try cachedWriter(deployment, ops) != nil)

        let manifest = "gridos/plugins/shopify/manifest.json"
        let original = try Data(contentsOf: deployment.scratch.url.appendingPathComponent(manifest))
        try deployment.scratch.edit(manifest, replacing: #"^[a-z0-9][a-z0-9-]*\\.myshopify\\.com$"#, with: #"^[a-z]+\\.example$"#)
        #expect(try cachedWriter(deployment, ops) == nil)
        // The new pattern applies (after a compile, as for any manifest change);
        // values written before it are re-sealed, each named in a warning.
        let both = try deployment.home(["ops", "runtime-production"])
        let compile = try deployment.secretc(["compile", "--env", "production", "--reseal"], home: both)
        #expect(compile.status == 0)
        #expect(compile.stderrText.contains("the value of alice/shopify/STORE_DOMAIN does not match its manifest's pattern"))
        #expect(!compile.stderrText.contains("alice-example"))
        let refused = try deployment.secretc(
            ["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN=shop.myshopify.com"], home: ops)
        #expect(refused.status == 1)
        #expect(refused.stderrText.contains("does not match its pattern ^[a-z]+\\.example$"))
        try original.write(to: deployment.scratch.url.appendingPathComponent(manifest))
        #expect(try deployment.secretc(["compile", "--env", "production", "--reseal"], home: both).status == 0)
        #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=2"], home: ops).status == 0)
        #expect(try cachedWriter(deployment, ops) != nil)

        let key = deployment.root.appendingPathComponent("keys/runtime-production.asc")
        let runtimeKey = try Data(contentsOf: key)
        try Data(contentsOf: deployment.root.appendingPathComponent("keys/runtime-staging.asc")).write(to: key)
        #expect(try cachedWriter(deployment, ops) == nil)
        try runtimeKey.write(to: key)
        #expect(try cachedWriter(deployment, ops) != nil, "the same bytes again hash as recorded")

        let config = deployment.config
        let declarations = try Data(contentsOf: config)
        try (declarations + Data("# a comment\n".utf8)).write(to: config)
        #expect(try cachedWriter(deployment, ops) == nil)
        try declarations.write(to: config)

        let cache = deployment.writeCache
        #expect(cache.entry(config: config) != nil)
        // The example's bob/stripe/SECRET_KEY expires on 2027-06-30: validation would say otherwise then.
        #expect(cache.entry(config: config, now: Date(timeIntervalSince1970: 1_814_400_000)) == nil)

        let entries = try FileManager.default.contentsOfDirectory(at: deployment.cache, includingPropertiesForKeys: nil)
        let entry = try #require(entries.first { $0.lastPathComponent.hasPrefix("write-") })
        let recorded = try Data(contentsOf: entry)
        try recorded.prefix(recorded.count / 2).write(to: entry)
        #expect(try cachedWriter(deployment, ops) == nil, "a damaged record is not used")
        #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=3"], home: ops).status == 0)
        #expect(try cachedWriter(deployment, ops) != nil, "a full write records again")
    }

    /// The declarations are not hashed again while they are the very file
    /// recorded; changed in place — same size, modification time put back —
    /// they are no longer that file (the change time moved): hashed, a miss.
    @Test func declarationsChangedInPlaceAreAMiss() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        let config = deployment.config
        let entries = try FileManager.default.contentsOfDirectory(at: deployment.cache, includingPropertiesForKeys: nil)
        let record = try String(contentsOf: try #require(entries.first { $0.lastPathComponent.hasPrefix("write-") }), encoding: .utf8)
        let line = try #require(record.split(separator: "\n").first { $0.hasPrefix("input ") && $0.hasSuffix(" " + config.standardizedFileURL.path) })
        #expect(line.split(separator: " ")[2] != "-", "the declarations are recorded with their file identity")
        #expect(try cachedWriter(deployment, ops) != nil)

        var text = Array(try Data(contentsOf: config))
        let at = try #require(text.firstIndex(of: UInt8(ascii: "#")), "the example's declarations have a comment")
        text[at + 2] = text[at + 2] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
        var before = stat()
        #expect(stat(config.path, &before) == 0)
        let handle = try FileHandle(forWritingTo: config)  // in place: the same inode
        try handle.write(contentsOf: Data(text))
        var times = [before.st_atim, before.st_mtim]
        #expect(futimens(handle.fileDescriptor, &times) == 0)
        try handle.close()
        #expect(try cachedWriter(deployment, ops) == nil)
    }

    /// A bundle changed behind the record's back is verified in full again,
    /// and a tampered one is refused.
    @Test func aBundleChangedBehindTheRecordIsVerifiedInFull() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        let file = deployment.root.appendingPathComponent("secrets/production.bundle")
        let text = try tamperedBundle(deployment)
        try text.write(to: file, atomically: true, encoding: .utf8)
        try expectRefused(deployment, ops, tampered: text, appID: "2")
    }

    /// The bundle's text with one character of alice's GitHub token's ciphertext changed.
    func tamperedBundle(_ deployment: ExampleDeployment) throws -> String {
        var text = try deployment.bundle()
        let line = try #require(text.range(of: "slot alice github TOKEN "))
        let value = text.index(line.upperBound, offsetBy: 30)
        text.replaceSubrange(value...value, with: text[value] == "A" ? "B" : "A")
        return text
    }

    /// A cached writer defers and `secretc set` refuses the tampered bundle,
    /// leaving it byte-identical.
    func expectRefused(_ deployment: ExampleDeployment, _ ops: TemporaryGPGHome, tampered text: String, appID: String) throws {
        let writer = try #require(try cachedWriter(deployment, ops), "the project's files are unchanged")
        #expect(try writer.write(.upsert([("APP_ID", SecureBytes(appID))]), plugin: "github", user: nil, as: "ops") == nil)
        #expect(try deployment.bundle() == text)
        let set = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=\(appID)"], home: ops)
        #expect(set.status == 1)
        #expect(set.stderrText.hasPrefix("secretc: error: secrets/production.bundle cannot be trusted: "), "\(set.stderrText)")
        #expect(try deployment.bundle() == text, "nothing is written onto a tampered bundle")
    }

    /// The bundle a write leaves is recorded by its file identity, and the
    /// next write reads it without hashing. A change made in place — same
    /// inode, same size, its modification time put back — still changes the
    /// ctime: the writer hashes the bundle, finds it unverified, and refuses.
    @Test func aBundleChangedInPlaceIsNotTakenForTheOneWritten() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        let file = deployment.root.appendingPathComponent("secrets/production.bundle")
        let cache = deployment.writeCache
        let entry = try #require(cache.entry(config: deployment.config))
        let written = try #require(entry.written["production"], "a write records the file it left")
        #expect(BundleFile(url: file).read(ifIdentity: written.identity) == Array(try Data(contentsOf: file)))
        #expect(try cachedWriter(deployment, ops)?.write(
            .upsert([("APP_ID", SecureBytes("2"))]), plugin: "github", user: nil, as: "ops") != nil)

        let text = try tamperedBundle(deployment)
        var before = stat()
        #expect(stat(file.path, &before) == 0)
        let handle = try FileHandle(forWritingTo: file)  // in place: the same inode
        try handle.write(contentsOf: Data(text.utf8))
        var times = [before.st_atim, before.st_mtim]
        #expect(futimens(handle.fileDescriptor, &times) == 0)
        try handle.close()
        var after = stat()
        #expect(stat(file.path, &after) == 0)
        #expect(after.st_ino == before.st_ino && after.st_size == before.st_size)
        #expect(after.st_mtim.tv_sec == before.st_mtim.tv_sec && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec)

        try expectRefused(deployment, ops, tampered: text, appID: "3")
    }

    /// A warm writer reads the bundle the last write left before it has
    /// checked the record; a bundle replaced in between (here by a tampered
    /// copy) is not taken for the bytes read early.
    @Test func aBundleReplacedAfterTheEarlyReadIsNotUsed() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        let writer = try #require(try cachedWriter(deployment, ops))
        let early = try #require(writer.earlyBundle, "the record names the bundle")
        let read = try #require(early.read.wait(), "read before the write")
        #expect(read.bytes == Array(try Data(contentsOf: writer.file.url)))
        #expect(read.digest == nil, "the file the first write left is not hashed")
        let text = try tamperedBundle(deployment)
        try text.write(to: writer.file.url, atomically: true, encoding: .utf8)  // a new file, as git leaves it
        #expect(try writer.write(.upsert([("APP_ID", SecureBytes("9"))]), plugin: "github", user: nil, as: "ops") == nil)
        #expect(try deployment.bundle() == text, "nothing is written onto the bundle that replaced the one read")

        // A verified bundle that is not the file the last write left (a
        // checkout put it back) is hashed as it is read early; replaced
        // after that, it is not taken either.
        try Data(read.bytes).write(to: writer.file.url, options: .atomic)
        let again = try #require(try cachedWriter(deployment, ops))
        let hashed = try #require(again.earlyBundle?.read.wait())
        #expect(hashed.bytes == read.bytes && hashed.digest != nil)
        try text.write(to: writer.file.url, atomically: true, encoding: .utf8)
        #expect(try again.write(.upsert([("APP_ID", SecureBytes("9"))]), plugin: "github", user: nil, as: "ops") == nil)
        #expect(try deployment.bundle() == text)
        // Put back once more and left alone, it is written to.
        try Data(read.bytes).write(to: writer.file.url, options: .atomic)
        #expect(try cachedWriter(deployment, ops)?.write(
            .upsert([("APP_ID", SecureBytes("9"))]), plugin: "github", user: nil, as: "ops") != nil)
    }

    /// `compile` records the bundle it made: the next write is warm.
    @Test func aCompiledBundleIsRecorded() throws {
        let deployment = try ExampleDeployment()
        let both = try deployment.home(["ops", "runtime-production"])
        #expect(try cachedWriter(deployment, both) == nil)
        #expect(try deployment.secretc(["compile", "--env", "production", "--reseal"], home: both).status == 0)
        let writer = try #require(try cachedWriter(deployment, both))
        #expect(try writer.write(.upsert([("APP_ID", SecureBytes("7"))]), plugin: "github", user: nil, as: "ops") != nil)
        #expect(try deployment.secretc(["check"]).status == 0)
        #expect(try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: both).stdoutText == "7")
    }

    /// Going back to a bundle verified before (another branch) stays warm.
    @Test func aBundleVerifiedBeforeStaysWarm() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        let first = try deployment.bundle()
        #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=2"], home: ops).status == 0)
        try first.write(to: deployment.root.appendingPathComponent("secrets/production.bundle"), atomically: true, encoding: .utf8)
        let writer = try #require(try cachedWriter(deployment, ops))
        #expect(try writer.write(.upsert([("APP_ID", SecureBytes("3"))]), plugin: "github", user: nil, as: "ops") != nil)
    }

    /// The digest of a spliced bundle, computed from its pieces reusing the
    /// old bundle's chunks, is the digest of its bytes, however read.
    @Test func aSplicedBundlesDigestIsThatOfItsBytes() throws {
        let size = BundleDigest.chunkSize
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let old = (0..<(3 * size + 12_345)).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let known = BundleDigest(old)
        let scratch = try TemporaryDirectory()
        for cut in [0, 100, size - 1, size, 2 * size + 7, old.count] {
            let line = Array("epoch 1800000000 00112233445566ff\n".utf8), field = Array("-".utf8)
            let change = min(old.count, cut + size + 3)
            let pieces = [old[..<cut], line[...], old[cut..<change], field[...], old[min(old.count, change + 60)...]]
            let joined = Array(pieces.joined())
            let spliced = BundleDigest(pieces: pieces, reusing: known, unchanged: cut)
            #expect(spliced == BundleDigest(joined), "cut at \(cut)")
            #expect(spliced.value == BundleDigest(joined).value)
            #expect(spliced.value != known.value)
            let file = scratch.url.appendingPathComponent("bundle-\(cut)")
            try Data(joined).write(to: file)
            let read = try #require(BundleDigest.read(file.path))
            #expect(read.bytes == joined)
            #expect(read.digest == spliced)
        }
        #expect(BundleDigest([]).value != BundleDigest([0]).value)
    }

    /// Issue 27, finding 6: the record is edited to add a recipient (an
    /// admin's key under its own name), or to give the runtime's name
    /// alice's key. A write checks its own data key against the bundle's
    /// signed policy before the file is replaced: refused, nothing written.
    @Test(arguments: ["added", "swapped"])
    func aPoisonedRecordAddsNoRecipient(_ poison: String) throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        let entries = try FileManager.default.contentsOfDirectory(at: deployment.cache, includingPropertiesForKeys: nil)
            .filter { !$0.hasDirectoryPath && !$0.lastPathComponent.hasPrefix(".") }
        var poisoned = 0
        for entry in entries {
            guard var text = try? String(contentsOf: entry, encoding: .utf8), text.contains("\nenvironment production ")
            else { continue }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if poison == "added" {
                let at = try #require(lines.firstIndex { $0.hasPrefix("environment production ") })
                lines[at] = lines[at].replacingOccurrences(of: "runtime-production ", with: "ops,runtime-production ")
            } else {
                let alice = try #require(lines.first { $0.hasPrefix("key alice ") }).split(separator: " ")
                let at = try #require(lines.firstIndex { $0.hasPrefix("key runtime-production ") })
                lines[at] = (["key", "runtime-production"] + alice.dropFirst(2).map(String.init)).joined(separator: " ")
            }
            text = lines.joined(separator: "\n")
            try text.write(to: entry, atomically: true, encoding: .utf8)
            poisoned += 1
        }
        #expect(poisoned == 1)
        let before = try deployment.bundle()
        let set = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=99"], home: ops)
        #expect(set.status != 0)
        #expect(set.stderrText.contains("this write's data key would"), "\(set.stderrText)")
        #expect(try deployment.bundle() == before, "nothing is written")
        #expect(try deployment.secretc(["check"]).status == 0)
    }
}
