import BundleFormat
import BundleSeal
import Foundation
import GPG
import TestSupport
import Testing

/// A small environment with real keys: an admin, a runtime recipient, a user.
final class BundleFixture: @unchecked Sendable {
    let adminHome: TemporaryGPGHome
    let runtimeHome: TemporaryGPGHome
    let aliceHome: TemporaryGPGHome
    let admin: String
    let runtime: String
    let alice: String
    let publicHome: TemporaryGPGHome

    init() throws {
        adminHome = try TemporaryGPGHome()
        runtimeHome = try TemporaryGPGHome()
        aliceHome = try TemporaryGPGHome()
        publicHome = try TemporaryGPGHome()
        admin = try adminHome.generateKey("ops")
        runtime = try runtimeHome.generateKey("runtime")
        alice = try aliceHome.generateKey("alice")
        for (home, fingerprint) in [(adminHome, admin), (runtimeHome, runtime), (aliceHome, alice)] {
            try publicHome.gpg(["--import"], input: Array(try home.exportPublic(fingerprint).utf8))
        }
    }

    func binaryKey(_ fingerprint: String) throws -> [UInt8] {
        try publicHome.gpg(["--export-options", "export-minimal", "--export", fingerprint])
    }

    let tokenSlot = SlotKey(owner: "alice", plugin: "shop", key: "TOKEN")
    let appSlot = SlotKey(owner: nil, plugin: "github", key: "APP_ID")

    /// A signed bundle with two declared slots and alice's token set by alice.
    func makeBundle(value: String = "tok_abcdefgh") throws -> SecretBundle {
        var bundle = SecretBundle(
            environment: "prod", recipients: [runtime], admins: [admin], users: ["alice": alice],
            keys: [admin: try binaryKey(admin), alice: try binaryKey(alice), runtime: try binaryKey(runtime)],
            slots: [
                SlotLine(slot: appSlot, value: nil, attributes: SlotAttributes(env: "GITHUB_APP_ID")),
                SlotLine(slot: tokenSlot, value: nil, attributes: SlotAttributes(env: "SHOP_TOKEN", scopes: ["formulas"])),
            ])
        try PolicySigner.sign(&bundle, as: admin, with: Context(home: adminHome.path))
        try write([tokenSlot: value], into: &bundle, as: alice, home: aliceHome)
        return bundle
    }

    func write(_ values: [SlotKey: String?], into bundle: inout SecretBundle, as writer: String, home: TemporaryGPGHome) throws {
        let sealer = EpochSealer(onto: bundle, writer: writer)
        let changes = values.map { EpochSealer.Change(slot: $0.key, value: $0.value.map { SecureBytes($0) }) }
        let (epoch, sealed) = try sealer.seal(
            changes, after: bundle.epochs, encryptor: Context(home: publicHome.path), signer: Context(home: home.path))
        bundle.epochs.append(epoch)
        for index in bundle.slots.indices {
            if let value = sealed[bundle.slots[index].slot] { bundle.slots[index].value = value }
        }
    }
}

@Suite("bundle: seal, verify, open")
struct BundleRoundTripTests {
    /// The loader hashes both payloads as they are rendered, in 64 KiB
    /// pieces: joined, they must be exactly what the writer signed, also
    /// where a piece ends inside a line.
    @Test func scannedPayloadsAreWhatWasSigned() throws {
        let fixture = try BundleFixture()
        var bundle = try fixture.makeBundle()
        // About 250 KB of slot lines and 200 KB of claims, so that pieces end mid-line.
        var values: [SlotKey: String?] = [:]
        for index in 0..<6_000 {
            let slot = SlotKey(owner: nil, plugin: "github", key: String(format: "KEY_%04d", index))
            bundle.slots.append(SlotLine(slot: slot, value: nil, attributes: SlotAttributes(env: "GITHUB_\(index)")))
            if index % 2 == 0 { values[slot] = "value-\(index)" }
        }
        bundle.slots.sort { $0.slot < $1.slot }
        // A new policy: the next serial, naming the one it replaces.
        bundle.previousPolicy = bundle.policyReference!.id
        bundle.policySerial += 1
        try PolicySigner.sign(&bundle, as: fixture.admin, with: Context(home: fixture.adminHome.path))
        try fixture.write(values, into: &bundle, as: fixture.admin, home: fixture.adminHome)
        let scan = try ScannedBundle(scanning: bundle.serialized())
        let policy = bundle.policyPayload()
        #expect(policy.count > 3 << 16)
        // Compared by digest: a failure would otherwise print both payloads.
        #expect(Digest.sha256Hex(scan.policyPayload()) == Digest.sha256Hex(policy))
        var pieces = 0
        scan.policyPayload { _ in pieces += 1 }
        #expect(pieces > 3)
        for (index, epoch) in bundle.epochs.enumerated() {
            let digest = Digest.sha256Hex(epoch.dataKeyMessage)
            let signed = epoch.payload(environment: bundle.environment, dataKeyDigest: digest)
            var joined: [UInt8] = []
            scan.epochPayload(index, dataKeyDigest: digest) { joined += $0 }
            #expect(Digest.sha256Hex(joined) == Digest.sha256Hex(signed))
        }
        // The in-process check hashes the pieces (the keys are Ed25519): it must accept them.
        let verifier = try #require(try ScanVerifier(scan, trustedAdmins: [fixture.admin]))
        try verifier.checkAllValues()
    }

