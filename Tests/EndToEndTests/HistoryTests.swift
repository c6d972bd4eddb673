import Foundation
import TestSupport
import Testing

/// The signed audit trail (`log`), readable diffs (`show` as git's textconv)
/// and the one command that sets a clone up (`init --git`), through real git.
@Suite("log, show and git diff end to end")
struct HistoryTests {
    private static let rotated = "github_pat_EXAMPLE_alice_rotated_0000"

    @discardableResult
    private func git(_ deployment: ExampleDeployment, _ arguments: [String], as author: String = "ci") throws -> ProcessResult {
        let result = try run(
            "/usr/bin/env", ["git", "-c", "user.name=\(author)", "-c", "user.email=\(author)@example.invalid"] + arguments,
            directory: deployment.root.path)
        #expect(result.status == 0, "git \(arguments): \(result.stderrText)")
        return result
    }

    /// The example committed in a clone set up with `init --git`, then alice's rotation (not committed).
    private func clone() throws -> ExampleDeployment {
        let deployment = try ExampleDeployment()
        try git(deployment, ["init", "-q", "-b", "main"])
        let setUp = try deployment.secretc(["init", "--git"])
        #expect(setUp.status == 0, "\(setUp.stderrText)")
        #expect(setUp.stdoutText.contains("git config diff.secretc.textconv"))
        try git(deployment, ["add", "-A"])
        try git(deployment, ["commit", "-qm", "the example"])
        let write = try deployment.secretc(
            ["set", "github", "--user", "alice", "--env", "production", "TOKEN=\(Self.rotated)"], home: try deployment.home(["alice"]))
        #expect(write.status == 0, "\(write.stderrText)")
        return deployment
    }

    @Test func gitDiffShowsSlotLevelLines() throws {
        let deployment = try clone()
        let diff = try git(deployment, ["diff", "secrets/production.bundle"]).stdoutText
        let removed = diff.split(separator: "\n").filter { $0.hasPrefix("-slot alice/github/TOKEN ") }
        let added = diff.split(separator: "\n").filter { $0.hasPrefix("+slot alice/github/TOKEN ") }
        #expect(removed.count == 1 && removed[0].contains(" set by alice "), "\(diff)")
        #expect(added.count == 1 && added[0].contains(" rotated by alice "), "\(diff)")
        #expect(diff.contains("\n+write "), "the new write batch is a line of its own")
        #expect(!diff.contains("epoch "), "no base64 bundle line")
        #expect(!diff.contains(Self.rotated))
        // Only the changed slot's line changes.
        #expect(diff.split(separator: "\n").filter { $0.hasPrefix("+slot ") || $0.hasPrefix("-slot ") }.count == 2)
    }

    @Test func logListsEveryWriteAndFollowsGitPastAReSeal() throws {
        let deployment = try clone()
        try git(deployment, ["commit", "-qam", "alice rotates her token"], as: "alice")
        let log = try deployment.secretc(["log", "--env", "production", "--user", "alice"])
        #expect(log.status == 0, "\(log.stderrText)")
        let first = log.stdoutText.split(separator: "\n").prefix(2).map(String.init)
        #expect(first.count == 2 && first[0].contains("  production  write ") && first[0].hasSuffix(" by alice"), "\(log.stdoutText)")
        #expect(first.last == "    rotated  alice/github/TOKEN")
        #expect(!log.stdoutText.contains("carol/"), "the filter leaves other users out")

        // A re-seal compacts the writes away; git still holds them.
        let both = try deployment.home(["ops", "runtime-production"])
        #expect(try deployment.secretc(["compile", "--env", "production", "--reseal"], home: both).status == 0)
        try git(deployment, ["commit", "-qam", "re-seal"], as: "ops")
        let compacted = try deployment.secretc(["log", "--env", "production", "--user", "alice"]).stdoutText
        #expect(!compacted.contains("rotated"), "\(compacted)")
        #expect(compacted.contains("re-seal ") && compacted.contains("    resealed alice/github/TOKEN"), "\(compacted)")
        let followed = try deployment.secretc(["log", "--env", "production", "--user", "alice", "--git"])
        #expect(followed.status == 0, "\(followed.stderrText)")
        #expect(followed.stdoutText.contains("    rotated  alice/github/TOKEN"), "\(followed.stdoutText)")
        #expect(followed.stdoutText.contains("alice <alice@example.invalid>"), "the commit that brought the write")

        let json = try deployment.secretc(["log", "--env", "production", "--plugin", "github", "--git", "--format", "json"])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout)) as? [[String: Any]])
        let rotation = try #require(entries.first { entry in
            (entry["changes"] as? [[String: Any]])?.contains { $0["action"] as? String == "rotated" } == true
        })
        #expect(rotation["signer"] as? String == "alice")
        #expect((rotation["commit"] as? [String: Any])?["author"] as? String == "alice <alice@example.invalid>")
        for output in [log.stdoutText, compacted, followed.stdoutText, json.stdoutText] {
            #expect(!output.contains(Self.rotated))
        }
    }

    @Test func showSaysWhenABundleDoesNotVerify() throws {
        let deployment = try ExampleDeployment()
        let file = deployment.root.appendingPathComponent("secrets/production.bundle")
        let good = try deployment.secretc(["show", file.path])
        #expect(good.stdoutText.contains("verified against its own admins"))
        var text = try deployment.bundle()
        let slot = try #require(text.range(of: "slot alice github TOKEN "))
        text.replaceSubrange(slot, with: "slot alice github TOKFN ")
        try text.write(to: file, atomically: true, encoding: .utf8)
        let bad = try deployment.secretc(["show", file.path])
        #expect(bad.status == 0)
        #expect(bad.stdoutText.contains("NOT VERIFIED: ") || bad.stdoutText.hasPrefix("NOT A READABLE SECRETC BUNDLE"), "\(bad.stdoutText)")
        // A forged write is never labelled as an admin's (issue 27, finding 13).
        var forged = try deployment.bundle()
        let signature = try #require(forged.range(of: " B10C30114A7A5CE22215A9196B7A4E014FFA39D1 1.")).upperBound
        let epochLine = forged[signature...].prefix { $0 != "\n" }
        let fields = epochLine.split(separator: " ")
        var altered = Array(fields[3])  // its signature, one base64 digit changed near the end
        altered[altered.count - 12] = altered[altered.count - 12] == "A" ? "B" : "A"
        forged = forged.replacingOccurrences(of: String(fields[3]), with: String(altered))
        try forged.write(to: file, atomically: true, encoding: .utf8)
        let shown = try deployment.secretc(["show", file.path])
        #expect(shown.stdoutText.contains("NOT VERIFIED: "), "\(shown.stdoutText)")
        #expect(shown.stdoutText.contains("by ops (claimed, not verified)"), "\(shown.stdoutText)")
        #expect(shown.stdoutText.components(separatedBy: "by ops").count
            == shown.stdoutText.components(separatedBy: "by ops (claimed, not verified)").count, "\(shown.stdoutText)")
    }
}
