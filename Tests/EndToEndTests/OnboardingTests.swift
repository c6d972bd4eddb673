import Foundation
import TestSupport
import Testing

/// Separation of duties: changing who and what is declared needs an admin's
/// signing key only; reading secrets is needed only to change who reads.
@Suite("onboarding without a secret reader")
struct OnboardingTests {
    /// Adds user erin and her GitHub TOKEN slot to the declarations.
    private func onboardErin(_ deployment: ExampleDeployment) throws {
        var text = try String(contentsOf: deployment.config, encoding: .utf8)
        text = text.replacingOccurrences(of: "  dave: {}\n", with: "  dave: {}\n  erin: {}\n")
        text += "\n  - user: erin\n    plugin: github\n    keys: [TOKEN]\n"
        try text.write(to: deployment.config, atomically: true, encoding: .utf8)
    }

    private func epochLines(_ bundle: String) -> [Substring] {
        bundle.split(separator: "\n").filter { $0.hasPrefix("epoch ") }
    }

    @Test func anAdminAddsAUserWithoutReadingAnySecret() throws {
        let deployment = try ExampleDeployment()
        let before = try deployment.bundle()
        try onboardErin(deployment)

        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("slot erin/github/TOKEN was declared"), "\(check.stdoutText)")
        #expect(check.stdoutText.contains("an admin re-signs the policy with `secretc compile --env production`"))
        let alice = try deployment.home(["alice"])
        let refused = try deployment.secretc(
            ["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN=a.myshopify.com"], home: alice)
        #expect(refused.status == 1)
        #expect(refused.stderrText.contains("re-signs the policy"), "\(refused.stderrText)")

