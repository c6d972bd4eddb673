import BundleFormat
import BundleSeal
import Foundation
import GPG
import TestSupport
import Testing

/// Finding 5 in review and at the edge: `check --base REV` against real git
/// history, and `exec --state PATH` across runs.
@Suite("check --base and exec --state end to end")
struct RollbackCommandTests {
    /// git in the deployment's folder, as its own committer.
    func git(_ deployment: ExampleDeployment, _ arguments: [String]) throws -> ProcessResult {
        let result = try run(
            "/usr/bin/env", ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.invalid"] + arguments,
            directory: deployment.root.path)
        #expect(result.status == 0, "git \(arguments): \(result.stderrText)")
        return result
    }

    /// A repository whose `main` holds alice's rotated value, after the example as committed.
    func repositoryWithARotation() throws -> ExampleDeployment {
        let deployment = try ExampleDeployment()
        _ = try git(deployment, ["init", "-q", "-b", "main"])
        _ = try git(deployment, ["add", "-A"])
        _ = try git(deployment, ["commit", "-qm", "the example"])
        let alice = try deployment.home(["alice"])
        let write = try deployment.secretc(
            ["set", "github", "--user", "alice", "--env", "production", "TOKEN=github_pat_EXAMPLE_alice_rotated_0000"],
            home: alice)
        #expect(write.status == 0, "\(write.stderrText)")
        _ = try git(deployment, ["commit", "-qam", "alice rotates her token"])
        return deployment
    }