    @Test func roundTripsThroughText() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.makeBundle()
        let text = bundle.serialized()
        let parsed = try SecretBundle(parsing: text)
        #expect(parsed == bundle)
        #expect(parsed.serialized() == text, "serialization is canonical")
        #expect(text.firstRange(of: Array("tok_abcdefgh".utf8)) == nil, "no plaintext in the bundle")

        let verified = try BundleVerifier(trustedAdmins: [fixture.admin]).verify(parsed)
        #expect(verified.latestWriter[fixture.tokenSlot]?.writer == fixture.alice)
        let values = try BundleOpener.open(verified, with: Context(home: fixture.runtimeHome.path))
        #expect(values[fixture.tokenSlot]?.utf8String() == "tok_abcdefgh")
        #expect(values[fixture.appSlot] == nil)
    }

    @Test func writersCannotReadAndUnpinnedAdminsAreRefused() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.makeBundle()
        let verified = try BundleVerifier(trustedAdmins: [fixture.admin]).verify(bundle)
        #expect(throws: BundleSealError.self) { try BundleOpener.open(verified, with: Context(home: fixture.aliceHome.path)) }
        #expect(throws: BundleSealError.untrustedPolicy(
            "signed by \(fixture.admin), which is not a trusted admin")) {
            try BundleVerifier(trustedAdmins: [fixture.alice]).verify(bundle)
        }
    }

    @Test func aUserCannotWriteAnotherOwnersSlot() throws {
        let fixture = try BundleFixture()
        var bundle = try fixture.makeBundle()
        try fixture.write([fixture.appSlot: "42"], into: &bundle, as: fixture.alice, home: fixture.aliceHome)
        #expect(throws: BundleSealError.self) { try BundleVerifier(trustedAdmins: [fixture.admin]).verify(bundle) }
        var byAdmin = try fixture.makeBundle()
        try fixture.write([fixture.appSlot: "42"], into: &byAdmin, as: fixture.admin, home: fixture.adminHome)
        _ = try BundleVerifier(trustedAdmins: [fixture.admin]).verify(byAdmin)
    }

    @Test func droppedRolledBackAndSwappedValuesAreDetected() throws {
        let fixture = try BundleFixture()
        let original = try fixture.makeBundle()
        let trusted = BundleVerifier(trustedAdmins: [fixture.admin])

        var dropped = original
        dropped.slots[1].value = nil
        #expect(throws: BundleSealError.inconsistent(
            slot: "alice/shop/TOKEN", reason: "epoch \(original.epochs[0].id) set a value that is missing (dropped?)")) {
            try trusted.verify(dropped)
        }

        var rotated = original
        try fixture.write([fixture.tokenSlot: "tok_second1"], into: &rotated, as: fixture.alice, home: fixture.aliceHome)
        _ = try trusted.verify(rotated)
        var rolledBack = rotated
        rolledBack.slots[1].value = original.slots[1].value
        #expect(throws: BundleSealError.self) { try trusted.verify(rolledBack) }

        // A value moved to another slot fails its claim (and its AAD).
        var moved = rotated
        moved.slots[0].value = moved.slots[1].value
        #expect(throws: BundleSealError.self) { try trusted.verify(moved) }
    }

    /// Any single-byte change to a signature, data key or ciphertext line is refused.
    @Test func everySingleByteChangeIsDetected() throws {
        let fixture = try BundleFixture()
        let text = try fixture.makeBundle().serialized()
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let trusted = BundleVerifier(trustedAdmins: [fixture.admin])
        let runtime = try Context(home: fixture.runtimeHome.path)
        var offset = 0
        var tried = 0
        var rng = SystemRandomNumberGenerator()
        for line in lines {
            defer { offset += line.utf8.count + 1 }
            guard line.hasPrefix("policy ") || line.hasPrefix("epoch ") || line.hasPrefix("slot alice") else { continue }
            // A sample of positions on each line (every byte would take minutes of gpg).
            for _ in 0..<12 {
                let position = offset + Int.random(in: 0..<line.utf8.count, using: &rng)
                var tampered = text
                tampered[position] ^= UInt8.random(in: 1...255, using: &rng)
                tried += 1
                #expect(throws: (any Error).self, "byte \(position) of: \(line.prefix(30))") {
                    let verified = try trusted.verify(try SecretBundle(parsing: tampered))
                    _ = try BundleOpener.open(verified, with: runtime)
                }
            }
        }
        #expect(tried >= 36)
    }

    /// Exhaustive over the policy signature: no byte of it can change unnoticed
    /// (gpg alone ignores unhashed subpackets and MPI bit-count slack).
    @Test func noSignatureByteIsMalleable() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.makeBundle()
        let trusted = BundleVerifier(trustedAdmins: [fixture.admin])
        let signature = try #require(bundle.policy?.signature)
        #expect(SignatureForm.isCanonical(signature, over: bundle.policyPayload()))
        for index in signature.indices {
            for flip: UInt8 in [0x01, 0x80] {
                var tampered = bundle
                tampered.policy?.signature[index] ^= flip
                #expect(throws: BundleSealError.self, "byte \(index) ^ \(flip)") { try trusted.verify(tampered) }
            }
        }
    }
}
