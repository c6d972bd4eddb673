import Foundation
import TestSupport
import Testing

@Suite("secretc check, end to end")
struct CheckCommandTests {
    /// The example as a clone has it, with the merge driver configured
    /// (without it, `check` warns: see `warnsWhenGitDoesNotKnowTheMergeDriver`).
    func exampleClone() throws -> (TemporaryDirectory, URL) {
        let scratch = try TemporaryDirectory()
        let root = try scratch.copy("examples/gridos")
        _ = try run("/usr/bin/env", ["git", "-C", root.path, "init", "-q"])
        let setUp = try Secretc.run(["init", "--git"], in: root.path)
        #expect(setUp.status == 0, "\(setUp.stderrText)")
        return (scratch, root)
    }

    @Test func passesOnTheExample() throws {
        let (scratch, root) = try exampleClone()
        let result = try Secretc.run(["check", "--config", "gridos/secretc.yaml"], in: scratch.path)
        #expect(result.status == 0)
        #expect(result.stdoutText == "quota: production 11 of 500, staging 11 of 100 slots\ncheck: ok (3 plugins, 4 users, 2 environments, 22 slots)\n")
        #expect(result.stderrText == "")
        withExtendedLifetime(root) {}
    }

    @Test func findsTheConfigUpwardFromTheWorkingDirectory() throws {
        let (scratch, root) = try exampleClone()
        defer { withExtendedLifetime(scratch) {} }
        let result = try Secretc.run(["check"], in: root.appendingPathComponent("plugins/stripe").path)
        #expect(result.status == 0)
        #expect(result.stdoutText.hasSuffix("check: ok (3 plugins, 4 users, 2 environments, 22 slots)\n"))
    }