    @Test func aPullRequestThatRollsBackAValueFailsCheck() throws {
        let deployment = try repositoryWithARotation()
        _ = try git(deployment, ["checkout", "-q", "-b", "pr"])
        // The pull request restores the bundle as it was before the rotation.
        let old = try git(deployment, ["show", "main~1:secrets/production.bundle"]).stdout
        try Data(old).write(to: deployment.root.appendingPathComponent("secrets/production.bundle"))
        _ = try git(deployment, ["commit", "-qam", "innocent-looking change"])

        let plain = try deployment.secretc(["check"])
        #expect(plain.status == 0, "one bundle alone cannot tell: \(plain.stdoutText)")
        let check = try deployment.secretc(["check", "--base", "main"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("secrets/production.bundle:"), "\(check.stdoutText)")
        #expect(check.stdoutText.contains("does not extend its version at main: the write"))
        #expect(check.stdoutText.contains("by alice at "))
        #expect(check.stdoutText.contains("[ROLLBACK]"))
        #expect(!check.stdoutText.contains("rotated"))
        let github = try deployment.secretc(["check", "--base", "main", "--format", "github"])
        #expect(github.stdoutText.contains("::error file=secrets/production.bundle,line="), "\(github.stdoutText)")
    }

    /// The GitHub Action's check step (scripts/action/check, which action.yml
    /// runs) on a pull request that rolls a value back, and on a push.
    @Test func theGitHubActionFailsAPullRequestThatRollsBack() throws {
        let deployment = try repositoryWithARotation()
        let origin = deployment.scratch.url.appendingPathComponent("origin.git").path
        _ = try git(deployment, ["clone", "-q", "--bare", deployment.root.path, origin])
        _ = try git(deployment, ["remote", "add", "origin", origin])
        let home = deployment.scratch.url.appendingPathComponent("runner-home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        func action(_ extra: [String: String]) throws -> ProcessResult {
            let bin = URL(fileURLWithPath: Secretc.executable).deletingLastPathComponent().path
            let environment = [
                "PATH": bin + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"), "HOME": home.path,
                "GITHUB_WORKSPACE": deployment.root.path, "INPUT_CONFIG": "secretc.yaml", "SECRETC_CACHE_DIR": "",
            ].merging(extra) { _, given in given }
            return try run(Secretc.packageRoot.appendingPathComponent("scripts/action/check").path, [],
                           environment: environment, directory: deployment.root.path)
        }
        let push = try action([:])
        #expect(push.status == 0, "\(push.stdoutText)\(push.stderrText)")
        #expect(push.stderrText.contains("secretc check --config secretc.yaml --format github\n"), "no --base on a push")
        #expect(!push.stdoutText.contains("::warning"), "the clone knows the merge driver and textconv: \(push.stdoutText)")

        _ = try git(deployment, ["checkout", "-q", "-b", "pr"])
        let old = try git(deployment, ["show", "main~1:secrets/production.bundle"]).stdout
        try Data(old).write(to: deployment.root.appendingPathComponent("secrets/production.bundle"))
        _ = try git(deployment, ["commit", "-qam", "innocent-looking change"])
        let pullRequest = try action(["GITHUB_BASE_REF": "main"])
        #expect(pullRequest.status == 1)
        #expect(pullRequest.stderrText.contains("--base refs/remotes/origin/main"), "\(pullRequest.stderrText)")
        #expect(pullRequest.stdoutText.contains("::error file=secrets/production.bundle,line="), "\(pullRequest.stdoutText)")
        #expect(pullRequest.stdoutText.contains("ROLLBACK"))
        #expect(try action(["GITHUB_BASE_REF": "main", "INPUT_STRICT": "true"]).status == 1)
    }

    @Test func laterWritesAndARecompileExtendTheBase() throws {
        let deployment = try repositoryWithARotation()
        _ = try git(deployment, ["checkout", "-q", "-b", "pr"])
        let alice = try deployment.home(["alice"])
        #expect(try deployment.secretc(
            ["set", "github", "--user", "alice", "--env", "production", "TOKEN=github_pat_EXAMPLE_alice_rotated_1111"],
            home: alice).status == 0)
        #expect(try deployment.secretc(["check", "--base", "main"]).status == 0)
        // An admin's re-seal drops every epoch into one checkpoint that names them.
        let compile = try deployment.secretc(
            ["compile", "--env", "production", "--as", "ops", "--reseal"], home: try deployment.home(["ops", "runtime-production"]))
        #expect(compile.status == 0, "\(compile.stderrText)")
        let check = try deployment.secretc(["check", "--base", "main"])
        #expect(check.status == 0, "\(check.stdoutText)")
        // A new environment's bundle (absent at the base) has nothing to extend.
        #expect(try deployment.secretc(["check", "--base", "main~1"]).status == 0)
    }

    /// Two re-seals in one pull request: the second no longer names what
    /// the first re-sealed; the versions committed in between do.
    @Test func aChainOfRecompilesIsFollowedThroughTheCommitsInBetween() throws {
        let deployment = try repositoryWithARotation()
        _ = try git(deployment, ["checkout", "-q", "-b", "pr"])
        let admin = try deployment.home(["ops", "runtime-production"])
        for round in 0..<2 {
            #expect(try deployment.secretc(["compile", "--env", "production", "--as", "ops", "--reseal"], home: admin).status == 0)
            _ = try git(deployment, ["commit", "-qam", "re-seal \(round)"])
        }
        let check = try deployment.secretc(["check", "--base", "main"])
        #expect(check.status == 0, "\(check.stdoutText)")
    }

    /// A re-seal made on a branch that never saw alice's rotation on main
    /// would drop it on merge: the checkpoint does not name her write.
    @Test func aRecompileOfAStaleBranchIsARollback() throws {
        let deployment = try repositoryWithARotation()
        _ = try git(deployment, ["checkout", "-q", "-b", "stale", "main~1"])
        let compile = try deployment.secretc(
            ["compile", "--env", "production", "--as", "ops", "--reseal"], home: try deployment.home(["ops", "runtime-production"]))
        #expect(compile.status == 0, "\(compile.stderrText)")
        _ = try git(deployment, ["commit", "-qam", "re-seal"])
        let check = try deployment.secretc(["check", "--base", "main"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("by alice at "), "\(check.stdoutText)")
        #expect(check.stdoutText.contains("[ROLLBACK]"))
    }

    func commit(_ deployment: ExampleDeployment, _ bytes: [UInt8], _ message: String) throws {
        try Data(bytes).write(to: deployment.root.appendingPathComponent("secrets/production.bundle"))
        _ = try git(deployment, ["commit", "-qam", message])
    }

    /// A commit in between is a witness only when it verifies: an unsigned
    /// epoch line claiming to build on alice's write (under an id the
    /// base's checkpoint names) does not make her write's removal a re-seal.
    @Test func anUnsignedVersionInBetweenIsNoWitness() throws {
        let deployment = try repositoryWithARotation()
        // main: a re-seal, then alice rotates again.
        let admin = try deployment.home(["ops", "runtime-production"])
        #expect(try deployment.secretc(["compile", "--env", "production", "--as", "ops", "--reseal"], home: admin).status == 0)
        _ = try git(deployment, ["commit", "-qam", "re-seal"])
        #expect(try deployment.secretc(
            ["set", "github", "--user", "alice", "--env", "production", "TOKEN=github_pat_EXAMPLE_alice_rotated_2222"],
            home: try deployment.home(["alice"])).status == 0)
        _ = try git(deployment, ["commit", "-qam", "alice rotates again"])
        _ = try git(deployment, ["checkout", "-q", "-b", "pr"])
        var forged = try SecretBundle(parsing: Array(try Data(contentsOf: deployment.root.appendingPathComponent("secrets/production.bundle"))))
        let checkpoint = try #require(forged.epochs.first { $0.parents.isCheckpoint })
        var fake = forged.epochs.last!
        fake.time += 1
        fake.id = try #require(checkpoint.parents.ids.first)
        fake.parents = .after([forged.epochs.last!.id])
        forged.epochs.append(fake)
        try commit(deployment, forged.serialized(), "a fake link")
        // The rollback: the re-sealed bundle, before alice's second rotation.
        try commit(deployment, try git(deployment, ["show", "main~1:secrets/production.bundle"]).stdout, "the rollback")
        let check = try deployment.secretc(["check", "--base", "main"])
        #expect(check.status == 1, "\(check.stdoutText)")
        #expect(check.stdoutText.contains("[ROLLBACK]"))
    }

    /// Nor does a version in between whose policy names a new admin without
    /// a valid signature: the new admin's own policy does not extend the base.
    @Test func anUnsignedAdminInBetweenIsNoWitness() throws {
        let deployment = try repositoryWithARotation()
        _ = try git(deployment, ["checkout", "-q", "-b", "pr"])
        var bundle = try SecretBundle(parsing: Array(try Data(contentsOf: deployment.root.appendingPathComponent("secrets/production.bundle"))))
        let alice = bundle.users["alice"]!
        bundle.admins = (bundle.admins + [alice]).sorted()
        bundle.policySerial += 1
        try String(contentsOf: deployment.config, encoding: .utf8).replacingOccurrences(of: "admins: [ops]", with: "admins: [ops, alice]")
            .write(to: deployment.config, atomically: true, encoding: .utf8)
        try commit(deployment, bundle.serialized(), "alice is an admin (the old signature)")
        let home = try deployment.home(["alice"])
        try PolicySigner.signAnew(&bundle, as: alice, with: try Context(home: home.path))
        try commit(deployment, bundle.serialized(), "alice signs")
        let check = try deployment.secretc(["check", "--base", "main"])
        #expect(check.status == 1, "\(check.stdoutText)")
        #expect(check.stdoutText.contains("who is not an admin of the trusted policy"), "\(check.stdoutText)")
    }

    /// A write dated ahead (a writer's clock, or a forged one) is an error in
    /// CI; it blocks no later write, which takes its time (inherited from its
    /// parent, ordered by the chain) and is served; an admin's re-seal dates
    /// the history by the clock again.
    @Test func aWriteDatedAheadIsCaughtAndRepairedByARecompile() throws {
        let deployment = try ExampleDeployment()
        let ahead = Date().addingTimeInterval(7_200)
        // Signed by a clock two hours ahead, as `gpg --faked-system-time` does.
        try deployment.handWrite(
            "github_pat_EXAMPLE_alice_ahead_00000", to: SlotKey(owner: "alice", plugin: "github", key: "TOKEN"), by: "alice",
            now: ahead,
            sign: { home, payload, writer in
                let payloadFile = deployment.scratch.url.appendingPathComponent("payload")
                try Data(payload).write(to: payloadFile)
                return try home.gpg([
                    "--batch", "--faked-system-time", "\(Int(ahead.timeIntervalSince1970))!", "--local-user", writer,
                    "--detach-sign", "--output", "-", payloadFile.path,
                ])
            })

        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("by alice is dated"), "\(check.stdoutText)")
        let write = try deployment.secretc(
            ["set", "shopify", "--user", "carol", "--env", "production", "STORE_DOMAIN=carol-new.myshopify.com"],
            home: try deployment.home(["carol"]))
        #expect(write.status == 0, "\(write.stderrText)")
        // Only the write that ran ahead is reported, not carol's after it.
        let again = try deployment.secretc(["check"])
        #expect(again.status == 1)
        #expect(again.stdoutText.contains("by alice is dated"), "\(again.stdoutText)")
        #expect(!again.stdoutText.contains("by carol is dated"), "\(again.stdoutText)")
        let served = try deployment.secretc(
            ["get", "shopify", "STORE_DOMAIN", "--user", "carol", "--env", "production"],
            home: try deployment.home(["runtime-production"]))
        #expect(served.stdoutText.contains("carol-new.myshopify.com"), "\(served.stderrText)")
        let compile = try deployment.secretc(
            ["compile", "--env", "production", "--as", "ops", "--reseal"], home: try deployment.home(["ops", "runtime-production"]))
        #expect(compile.status == 0, "\(compile.stderrText)")
        #expect(try deployment.secretc(["check"]).status == 0)
    }

    /// Bundles are found by environment at the base, not by path: a moved
    /// bundle is compared, a deleted one is an error while its environment
    /// is declared, and one whose environment was dropped is still compared.
    @Test func movedDeletedOrUndeclaredBundlesAreStillCompared() throws {
        let deployment = try repositoryWithARotation()
        _ = try git(deployment, ["checkout", "-q", "-b", "pr"])
        let old = try git(deployment, ["show", "main~1:secrets/production.bundle"]).stdout
        let config = try String(contentsOf: deployment.config, encoding: .utf8)
        func expectRollback(_ what: String) throws {
            let check = try deployment.secretc(["check", "--base", "main"])
            #expect(check.status == 1, "\(what): \(check.stdoutText)")
            #expect(check.stdoutText.contains("[ROLLBACK]"), "\(what): \(check.stdoutText)")
        }
        // Moved, with the old content.
        _ = try git(deployment, ["mv", "secrets/production.bundle", "secrets/prod.bundle"])
        try Data(old).write(to: deployment.root.appendingPathComponent("secrets/prod.bundle"))
        try config.replacingOccurrences(of: "bundle: secrets/production.bundle", with: "bundle: secrets/prod.bundle")
            .write(to: deployment.config, atomically: true, encoding: .utf8)
        try expectRollback("moved")
        // Deleted while declared.
        try FileManager.default.removeItem(at: deployment.root.appendingPathComponent("secrets/prod.bundle"))
        try expectRollback("deleted")
        // The environment dropped from the declarations, its old bundle back in place.
        try Data(old).write(to: deployment.root.appendingPathComponent("secrets/production.bundle"))
        var dropped = config.components(separatedBy: "\n")
        let start = try #require(dropped.firstIndex(of: "  production:"))
        dropped.removeSubrange(start...(start + 3))
        try dropped.joined(separator: "\n").replacingOccurrences(of: "environments: [production]", with: "environments: [staging]")
            .write(to: deployment.config, atomically: true, encoding: .utf8)
        try expectRollback("undeclared")
    }

    /// Two pull requests, each passing against its own base: the first
    /// drops the production environment and its bundle, the second declares
    /// it again with the bundle from before alice's write. A bundle the base
    /// lacks must extend its last committed version.
    @Test func anEnvironmentDroppedAndPutBackWithAnOldBundleIsARollback() throws {
        let deployment = try repositoryWithARotation()
        let old = try git(deployment, ["show", "main~1:secrets/production.bundle"]).stdout
        let config = try String(contentsOf: deployment.config, encoding: .utf8)
        _ = try git(deployment, ["checkout", "-q", "-b", "drop"])
        var dropped = config.components(separatedBy: "\n")
        let start = try #require(dropped.firstIndex(of: "  production:"))
        dropped.removeSubrange(start...(start + 3))
        try dropped.joined(separator: "\n").replacingOccurrences(of: "environments: [production]", with: "environments: [staging]")
            .write(to: deployment.config, atomically: true, encoding: .utf8)
        _ = try git(deployment, ["rm", "-q", "secrets/production.bundle"])
        _ = try git(deployment, ["commit", "-qam", "decommission production"])
        let first = try deployment.secretc(["check", "--base", "main"])
        #expect(!first.stdoutText.contains("[ROLLBACK]"), "dropping an environment is no rollback: \(first.stdoutText)")

        _ = try git(deployment, ["checkout", "-q", "-b", "back"])
        try config.write(to: deployment.config, atomically: true, encoding: .utf8)
        try Data(old).write(to: deployment.root.appendingPathComponent("secrets/production.bundle"))
        _ = try git(deployment, ["add", "-A"])
        _ = try git(deployment, ["commit", "-qm", "production is back"])
        let second = try deployment.secretc(["check", "--base", "drop"])
        #expect(second.status == 1, "\(second.stdoutText)")
        #expect(second.stdoutText.contains("does not extend its last committed version"), "\(second.stdoutText)")
        #expect(second.stdoutText.contains("[ROLLBACK]"), "\(second.stdoutText)")
        // The bundle as it was when dropped extends it.
        _ = try git(deployment, ["checkout", "-q", "main", "--", "secrets/production.bundle"])
        let current = try deployment.secretc(["check", "--base", "drop"])
        #expect(!current.stdoutText.contains("[ROLLBACK]"), "\(current.stdoutText)")
    }

    @Test func anUnknownBaseNamesTheFetchAShallowCloneNeeds() throws {
        let deployment = try repositoryWithARotation()
        let check = try deployment.secretc(["check", "--base", "origin/main"])
        #expect(check.status == 1)
        #expect(check.stderrText.contains("base revision 'origin/main' is not a commit"))
        #expect(check.stderrText.contains("git fetch --no-tags --depth=1 origin"))
        let option = try deployment.secretc(["check", "--base", "--output=x"])
        #expect(option.status != 0)
        #expect(!FileManager.default.fileExists(atPath: deployment.root.appendingPathComponent("x").path))
    }

    @Test func execWithStateRefusesAnOlderBundle() throws {
        let deployment = try repositoryWithARotation()
        let runtime = try deployment.home(["runtime-production"])
        let state = deployment.scratch.url.appendingPathComponent("production.state").path
        let first = try deployment.secretc(["exec", "--env", "production", "--state", state, "--", "/bin/true"], home: runtime)
        #expect(first.status == 0, "\(first.stderrText)")
        _ = try git(deployment, ["checkout", "-q", "main~1", "--", "secrets/production.bundle"])
        let marker = deployment.scratch.url.appendingPathComponent("ran").path
        let second = try deployment.secretc(
            ["exec", "--env", "production", "--state", state, "--", "/usr/bin/touch", marker], home: runtime)
        #expect(second.status == 1)
        #expect(second.stderrText.contains("not a later version of the trusted bundle"), "\(second.stderrText)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        // Without the state, one bundle alone cannot tell.
        #expect(try deployment.secretc(["exec", "--env", "production", "--", "/bin/true"], home: runtime).status == 0)
        // An admin's re-seal of the trusted bundle, with a later write, extends it.
        _ = try git(deployment, ["checkout", "-q", "main", "--", "secrets/production.bundle"])
        let admin = try deployment.home(["ops", "runtime-production"])
        #expect(try deployment.secretc(["compile", "--env", "production", "--as", "ops", "--reseal"], home: admin).status == 0)
        #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=42"], home: admin).status == 0)
        let resealed = try deployment.secretc(["exec", "--env", "production", "--state", state, "--", "/bin/true"], home: runtime)
        #expect(resealed.status == 0, "\(resealed.stderrText)")
    }
}
