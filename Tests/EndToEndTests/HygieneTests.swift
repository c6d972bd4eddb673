import Foundation
import TestSupport
import Testing

/// Issue: nothing lost, nothing leaked — files secretc reads and writes.
/// Paths in the declarations stay inside the project; nothing is written
/// through a symbolic link; a bundle keeps its mode; declarations and the
/// write cache that another user could control are not used.
@Suite("files: inside the project, never through links, never another user's")
struct HygieneTests {
    /// A file outside the project holding a canary, as a CI machine's service-account key would.
    func outsideSecret(_ deployment: ExampleDeployment) throws -> URL {
        let outside = deployment.scratch.url.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let file = outside.appendingPathComponent("sa.json")
        try Data("{\n  \"private_key\": \"CANARY-PRIVATE-KEY\",\n  \"secrets\": []\n}\n".utf8).write(to: file)
        return file
    }

    @Test func pathsLeadingOutsideTheProjectAreRefusedAndNothingIsQuoted() throws {
        let deployment = try ExampleDeployment()
        let secret = try outsideSecret(deployment)
        let original = try String(contentsOf: deployment.config, encoding: .utf8)
        // `..`, an absolute path, and a symbolic link inside the project pointing out.
        try FileManager.default.createSymbolicLink(
            at: deployment.root.appendingPathComponent("plugins/linked"), withDestinationURL: secret.deletingLastPathComponent())
        for path in ["../outside/sa.json", secret.path, "plugins/linked/sa.json"] {
            try original.replacingOccurrences(of: "plugins/shopify/manifest.json", with: path)
                .write(to: deployment.config, atomically: true, encoding: .utf8)
            for format in ["text", "json", "github"] {
                let result = try Secretc.run(["check", "--format", format], in: deployment.root.path)
                #expect(result.status == 1, "\(path)")
                #expect(!result.stdoutText.contains("CANARY") && !result.stderrText.contains("CANARY"), "\(path) \(format)")
                #expect(result.stdoutText.contains("FORBIDDEN"), "\(path) \(format): \(result.stdoutText)")
            }
            let text = try Secretc.run(["check"], in: deployment.root.path)
            #expect(text.stdoutText.contains("secretc.yaml:"), "\(text.stdoutText)")
            #expect(text.stdoutText.contains("paths stay inside the folder of secretc.yaml"))
        }
        // A bundle declared outside is refused too, and compile creates nothing there.
        try original.replacingOccurrences(of: "bundle: secrets/production.bundle", with: "bundle: ../outside/production.bundle")
            .write(to: deployment.config, atomically: true, encoding: .utf8)
        let compile = try deployment.secretc(
            ["compile", "--env", "production", "--reseal"], home: try deployment.home(["ops", "runtime-production"]))
        #expect(compile.status != 0)
        #expect(compile.stderrText.contains("paths stay inside the folder of secretc.yaml"), "\(compile.stderrText)")
        #expect(!FileManager.default.fileExists(
            atPath: secret.deletingLastPathComponent().appendingPathComponent("production.bundle").path))
    }

    @Test func nothingIsWrittenThroughASymbolicLinkAndTheModeIsKept() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let bundle = deployment.root.appendingPathComponent("secrets/production.bundle")
        let victim = deployment.scratch.url.appendingPathComponent("victim")
        // A lock file that is a link: refused, the link's target never created.
        let lock = deployment.root.appendingPathComponent("secrets/production.bundle.lock")
        try? FileManager.default.removeItem(at: lock)
        try FileManager.default.createSymbolicLink(at: lock, withDestinationURL: victim)
        let refused = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=7"], home: ops)
        #expect(refused.status == 1)
        #expect(refused.stderrText.contains("symbolic link"), "\(refused.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: victim.path))
        try FileManager.default.removeItem(at: lock)
        // Links at every temporary name a writer used to pick are never followed.
        for pid in 1..<64 {
            try? FileManager.default.createSymbolicLink(
                at: deployment.root.appendingPathComponent("secrets/.production.bundle.\(pid).tmp"), withDestinationURL: victim)
        }
        chmod(bundle.path, 0o444)
        let written = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=8"], home: ops)
        #expect(written.status == 0, "\(written.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: victim.path))
        let attributes = try FileManager.default.attributesOfItem(atPath: bundle.path)
        #expect(attributes[.type] as? FileAttributeType == .typeRegular)
        #expect((attributes[.posixPermissions] as? Int) == 0o444)
    }

    /// A manifest may not name a variable that changes what `exec`'s child
    /// loads or runs (LD_PRELOAD, PATH, proxies, …), by `env` or by default.
    @Test func variablesThatChangeWhatAProgramRunsAreRefused() throws {
        let deployment = try ExampleDeployment()
        for (manifest, old, new) in [
            ("gridos/plugins/github/manifest.json", "\"env\": \"GITHUB_TOKEN\"", "\"env\": \"LD_PRELOAD\""),
            ("gridos/plugins/github/manifest.json", "\"env\": \"LD_PRELOAD\"", "\"env\": \"https_proxy\""),
            // What common runtimes read at start (issue 27, finding 13).
            ("gridos/plugins/github/manifest.json", "\"env\": \"https_proxy\"", "\"env\": \"LUA_INIT\""),
            ("gridos/plugins/github/manifest.json", "\"env\": \"LUA_INIT\"", "\"env\": \"SSLKEYLOGFILE\""),
            ("gridos/plugins/github/manifest.json", "\"env\": \"SSLKEYLOGFILE\"", "\"env\": \"PIP_INDEX_URL\""),
            ("gridos/plugins/github/manifest.json", "\"env\": \"PIP_INDEX_URL\"", "\"env\": \"GOTOOLCHAIN\""),
            ("gridos/plugins/github/manifest.json", "\"env\": \"GOTOOLCHAIN\"", "\"env\": \"PHPRC\""),
            ("gridos/plugins/github/manifest.json", "\"env\": \"PHPRC\"", "\"env\": \"ZDOTDIR\""),
        ] {
            try deployment.scratch.edit(manifest, replacing: old, with: new)
            let result = try Secretc.run(["check"], in: deployment.root.path)
            #expect(result.status == 1)
            #expect(result.stdoutText.contains("plugins/github/manifest.json:"), "\(result.stdoutText)")
            #expect(result.stdoutText.contains("a secret may not set it [FORBIDDEN]"), "\(result.stdoutText)")
        }
    }

    /// A manifest's text cannot drive the terminal or forge an annotation:
    /// control and bidirectional characters are shown escaped in every format.
    @Test func controlCharactersInManifestsAreShownEscaped() throws {
        let deployment = try ExampleDeployment()
        try deployment.scratch.edit(
            "gridos/plugins/github/manifest.json", replacing: "\"env\": \"GITHUB_TOKEN\"",
            with: #""env": "X\u001b[2J\n::error file=evil::spoofed\u202e""#)
        for format in ["text", "github", "json"] {
            let result = try Secretc.run(["check", "--format", format], in: deployment.root.path)
            #expect(result.status == 1)
            let output = result.stdoutText + result.stderrText
            #expect(!output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x202E }, "\(format)")
            #expect(!output.split(separator: "\n").contains { $0.hasPrefix("::error file=evil") }, "\(format): \(output)")
            if format != "json" { #expect(output.contains("\\u{1b}[2J"), "\(format): \(output)") }
        }
        // A line separator in a quoted line, and bidirectional and C1
        // characters in status's JSON (issue 27, finding 13): escaped too.
        let hidden: [UInt32] = [0x2028, 0x2029, 0x202E, 0x2066, 0x0085]
        try deployment.scratch.edit(
            "gridos/plugins/github/manifest.json", replacing: "\"label\": \"GitHub App id\"",
            with: #""label": "App\u2028id\u2029\u202e\u2066\u0085""#)
        try deployment.scratch.edit(
            "gridos/plugins/github/manifest.json", replacing: #""env": "X\u001b[2J\n::error file=evil::spoofed\u202e""#,
            with: "\"env\": \"GITHUB_TOKEN\"")
        let ops = try deployment.home(["ops"])
        for environment in ["production", "staging"] {
            let compile = try deployment.secretc(["compile", "--env", environment], home: ops)
            #expect(compile.status == 0, "\(compile.stderrText)")
        }
        let status = try deployment.secretc(["status", "--format", "json"])
        #expect(status.status == 0 && status.stdoutText.contains("App\\u2028id"), "\(status.stdoutText)\(status.stderrText)")
        for arguments in [["check"], ["check", "--format", "json"], ["status", "--format", "json"], ["status"]] {
            let result = try Secretc.run(arguments, in: deployment.root.path)
            let output = result.stdoutText + result.stderrText
            #expect(!output.unicodeScalars.contains { hidden.contains($0.value) }, "\(arguments): \(output)")
        }
    }

    @Test func initIgnoresLocksAndTemporaryFiles() throws {
        let scratch = try TemporaryDirectory()
        let result = try Secretc.run(["init", "--directory", scratch.path, "--admin", "ops"], in: scratch.path)
        #expect(result.status == 0, "\(result.stderrText)")
        let ignore = try String(contentsOf: scratch.url.appendingPathComponent(".gitignore"), encoding: .utf8)
        #expect(ignore.contains("*.bundle.lock\n"))
        #expect(ignore.contains(".*.bundle.*.tmp\n"))
    }

    /// git's safe.directory: a secretc.yaml another user owns, found in a
    /// folder above, is not used; --config uses it on purpose.
    @Test func declarationsAboveOwnedByAnotherUserAreNotUsed() throws {
        guard geteuid() == 0 else { return }  // chown needs root (as CI runs)
        let deployment = try ExampleDeployment()
        let below = deployment.root.appendingPathComponent("service")
        try FileManager.default.createDirectory(at: below, withIntermediateDirectories: true)
        chown(deployment.config.path, 4242, 4242)
        let result = try Secretc.run(["check"], in: below.path)
        #expect(result.status == 1)
        #expect(result.stderrText.contains("is owned by another user (uid 4242)"), "\(result.stderrText)")
        #expect(result.stderrText.contains("pass --config"))
        #expect(try Secretc.run(["check", "--config", deployment.config.path], in: below.path).status == 0)
        // In its own folder it is the user's choice, as for a repository one clones.
        #expect(try Secretc.run(["check"], in: deployment.root.path).status == 0)
    }

    /// ssh's rule for ~/.ssh: a write cache folder others may write is not used.
    @Test func aWriteCacheOthersMayWriteIsNotUsed() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let shared = deployment.scratch.url.appendingPathComponent("shared-cache")
        try FileManager.default.createDirectory(at: shared, withIntermediateDirectories: true)
        chmod(shared.path, 0o777)
        let result = try deployment.secretc(
            ["set", "github", "--env", "production", "APP_ID=9"], home: ops, environment: ["SECRETC_CACHE_DIR": shared.path])
        #expect(result.status == 0, "\(result.stderrText)")
        #expect(result.stderrText.contains("warning: the write cache folder"), "\(result.stderrText)")
        #expect(result.stderrText.contains("may be written by other users"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: shared.path).isEmpty)
    }
}
