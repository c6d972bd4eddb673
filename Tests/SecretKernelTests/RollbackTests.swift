import BundleFormat
import BundleSeal
import Foundation
import GPG
@testable import SecretKernel
import TestSupport
import Testing

/// Finding 5 at runtime: a loader refuses a bundle that does not extend the
/// one it trusts — on reload within a process, and across restarts through
/// the trusted-state file — on both verification paths.
@Suite("SecretKernel: rollback refused against trusted state")
struct RollbackTests {
    let fixture: KernelFixture
    let scratch: TemporaryDirectory
    let aliceToken = SlotKey(owner: "alice", plugin: "github", key: "TOKEN")

    init() throws {
        fixture = try KernelFixture()
        scratch = try TemporaryDirectory()
    }

    func configuration(_ bytes: [UInt8], inProcess: Bool, state: String? = nil) -> SecretKernel.Configuration {
        var configuration = fixture.configuration(.bytes(bytes))
        configuration.verifiesInProcess = inProcess
        configuration.trustedState = state
        return configuration
    }

    /// alice rotates her token; the old bundle (her write removed, the old
    /// ciphertext back) is refused by a reload, which keeps serving the new value.
    @Test(arguments: [true, false])
    func aReloadNeverGoesBack(inProcess: Bool) throws {
        let rotated = try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_0"], by: "alice")
        let kernel = try SecretKernel(configuration(rotated, inProcess: inProcess))
        #expect {
            try kernel.reload(bytes: fixture.bytes)
        } throws: { error in
            (error as? SecretKernelError)?.kind == .rollback && (error as? SecretKernelError)?.message.contains("by alice") == true
                && (error as? SecretKernelError)?.message.contains("is missing") == true
        }
        #expect(kernel.getSecret("github", "TOKEN", user: "alice") == "github_pat_EXAMPLE_alice_rotated_0")
        // A later write extends it.
        let later = try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_1"], onto: rotated, by: "alice")
        try kernel.reload(bytes: later)
        #expect(kernel.getSecret("github", "TOKEN", user: "alice") == "github_pat_EXAMPLE_alice_rotated_1")
    }

    /// A restarted service with a trusted-state file refuses the old
    /// bundle; an older policy (lower serial) is refused too.
    @Test(arguments: [true, false])
    func theStateFileCarriesTrustAcrossRestarts(inProcess: Bool) throws {
        let state = scratch.url.appendingPathComponent("production.state").path
        let resigned = try fixture.resigned { _ in }  // the next policy serial, same values
        let rotated = try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_0"], onto: resigned, by: "alice")
        _ = try SecretKernel(configuration(rotated, inProcess: inProcess, state: state))
        var status = stat()
        #expect(stat(state, &status) == 0 && status.st_mode & 0o777 == 0o600)
        let text = try String(contentsOfFile: state, encoding: .utf8)
        #expect(text.hasPrefix("secretc-state 1\nenvironment production\npolicy "))
        #expect(!text.contains("alice_rotated"))

        for older in [resigned, fixture.bytes] {
            #expect {
                try SecretKernel(configuration(older, inProcess: inProcess, state: state))
            } throws: { error in
                (error as? SecretKernelError)?.message.contains("not a later version of the trusted bundle") == true
            }
        }
        // The trusted bundle itself, and a later one, still load.
        _ = try SecretKernel(configuration(rotated, inProcess: inProcess, state: state))
        let later = try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_1"], onto: rotated, by: "alice")
        _ = try SecretKernel(configuration(later, inProcess: inProcess, state: state))
        #expect {
            try SecretKernel(configuration(rotated, inProcess: inProcess, state: state))
        } throws: { _ in true }
    }

    /// The state file is refused, not trusted or replaced, when it is a
    /// symbolic link, writable by others, or not a state file.
    @Test func aStateFileOthersCouldChangeIsRefused() throws {
        let good = scratch.url.appendingPathComponent("good.state").path
        _ = try SecretKernel(configuration(fixture.bytes, inProcess: true, state: good))
        let link = scratch.url.appendingPathComponent("link.state").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: good)
        let shared = scratch.url.appendingPathComponent("shared.state").path
        try FileManager.default.copyItem(atPath: good, toPath: shared)
        chmod(shared, 0o666)
        let garbage = scratch.url.appendingPathComponent("garbage.state").path
        try Data("secretc-state 1\nenvironment production\npolicy x\n".utf8).write(to: URL(fileURLWithPath: garbage))
        chmod(garbage, 0o600)
        for (path, reason) in [(link, "symbolic link"), (shared, "written by others"), (garbage, "line 3")] {
            #expect {
                try SecretKernel(configuration(fixture.bytes, inProcess: true, state: path))
            } throws: { error in
                (error as? SecretKernelError)?.kind == .misconfigured && (error as? SecretKernelError)?.message.contains(reason) == true
            }
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == good)
    }

    /// Two re-seals since the trusted state: the second names only the
    /// first, so a loader accepts the trusted epochs older than a checkpoint
    /// under a newer policy — and nothing written after it.
    @Test func twoResealsSinceTheStateAreJudgedByTime() throws {
        func entry(_ id: String, _ time: Int, serial: Int, _ parents: EpochParents) -> TrustedHistory.Entry {
            .init(id: id, digest: String(repeating: "a", count: 64), time: time, writer: "W", policySerial: serial, parents: parents)
        }
        let policy = PolicyReference(serial: 1, id: String(repeating: "b", count: 64))
        var trusted = try TrustedHistory(parsing: "secretc-state 1\nenvironment production\npolicy 1 \(policy.id)\n")
        trusted.epochs = [entry("e1", 10, serial: 1, .after([])), entry("e2", 20, serial: 1, .after(["e1"]))]
        var newer = trusted
        newer.policy = PolicyReference(serial: 3, id: String(repeating: "c", count: 64))
        newer.epochs = [entry("k2", 100, serial: 3, .subsumes(["k1"]))]
        #expect(throws: BundleSealError.self) { try trusted.checkExtended(by: newer) }
        try trusted.checkExtended(by: newer, resealedByTime: true)
        trusted.epochs.append(entry("e3", 200, serial: 1, .after(["e2"])))
        #expect(throws: BundleSealError.self) { try trusted.checkExtended(by: newer, resealedByTime: true) }
    }

    /// The state's text round-trips, and every malformed line is named.
    @Test func theStateTextRoundTrips() throws {
        let history = try #require(TrustedHistory(try SecretBundle(parsing: fixture.bytes)))
        #expect(try TrustedHistory(parsing: history.text) == history)
        var lines = history.text.split(separator: "\n").map(String.init)
        lines[3] = lines[3].replacingOccurrences(of: "after=", with: "before=")
        #expect(throws: BundleSealError.rollback("trusted state, line 4: expected 'epoch ID DIGEST TIME WRITER SERIAL PARENTS'")) {
            try TrustedHistory(parsing: lines.joined(separator: "\n"))
        }
    }
}
