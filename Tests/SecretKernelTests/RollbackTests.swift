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
        #expect(kernel.getSecret(plugin: "github", key: "TOKEN", for: .user("alice")) == "github_pat_EXAMPLE_alice_rotated_0")
        // A later write extends it.
        let later = try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_1"], onto: rotated, by: "alice")
        try kernel.reload(bytes: later)
        #expect(kernel.getSecret(plugin: "github", key: "TOKEN", for: .user("alice")) == "github_pat_EXAMPLE_alice_rotated_1")
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
        try Data("secretc-state 1\nenvironment production\npolicy x\nadmins \n".utf8).write(to: URL(fileURLWithPath: garbage))
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
        let admin = KernelFixture.admin
        var trusted = try TrustedHistory(
            parsing: "secretc-state 1\nenvironment production\npolicy 1 \(policy.id) \(admin)\nadmins \(admin)\n")
        trusted.epochs = [entry("e1", 10, serial: 1, .after([])), entry("e2", 20, serial: 1, .after(["e1"]))]
        var newer = trusted
        newer.policy = PolicyReference(serial: 3, id: String(repeating: "c", count: 64))
        newer.epochs = [entry("k2", 100, serial: 3, .subsumes(["k1"]))]
        #expect(throws: BundleSealError.self) { try trusted.checkExtended(by: newer) }
        try trusted.checkExtended(by: newer, resealedByTime: true)
        trusted.epochs.append(entry("e3", 200, serial: 1, .after(["e2"])))
        #expect(throws: BundleSealError.self) { try trusted.checkExtended(by: newer, resealedByTime: true) }
    }

    /// The policy `signer` signs, with `change` applied and the next serial;
    /// with `reseal`, every value re-sealed into `signer`'s checkpoint, as
    /// `compile` does (removing an admin drops its writes this way).
    func policy(
        _ base: [UInt8], signedBy signer: String, reseal: Bool = false, _ change: (inout SecretBundle) -> Void
    ) throws -> [UInt8] {
        var bundle = try SecretBundle(parsing: base)
        change(&bundle)
        let home = try TemporaryGPGHome()
        defer { home.close() }
        try home.gpg(["--import", KernelFixture.secretKey(signer).path])
        try home.gpg(["--import", KernelFixture.example.appendingPathComponent("keys/runtime-production.asc").path])
        let context = try Context(home: home.path)
        let fingerprint = signer == "ops" ? KernelFixture.admin : bundle.users[signer]!
        try PolicySigner.signAnew(&bundle, as: fingerprint, with: context)
        guard reseal else { return bundle.serialized() }
        let values = KernelFixture.values.map { entry -> EpochSealer.Change in
            let parts = entry.key.split(separator: "/").map(String.init)
            return .init(
                slot: SlotKey(owner: parts[0] == "-" ? nil : parts[0], plugin: parts[1], key: parts[2]),
                value: SecureBytes(entry.value))
        }.sorted { $0.slot < $1.slot }
        let (epoch, sealed) = try EpochSealer(
            environment: bundle.environment, writer: fingerprint, recipients: bundle.recipients,
            policy: bundle.policyReference!, parents: .subsumes(bundle.epochs.map(\.id).sorted())
        ).seal(values, after: bundle.epochs, encryptor: context, signer: context)
        bundle.epochs = [epoch]
        for index in bundle.slots.indices {
            bundle.slots[index].value = sealed[bundle.slots[index].slot] ?? nil
        }
        return bundle.serialized()
    }

    /// Admin rotation (TUF's root chain): ops adds alice as an admin, alice
    /// removes ops. A reader pinned to ops follows that chain by reloads,
    /// and across a restart through its state; a policy ops signs after its
    /// removal is refused though ops is still pinned; a fresh reader pinned
    /// to ops alone does not trust alice's policy.
    @Test(arguments: [true, false])
    func readersFollowAnAdminRotation(inProcess: Bool) throws {
        let state = scratch.url.appendingPathComponent("rotation.state").path
        let alice = try SecretBundle(parsing: fixture.bytes).users["alice"]!
        let added = try policy(fixture.bytes, signedBy: "ops") { $0.admins = ($0.admins + [alice]).sorted() }
        let rotated = try policy(added, signedBy: "alice", reseal: true) { $0.admins = [alice] }
        let reclaimed = try policy(rotated, signedBy: "ops") { $0.admins = [KernelFixture.admin, alice].sorted() }

        let kernel = try SecretKernel(configuration(fixture.bytes, inProcess: inProcess, state: state))
        try kernel.reload(bytes: added)
        try kernel.reload(bytes: rotated)
        #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "123456")
        #expect {
            try kernel.reload(bytes: reclaimed)
        } throws: { error in
            (error as? SecretKernelError)?.message.contains("policy") == true
        }
        // A restart keeps following the chain from the state.
        _ = try SecretKernel(configuration(rotated, inProcess: inProcess, state: state))
        #expect(throws: SecretKernelError.self) { try SecretKernel(configuration(reclaimed, inProcess: inProcess, state: state)) }
        // Without state, only the pins count.
        #expect(throws: SecretKernelError.self) { try SecretKernel(configuration(rotated, inProcess: inProcess)) }
    }

    /// Finding 4 in review: a change that makes a new admin and signs the
    /// policy with that admin's key does not extend the base (`check
    /// --base` applies this rule); the same admin, added by a policy an
    /// existing admin signed in a version in between, does.
    @Test func aSelfAppointedAdminDoesNotExtendTheBase() throws {
        let alice = try SecretBundle(parsing: fixture.bytes).users["alice"]!
        let base = try #require(TrustedHistory(try SecretBundle(parsing: fixture.bytes)))
        let selfAppointed = try policy(fixture.bytes, signedBy: "alice") { $0.admins = ($0.admins + [alice]).sorted() }
        #expect(throws: BundleSealError.self) {
            try base.checkExtended(by: try #require(TrustedHistory(try SecretBundle(parsing: selfAppointed))))
        }
        let added = try policy(fixture.bytes, signedBy: "ops") { $0.admins = ($0.admins + [alice]).sorted() }
        let next = try policy(added, signedBy: "alice") { _ in }
        let between = try #require(TrustedHistory(try SecretBundle(parsing: added)))
        let newer = try #require(TrustedHistory(try SecretBundle(parsing: next)))
        #expect(throws: BundleSealError.self) { try base.checkExtended(by: newer) }
        try base.checkExtended(by: newer, through: [between])
    }

    /// A re-seal made from a bundle that never had a write the reader
    /// trusts: with one re-seal between them (its policy replaces the
    /// trusted one), the checkpoint names exactly what it re-sealed, so the
    /// missing write is a rollback — time is not a reason to accept it.
    @Test(arguments: [true, false])
    func aStaleResealIsRefused(inProcess: Bool) throws {
        let state = scratch.url.appendingPathComponent("stale.state").path
        let rotated = try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_0"], by: "alice")
        _ = try SecretKernel(configuration(rotated, inProcess: inProcess, state: state))
        let stale = try policy(fixture.bytes, signedBy: "ops", reseal: true) { _ in }
        #expect {
            try SecretKernel(configuration(stale, inProcess: inProcess, state: state))
        } throws: { error in
            (error as? SecretKernelError)?.kind == .rollback && (error as? SecretKernelError)?.message.contains("by alice") == true
        }
        // The same re-seal of the trusted bundle extends it.
        _ = try SecretKernel(configuration(try policy(rotated, signedBy: "ops", reseal: true) { _ in }, inProcess: inProcess, state: state))
    }

    /// Issue 27, finding 1: after an admin's re-seal, carol signs a write of
    /// her own slot under an id the checkpoint names in `subsumes=`, after
    /// the newest write (alice's, or an admin's rotation of a
    /// deployment-wide token). Her epoch made that write look reached from
    /// the checkpoint, so the re-sealed bundle without it passed as an
    /// extension. A re-sealed id is spent: the bundle with carol's epoch is
    /// refused, and a state or base that holds it (from a reader before
    /// this rule) does not let the rollback through.
    @Test(arguments: [(true, "alice"), (false, "alice"), (true, "ops"), (false, "ops")])
    func aReusedCheckpointIDRollsNothingBack(inProcess: Bool, victim: String) throws {
        let resealed = try policy(fixture.bytes, signedBy: "ops", reseal: true) { _ in }
        let checkpoint = try #require(try SecretBundle(parsing: resealed).epochs.last)
        guard case .subsumes(let spent) = checkpoint.parents else { Issue.record("no checkpoint"); return }
        let rotation = victim == "alice"
            ? try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_0"], onto: resealed, by: "alice")
            : try fixture.written([SlotKey(owner: nil, plugin: "github", key: "TOKEN"): "ghp_EXAMPLErotatedROTATEDrotated0000"], onto: resealed)
        let carol = SlotKey(owner: "carol", plugin: "shopify", key: "STORE_DOMAIN")
        let poisoned = try fixture.written([carol: "carol-renamed.myshopify.com"], onto: rotation, by: "carol", id: spent[0])

        #expect {
            try SecretKernel(configuration(poisoned, inProcess: inProcess))
        } throws: { error in
            (error as? SecretKernelError)?.message.contains("is one that checkpoint \(checkpoint.id) names in subsumes=") == true
        }
        // A reader that trusted it anyway (its state written before this rule).
        let trusted = try #require(TrustedHistory(try SecretBundle(parsing: poisoned)))
        let newer = try #require(TrustedHistory(try SecretBundle(parsing: resealed)))
        #expect {
            try trusted.checkExtended(by: newer)
        } throws: { error in
            "\(error)".contains("is missing and no admin's checkpoint re-sealed it")
        }
        let state = scratch.url.appendingPathComponent("reused-\(inProcess)-\(victim).state").path
        #expect(FileManager.default.createFile(atPath: state, contents: Data(trusted.text.utf8), attributes: [.posixPermissions: 0o600]))
        #expect {
            try SecretKernel(configuration(resealed, inProcess: inProcess, state: state))
        } throws: { error in
            (error as? SecretKernelError)?.kind == .rollback
        }
        // Without carol's epoch, the rotation extends the re-seal, and the re-seal does not extend the rotation.
        try newer.checkExtended(by: try #require(TrustedHistory(try SecretBundle(parsing: rotation))))
        #expect(throws: BundleSealError.self) {
            try #require(TrustedHistory(try SecretBundle(parsing: rotation))).checkExtended(by: newer)
        }
    }

    /// A re-sign and then a re-seal of a branch made before alice's write
    /// (the attacker replays admin-signed files): the checkpoint names
    /// exactly what it re-sealed, every id of it known to the state, so
    /// alice's write is missing, not re-sealed — though the new policy's
    /// `previous` is not the trusted one. (Only a re-seal the state never
    /// saw, named by a checkpoint, lets time decide.)
    @Test(arguments: [true, false])
    func aResignAndAResealOfAStaleBranchIsRefused(inProcess: Bool) throws {
        let state = scratch.url.appendingPathComponent("stale-resign-\(inProcess).state").path
        let rotated = try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_0"], by: "alice")
        _ = try SecretKernel(configuration(rotated, inProcess: inProcess, state: state))
        let resigned = try policy(fixture.bytes, signedBy: "ops") { _ in }
        let stale = try policy(resigned, signedBy: "ops", reseal: true) { _ in }
        #expect {
            try SecretKernel(configuration(stale, inProcess: inProcess, state: state))
        } throws: { error in
            (error as? SecretKernelError)?.kind == .rollback && (error as? SecretKernelError)?.message.contains("by alice") == true
        }
        // The same two steps over the trusted bundle extend it.
        let current = try policy(try policy(rotated, signedBy: "ops") { _ in }, signedBy: "ops", reseal: true) { _ in }
        _ = try SecretKernel(configuration(current, inProcess: inProcess, state: state))
    }

    /// A FIFO in the state's place is refused at once (not waited on), and
    /// so is a state in a folder others may write (they could remove it).
    @Test func aStateFileInUnsafePlacesIsRefused() throws {
        let fifo = scratch.url.appendingPathComponent("fifo.state").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let start = Date()
        #expect {
            try SecretKernel(configuration(fixture.bytes, inProcess: true, state: fifo))
        } throws: { error in
            (error as? SecretKernelError)?.message.contains("not a regular file") == true
        }
        #expect(Date().timeIntervalSince(start) < 5)
        let open = scratch.url.appendingPathComponent("open")
        try FileManager.default.createDirectory(at: open, withIntermediateDirectories: true)
        chmod(open.path, 0o777)
        #expect {
            try SecretKernel(configuration(fixture.bytes, inProcess: true, state: open.appendingPathComponent("s").path))
        } throws: { error in
            (error as? SecretKernelError)?.message.contains("folder others may write") == true
        }
        chmod(open.path, 0o1777)  // sticky, as /tmp: others cannot remove what is ours
        _ = try SecretKernel(configuration(fixture.bytes, inProcess: true, state: open.appendingPathComponent("s").path))
    }

    /// A lock file another user made in a sticky folder is refused at once,
    /// and a lock held for ever is waited on only for a while.
    @Test func aStateLockHeldByOthersNeverBlocksForEver() throws {
        let folder = scratch.url.appendingPathComponent("sticky")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        chmod(folder.path, 0o1777)
        let state = folder.appendingPathComponent("s").path
        let lock = open(state + ".lock", O_RDWR | O_CREAT, 0o600)
        #expect(lock >= 0)
        defer { close(lock) }
        #expect(flock(lock, LOCK_EX) == 0)  // held, as a stuck or hostile process would
        let start = Date()
        #expect {
            try SecretKernel(configuration(fixture.bytes, inProcess: true, state: state))
        } throws: { error in
            (error as? SecretKernelError)?.message.contains("has been held by another process") == true
        }
        #expect(Date().timeIntervalSince(start) < 30)
        if geteuid() == 0 {  // only root can give the file to another user
            #expect(fchown(lock, 65534, 65534) == 0)
            #expect {
                try SecretKernel(configuration(fixture.bytes, inProcess: true, state: state))
            } throws: { error in
                (error as? SecretKernelError)?.message.contains("belongs to another user") == true
            }
        }
        flock(lock, LOCK_UN)
    }

    /// A FIFO where the bundle should be is refused at once, not waited on.
    @Test func aFIFOInTheBundlesPlaceIsRefusedAtOnce() throws {
        let fifo = scratch.url.appendingPathComponent("production.bundle").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let start = Date()
        var configuration = configuration(fixture.bytes, inProcess: true)
        configuration.bundle = .path(fifo)
        #expect(throws: SecretKernelError.self) { try SecretKernel(configuration) }
        #expect(Date().timeIntervalSince(start) < 5)
    }

    /// The state's text round-trips, and every malformed line is named.
    @Test func theStateTextRoundTrips() throws {
        let history = try #require(TrustedHistory(try SecretBundle(parsing: fixture.bytes)))
        #expect(try TrustedHistory(parsing: history.text) == history)
        var lines = history.text.split(separator: "\n").map(String.init)
        lines[4] = lines[4].replacingOccurrences(of: "after=", with: "before=")
        #expect(throws: BundleSealError.rollback("trusted state, line 5: expected 'epoch ID DIGEST TIME WRITER SERIAL PARENTS'")) {
            try TrustedHistory(parsing: lines.joined(separator: "\n"))
        }
    }
}