    /// A clone whose .gitattributes names the driver git does not know:
    /// bundles would merge as text, so `check` says how to configure it.
    @Test func warnsWhenGitDoesNotKnowTheMergeDriver() throws {
        let (scratch, root) = try exampleClone()
        defer { withExtendedLifetime(scratch) {} }
        _ = try run("/usr/bin/env", ["git", "-C", root.path, "config", "--unset", "merge.secretc.driver"])
        let result = try Secretc.run(["check"], in: root.path)
        #expect(result.status == 0)
        #expect(result.stdoutText.hasPrefix(".gitattributes:1:1: warning: this names the merge driver 'secretc'"), "\(result.stdoutText)")
        #expect(result.stdoutText.contains("so bundles merge as text; run: secretc init --git"))
        #expect(!result.stdoutText.contains("textconv"), "the textconv is still configured")
        #expect(try Secretc.run(["check", "--strict"], in: root.path).status == 1)
        _ = try run("/usr/bin/env", ["git", "-C", root.path, "config", "--unset", "diff.secretc.textconv"])
        let both = try Secretc.run(["check"], in: root.path)
        #expect(both.stdoutText.contains(
            ".gitattributes:1:1: warning: this names the diff textconv 'secretc', which git does not know in this clone, "
                + "so `git diff` shows bundles as base64; run: secretc init --git"), "\(both.stdoutText)")
        // One command sets both up again, and keeps the attributes line as it is.
        let setUp = try Secretc.run(["init", "--git"], in: root.path)
        #expect(setUp.status == 0)
        #expect(!setUp.stdoutText.contains("updated .gitattributes"))
        #expect(try Secretc.run(["check", "--strict"], in: root.path).status == 0)
    }

    /// Three problems in three files: all reported, in file order, with lines and carets.
    @Test func reportsEveryProblemNotJustTheFirst() throws {
        let scratch = try TemporaryDirectory()
        _ = try scratch.copy("examples/gridos")
        try scratch.edit("gridos/secretc.yaml", replacing: "  - user: carol\n    plugin: shopify\n",
                         with: "  - user: karol\n    plugin: shopify\n")
        try scratch.edit("gridos/plugins/github/manifest.json", replacing: "\"env\": \"GITHUB_TOKEN\"",
                         with: "\"env\": \"GITHUB-TOKEN\"")
        try scratch.edit("gridos/secretc.yaml", replacing: "    quota: 100\n", with: "    quota: 100\n    qouta: 5\n")
        let result = try Secretc.run(["check"], in: scratch.url.appendingPathComponent("gridos").path)
        #expect(result.status == 1)
        #expect(result.stdoutText == """
            plugins/github/manifest.json:14:14: error: invalid environment variable name 'GITHUB-TOKEN': use letters, digits and '_', not starting with a digit, at most 128 [INVALID_INPUT]
                      "env": "GITHUB-TOKEN"
                             ^
            secretc.yaml:32:5: error: unknown field 'qouta' in environment 'staging'; did you mean 'quota'? [UNKNOWN_FIELD]
                    qouta: 5
                    ^
            secretc.yaml:54:11: error: slot names undeclared user 'karol'; did you mean 'carol'? [NOT_FOUND]
                  - user: karol
                          ^
            quota: production 8 of 500, staging 8 of 100 slots
            check: 3 errors

            """)
        #expect(result.stderrText == "")
    }

    @Test func jsonAndGithubFormats() throws {
        let scratch = try TemporaryDirectory()
        let project = try scratch.copy("examples/gridos")
        try scratch.edit("gridos/secretc.yaml", replacing: "admins: [ops]", with: "admins: [ops, opz]")
        let json = try Secretc.run(["check", "--format", "json"], in: project.path)
        #expect(json.status == 1)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [[String: Any]])
        #expect(list.count == 1)
        #expect(list[0]["file"] as? String == "secretc.yaml")
        #expect(list[0]["line"] as? Int == 11)
        #expect(list[0]["column"] as? Int == 15)
        #expect(list[0]["severity"] as? String == "error")
        #expect(list[0]["code"] as? String == "NOT_FOUND")
        #expect(list[0]["message"] as? String == "admin names undeclared key 'opz'; did you mean 'ops'?")

        let github = try Secretc.run(["check", "--format", "github"], in: project.path)
        #expect(github.status == 1)
        #expect(github.stdoutText == """
            ::error file=secretc.yaml,line=11,col=15,title=secretc NOT_FOUND::admin names undeclared key 'opz'; did you mean 'ops'?
            quota: production 11 of 500, staging 11 of 100 slots
            check: 1 error

            """)
    }

    @Test func strictTurnsWarningsIntoErrors() throws {
        let scratch = try TemporaryDirectory()
        let project = try scratch.copy("examples/gridos")
        try scratch.edit("gridos/secretc.yaml", replacing: "  carol: keys/carol.asc\n",
                         with: "  carol: keys/carol.asc\n  spare: keys/carol.asc\n")
        let lenient = try Secretc.run(["check"], in: project.path)
        #expect(lenient.status == 0)
        #expect(lenient.stdoutText.contains("warning: key 'spare' is not used"))
        let strict = try Secretc.run(["check", "--strict"], in: project.path)
        #expect(strict.status == 1)
        #expect(strict.stdoutText.contains("error: key 'spare' is not used"))
    }

    @Test func usageErrorsExitTwo() throws {
        let result = try Secretc.run(["check", "--format", "xml"], in: Secretc.packageRoot.path)
        #expect(result.status == 2)
        #expect(result.stderrText.hasPrefix("secretc: error: "))
        #expect(result.stderrText.contains("xml"))
        #expect(result.stdoutText == "")
        let unknown = try Secretc.run(["frobnicate"])
        #expect(unknown.status == 2)
    }

    @Test func helpAndVersionExitZero() throws {
        for arguments in [["--help"], ["check", "--help"], ["status", "--help"], ["init", "--help"], ["--version"]] {
            let result = try Secretc.run(arguments)
            #expect(result.status == 0, "\(arguments)")
            #expect(!result.stdoutText.isEmpty)
        }
    }

    @Test func noConfigAnywhere() throws {
        let scratch = try TemporaryDirectory()
        let result = try Secretc.run(["check"], in: scratch.path)
        #expect(result.status == 1)
        #expect(result.stdoutText == "")
        #expect(result.stderrText == """
            secretc: error: no secretc.yaml in this folder or any folder above it
            secretc: hint: run `secretc init` to create one, or pass --config PATH

            """)
        let missing = try Secretc.run(["check", "--config", "nope.yaml"], in: scratch.path)
        #expect(missing.status == 1)
        #expect(missing.stderrText == "secretc: error: config file 'nope.yaml' does not exist\n")
    }

    /// Hostile inputs end in a diagnostic and exit 1: never a signal or a stack trace.
    static let hostile: [(String, [UInt8])] = [
        ("binary", [UInt8](repeating: 0xFF, count: 64) + [0, 1, 2]),
        ("deep nesting", Array((String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)).utf8)),
        ("alias bomb", Array("""
            a: &a ["x","x","x","x","x","x","x","x"]
            b: &b [*a,*a,*a,*a,*a,*a,*a,*a]
            c: &c [*b,*b,*b,*b,*b,*b,*b,*b]
            d: &d [*c,*c,*c,*c,*c,*c,*c,*c]
            version: 1
            slots: [*d, *d, *d, *d]
            """.utf8)),
        ("huge number", Array("version: 99999999999999999999999999\n".utf8)),
        ("merge key", Array("version: 1\nbase: &b {x: 1}\nusers:\n  <<: *b\n".utf8)),
        ("only a comment", Array("# nothing\n".utf8)),
        ("BOM and CRLF", [0xEF, 0xBB, 0xBF] + Array("version: 1\r\nadmins: [ops]\r\n".utf8)),
    ]

    @Test(arguments: hostile)
    func hostileDeclarations(name: String, bytes: [UInt8]) throws {
        let scratch = try TemporaryDirectory()
        try Data(bytes).write(to: scratch.url.appendingPathComponent("secretc.yaml"))
        let result = try Secretc.run(["check"], in: scratch.path)
        #expect(result.status == 1, "\(name)")
        #expect(result.stdoutText.contains("secretc.yaml:"), "\(name): \(result.stdoutText)")
        #expect(!result.stderrText.contains("Fatal error"), "\(name)")
        #expect(!result.stderrText.contains("Stack dump"), "\(name)")
    }
}
