import BundleFormat
import BundleSeal
import Foundation
import GPG
import Logging
import SecretKernel
import TestSupport
import Testing

/// Histories a team writes: many writes in one second, each its own epoch.
@Suite("history at scale")
struct HistoryScaleTests {
    /// 320 writes of one slot with the same clock: each takes that second
    /// (they used to take one second each and run past the 300 s a time may
    /// lead its signature), the chain orders them, and every reader —
    /// step by step, and loaders with the key in the process or in a home —
    /// serves the last.
    @Test func writesInOneSecondAllLandInOrder() throws {
        let fixture = try KernelFixture()
        var bundle = try SecretBundle(parsing: fixture.bytes)
        let home = try TemporaryGPGHome()
        defer { home.close() }
        try home.gpg(["--import", KernelFixture.secretKey("alice").path])
        let context = try Context(home: home.path)
        let keyData = Array(try Data(contentsOf: KernelFixture.example.appendingPathComponent("keys/runtime-production.asc")))
        let info = try #require(try context.keys(in: keyData).first)
        let subkey = try #require(info.encryptionSubkey)
        let recipient = try #require(Cv25519Recipient(keyData: keyData, subkey: subkey))
        let encryptor = Cv25519Encryptor(recipients: [info.fingerprint: recipient])
        let slot = SlotKey(owner: "alice", plugin: "github", key: "TOKEN")
        let position = try #require(bundle.slots.firstIndex { $0.slot == slot })
        let now = Date()
        let value = { (index: Int) in "github_pat_EXAMPLE_alice_" + String(format: "%010d", index) }
        for index in 0..<320 {
            let (epoch, sealed) = try EpochSealer(onto: bundle, writer: bundle.users["alice"]!).seal(
                [.init(slot: slot, value: SecureBytes(value(index)))], after: bundle.epochs, now: now, encryptor: encryptor,
                signer: context)
            bundle.epochs.append(epoch)
            bundle.slots[position].value = try #require(sealed[slot] ?? nil)
        }
        #expect(Set(bundle.epochs.suffix(320).map(\.time)) == [Int(now.timeIntervalSince1970)])
        let bytes = bundle.serialized()
        let parsed = try SecretBundle(parsing: bytes)
        #expect(parsed.epochs.map(\.id) == bundle.epochs.map(\.id), "the chain is the canonical order")
        _ = try BundleVerifier(trustedAdmins: [KernelFixture.admin]).verify(parsed)

        let inProcess = SecretKernel.KeySource.armoredSecretKey(
            SecureBytes(Array(try Data(contentsOf: KernelFixture.secretKey("runtime-production")))))
        for keys in [inProcess, .gnupgHome(fixture.home.path)] {
            let kernel = try SecretKernel(.init(
                bundle: .bytes(bytes), keys: keys, trustedAdmins: [KernelFixture.admin], fallbackEnvironment: [:],
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
            #expect(try kernel.slotValue(plugin: "github", key: "TOKEN", of: SecretOwner(user: "alice")).value == value(319))
        }
    }
}
