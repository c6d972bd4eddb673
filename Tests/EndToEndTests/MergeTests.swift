import Foundation
import TestSupport
import Testing

@Suite("merging bundles with git")
struct MergeTests {
    func git(_ arguments: [String], in directory: URL) throws -> ProcessResult {
        try run("/usr/bin/env", ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"] + arguments,
                environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin", "HOME": directory.path],
                directory: directory.path)
    }

    /// Two branches write different slots; with the driver, git merges them and the result verifies.
    @Test func writesToDifferentSlotsMerge() throws {
        let deployment = try ExampleDeployment()
        let root = deployment.root
        let ops = try deployment.home(["ops", "runtime-production"])
        _ = try git(["init", "-q", "-b", "main"], in: root)
        #expect(try deployment.secretc(["init", "--git"]).status == 0)  // the merge driver and the textconv
        _ = try git(["add", "-A"], in: root)
        _ = try git(["commit", "-qm", "base"], in: root)

        _ = try git(["checkout", "-qb", "one"], in: root)
        #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=111"], home: ops).status == 0)
        _ = try git(["commit", "-qam", "one"], in: root)
        _ = try git(["checkout", "-q", "main"], in: root)
        _ = try git(["checkout", "-qb", "two"], in: root)
        #expect(try deployment.secretc(
            ["set", "github", "--user", "dave", "--env", "production", "TOKEN=github_pat_merged_dave_00000000000"], home: ops).status == 0)
        _ = try git(["commit", "-qam", "two"], in: root)

        let merge = try git(["merge", "-q", "--no-edit", "one"], in: root)
        #expect(merge.status == 0, "\(merge.stdoutText)\(merge.stderrText)")
        #expect(try deployment.secretc(["check"]).status == 0)
        #expect(try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: ops).stdoutText == "111")
        #expect(try deployment.secretc(["get", "github", "TOKEN", "--user", "dave", "--env", "production"], home: ops)
            .stdoutText == "github_pat_merged_dave_00000000000")
    }

    @Test func writesToTheSameSlotConflict() throws {
        let deployment = try ExampleDeployment()
        let root = deployment.root
        let ops = try deployment.home(["ops"])
        _ = try git(["init", "-q", "-b", "main"], in: root)
        #expect(try deployment.secretc(["init", "--git"]).status == 0)  // the merge driver and the textconv
        _ = try git(["add", "-A"], in: root)
        _ = try git(["commit", "-qm", "base"], in: root)
        _ = try git(["checkout", "-qb", "one"], in: root)
        _ = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=111"], home: ops)
        _ = try git(["commit", "-qam", "one"], in: root)
        _ = try git(["checkout", "-q", "main"], in: root)
        _ = try deployment.secretc(["set", "github", "--env", "production", "APP_ID=222"], home: ops)
        _ = try git(["commit", "-qam", "main"], in: root)
        let merge = try git(["merge", "-q", "--no-edit", "one"], in: root)
        #expect(merge.status != 0)
        #expect(merge.stderrText.contains("both sides wrote slot -/github/APP_ID"))
        // The file holds both sides between markers: check names both writes
        // and the resolution, and refuses until one side is taken.
        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.hasPrefix("secrets/production.bundle:1:1: error: the bundle has an unresolved merge conflict"),
                "\(check.stdoutText)")
        #expect(check.stdoutText.contains("ours: epoch ") && check.stdoutText.contains("theirs: epoch "))
        #expect(check.stdoutText.contains("git checkout --ours secrets/production.bundle"))
        // Resolved as check says: ours taken, theirs redone.
        _ = try git(["checkout", "--ours", "secrets/production.bundle"], in: root)
        #expect(try deployment.secretc(["check"]).status == 0)
        #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=111"], home: ops).status == 0)
        _ = try git(["commit", "-qam", "merged: theirs redone"], in: root)
        #expect(try deployment.secretc(["check"]).status == 0)
    }

    /// Issue 27, finding 5: one branch puts the bundle back to before
    /// alice's write, the other is an admin's re-sign (onboarding). The
    /// driver took the side that dropped epochs because the other added
    /// none; now the merge must extend both sides and the ancestor, so it
    /// is a conflict that names alice's write.
    @Test func aRollbackIsNeverMergedSilently() throws {
        let deployment = try ExampleDeployment()
        let root = deployment.root
        let (ops, alice) = (try deployment.home(["ops"]), try deployment.home(["alice"]))
        _ = try git(["init", "-q", "-b", "main"], in: root)
        #expect(try deployment.secretc(["init", "--git"]).status == 0)
        _ = try git(["add", "-A"], in: root)
        _ = try git(["commit", "-qm", "base"], in: root)
        #expect(try deployment.secretc(
            ["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN=alice-rotated.myshopify.com"],
            home: alice).status == 0)
        _ = try git(["commit", "-qam", "alice rotates"], in: root)

        _ = try git(["checkout", "-qb", "onboard"], in: root)
        var text = try String(contentsOf: deployment.config, encoding: .utf8)
        text = text.replacingOccurrences(of: "  dave: {}\n", with: "  dave: {}\n  erin: {}\n")
        text += "\n  - user: erin\n    plugin: github\n    keys: [TOKEN]\n"
        try text.write(to: deployment.config, atomically: true, encoding: .utf8)
        #expect(try deployment.secretc(["compile", "--env", "production"], home: ops).status == 0)
        _ = try git(["commit", "-qam", "onboard erin"], in: root)
        _ = try git(["checkout", "-q", "main"], in: root)
        _ = try git(["checkout", "-qb", "rollback"], in: root)
        _ = try git(["checkout", "HEAD~1", "--", "secrets/production.bundle"], in: root)
        _ = try git(["commit", "-qam", "an innocent-looking change"], in: root)

        let merge = try git(["merge", "-q", "--no-edit", "onboard"], in: root)
        #expect(merge.status != 0)
        #expect(merge.stderrText.contains("the merge does not extend the common ancestor") && merge.stderrText.contains("by alice"),
                "\(merge.stderrText)")
        #expect(try deployment.secretc(["check"]).status == 1)
        // Merged the other way round, the same.
        _ = try git(["merge", "--abort"], in: root)
        _ = try git(["checkout", "-q", "onboard"], in: root)
        #expect(try git(["merge", "-q", "--no-edit", "rollback"], in: root).status != 0)
    }
}