        // ops holds no recipient key: it cannot read a single value.
        let ops = try deployment.home(["ops"])
        let compile = try deployment.secretc(["compile", "--env", "production"], home: ops)
        #expect(compile.status == 0, "\(compile.stderrText)")
        #expect(compile.stdoutText
            == "re-signed the policy of secrets/production.bundle, signed by ops: 9 values and every write kept as they are\n")
        #expect(!compile.stderrText.contains("re-sealing"))
        let after = try deployment.bundle()
        #expect(epochLines(after) == epochLines(before), "every write is kept, signature and all")
        let valueLines = { (text: String) in Set(text.split(separator: "\n").filter { $0.hasPrefix("slot ") && !$0.contains(" erin ") }) }
        #expect(valueLines(after) == valueLines(before), "every ciphertext is kept")
        #expect(try deployment.secretc(["compile", "--env", "staging"], home: ops).status == 0)
        let recheck = try deployment.secretc(["check"])
        #expect(recheck.status == 0, "\(recheck.stdoutText)")

        // The new slot is writable, old values still read, and a second compile has nothing to do.
        let set = try deployment.secretc(["set", "github", "--user", "erin", "--env", "production", "TOKEN=ghp_erinERINerinERINerinERINerinERINerin"], home: ops)
        #expect(set.status == 0, "\(set.stderrText)")
        #expect(try deployment.secretc(
            ["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN=a.myshopify.com"], home: alice).status == 0)
        let runtime = try deployment.home(["runtime-production"])
        let erin = try deployment.secretc(["get", "github", "TOKEN", "--user", "erin", "--env", "production"], home: runtime)
        #expect(erin.stdoutText == "ghp_erinERINerinERINerinERINerinERINerin", "\(erin.stderrText)")
        let appID = try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: runtime)
        #expect(appID.stdoutText == "123456", "\(appID.stderrText)")
        let again = try deployment.secretc(["compile", "--env", "production"], home: ops)
        #expect(again.stdoutText.contains("is up to date with the declarations"), "\(again.stdoutText)")
    }

    /// A change of recipients re-encrypts every data key: compile says so
    /// before it asks for a recipient's key, and without one writes nothing.
    @Test func aRecipientChangeSaysItNeedsAReSeal() throws {
        let deployment = try ExampleDeployment()
        let before = try deployment.bundle()
        var text = try String(contentsOf: deployment.config, encoding: .utf8)
        text = text.replacingOccurrences(
            of: "recipients: [runtime-production]", with: "recipients: [runtime-production, runtime-staging]")
        try text.write(to: deployment.config, atomically: true, encoding: .utf8)

        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains(
            "an admin re-seals it with `secretc compile --env production`, which needs a recipient's secret key: "
                + "recipients changed (added runtime-staging)"), "\(check.stdoutText)")
        let ops = try deployment.home(["ops"])
        let compile = try deployment.secretc(["compile", "--env", "production"], home: ops)
        #expect(compile.status == 1)
        #expect(compile.stderrText.contains(
            "re-sealing secrets/production.bundle: recipients changed (added runtime-staging); "
                + "this reads every value with a recipient's secret key"), "\(compile.stderrText)")
        #expect(try deployment.bundle() == before, "nothing written")

        let both = try deployment.home(["ops", "runtime-production"])
        let resealed = try deployment.secretc(["compile", "--env", "production"], home: both)
        #expect(resealed.status == 0, "\(resealed.stderrText)")
        #expect(resealed.stdoutText == "re-sealed secrets/production.bundle: 9 values, signed by ops\n")
        let staging = try deployment.home(["runtime-staging"])
        let get = try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: staging)
        #expect(get.stdoutText == "123456", "\(get.stderrText)")
    }

    /// A writer whose writes the bundle holds cannot change key by a re-sign:
    /// those writes would no longer verify.
    @Test func aWritersNewKeyNeedsAReSeal() throws {
        let deployment = try ExampleDeployment()
        var text = try String(contentsOf: deployment.config, encoding: .utf8)
        text = text.replacingOccurrences(of: "alice: { key: alice }", with: "alice: { key: carol }")
        try text.write(to: deployment.config, atomically: true, encoding: .utf8)
        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("writes signed by alice would no longer be authorized"), "\(check.stdoutText)")
    }

    /// Admins are appointed by admins: a key newly declared an admin cannot
    /// sign the policy that appoints it (readers would refuse it anyway).
    @Test func aNewAdminCannotSignItsOwnAppointment() throws {
        let deployment = try ExampleDeployment()
        let before = try deployment.bundle()
        var text = try String(contentsOf: deployment.config, encoding: .utf8)
        text = text.replacingOccurrences(of: "admins: [ops]", with: "admins: [ops, carol]")
        try text.write(to: deployment.config, atomically: true, encoding: .utf8)
        let carol = try deployment.home(["carol"])
        let refused = try deployment.secretc(["compile", "--env", "production", "--as", "carol"], home: carol)
        #expect(refused.status == 1)
        #expect(refused.stderrText.contains("'carol' is not an admin of secrets/production.bundle's current policy"), "\(refused.stderrText)")
        #expect(refused.stderrText.contains("sign with an admin of the current policy (ops)"))
        #expect(try deployment.bundle() == before)
        // ops appoints her; then her key signs.
        let ops = try deployment.home(["ops"])
        #expect(try deployment.secretc(["compile", "--env", "production"], home: ops).status == 0)
        let signed = try deployment.secretc(["compile", "--env", "production", "--as", "carol", "--reseal"],
                                            home: try deployment.home(["carol", "runtime-production"]))
        #expect(signed.status == 0, "\(signed.stderrText)")
    }

    /// A value no environment variable can hold is refused before anything is written.
    @Test func aValueWithANulByteIsRefused() throws {
        let deployment = try ExampleDeployment()
        let before = try deployment.bundle()
        let file = deployment.scratch.url.appendingPathComponent("nul.env")
        try Data("TOKEN=github_pat_EXAMPLE_nul_0000000000\u{0}tail\n".utf8).write(to: file)
        let ops = try deployment.home(["ops"])
        let result = try deployment.secretc(["set", "github", "--env", "production", "TOKEN=@\(file.path)"], home: ops)
        #expect(result.status == 1)
        #expect(result.stderrText.contains("holds a NUL byte"), "\(result.stderrText)")
        #expect(try deployment.bundle() == before)
    }
}
