import BundleFormat
import BundleSeal
import Foundation
import GPG
import Logging
@testable import SecretKernel
import TestSupport
import Testing

/// Attacks on format 1 that format 2 and its loaders stop (issue: trust
/// against a hostile repository). Each runs on the in-process path; the
/// vectors in Tests/BundleTests/Vectors run the same rules step by step.
@Suite("SecretKernel: attacks a hostile repository or writer tries")
struct TrustTests {
    /// 582 bytes, encrypted to the example's runtime key: bzip2 of 300 MB of
    /// zeros. (`head -c 300M /dev/zero | gpg --compress-algo bzip2 -z 9 -e -r runtime-production`)
    static let bomb = Array(Data(base64Encoded: """
hF4D6yC+sjm52W8SAQdAq+H8hyZs5kVCaxKojCl2V1Gd9GCz74PM5za2JQe932Aw32EZ5Li56TDVWxoLrSwjLg44xkoq6KSJGy+M
jjay4n3Jrr8yYUjCzkjERf/R7jl50sEjAfqMFBJRH1k7g953kfbWRw0WDz+kPgmLoqRZ6jktqifbXpUTwUVsQfkOaG1eV71u4ETk
UzsVxFfqLYjrta1fXjK6a11PeNAPJd6UC4gcqZKEZSvssYbxzEDo7g5qB/AgSfYJRoi77ELqKfQJNOWPwBNLhd2hmJAA1mW7Yloj
pJkEwm64Od1vfpGsyqwBnG7CYde/QbSljRER5E7ICuKDBUtaR3/o/NvcQQyWEml0Xgurgg4Ej16vLp4dNafHBryL8wPJrDK84rGD
uJCi2hNPZ23P83jNabKU9Yi0jyTgxGPg8kA1FEivBSEtl+/hQVsFVi7qIm0g/2NJxIpS2+nYwh+SGMnF9EijhnvChWbBbFFcOo1v
R2O7YQHh64rfLOTKJVh76SjTze7VsTbRVBzWyykiQ0IZhsrcOV+72MqUsB9usoPK20VfEMDgedkwvklcWZqvR5Q32Y/I9iCoCk4/
28ohBQ8LmfWz6Dd9YryXbDOM/W8D2YWNhcOlDIn32kvOzdSMx6LcYhAWltuvYc/4pXOXTcoHj8V8pmcUpDMS4NQ9gjWVPKsNb3Vn
sRLihF78fw6C3G7RbiLBZF5AU18hKi6EedSoTssuZnVMCn9fNic50zNi+Ex+vjxFSsVslWBqQ92U
""", options: .ignoreUnknownCharacters)!)

    let fixture: KernelFixture
    let aliceToken = SlotKey(owner: "alice", plugin: "github", key: "TOKEN")

    init() throws { fixture = try KernelFixture() }

    /// alice's write, with `change` applied to her epoch (and the bundle's
    /// slots), re-signed by her when `resign`.
    func aliceWrite(
        resign: Bool, value: String = "github_pat_EXAMPLE_alice_rotated_0",
        _ change: (inout Epoch, inout [SlotLine]) throws -> Void
    ) throws -> [UInt8] {
        try write(resign: resign, [aliceToken: value], by: "alice", change)
    }

    /// A write of `values` by `user` (nil: the admin), with `change` applied
    /// to its epoch and the bundle's slots, re-signed by the writer when `resign`.
    func write(
        resign: Bool, _ values: [SlotKey: String], by user: String?, _ change: (inout Epoch, inout [SlotLine]) throws -> Void
    ) throws -> [UInt8] {
        var bundle = try SecretBundle(parsing: try fixture.written(values, by: user))
        var epoch = bundle.epochs.removeLast()
        try change(&epoch, &bundle.slots)
        if resign {
            let home = try TemporaryGPGHome()
            defer { home.close() }
            try home.gpg(["--import", KernelFixture.secretKey(user ?? "ops").path])
            let payload = epoch.payload(environment: bundle.environment, dataKeyDigest: Digest.sha256Hex(epoch.dataKeyMessage))
            epoch.signature = try Context(home: home.path).signDetached(payload, as: epoch.writer)
        }
        bundle.epochs.append(epoch)
        return bundle.serialized()
    }

    func load(_ bytes: [UInt8]) -> (error: SecretKernelError?, seconds: Double) {
        let start = Date()
        do {
            _ = try SecretKernel(fixture.configuration(.bytes(bytes)))
            return (nil, Date().timeIntervalSince(start))
        } catch {
            return (error, Date().timeIntervalSince(start))
        }
    }

    /// Finding 2: the bomb behind a garbage signature never reaches gpg.
    @Test func aBombBehindABadSignatureIsRefusedBeforeDecryption() throws {
        let bytes = try aliceWrite(resign: false) { epoch, _ in epoch.dataKeyMessage = Self.bomb }
        let (error, seconds) = load(bytes)
        #expect(error?.kind == .verificationFailed)
        #expect(error?.message.contains("bad signature") == true, "\(String(describing: error))")
        // Decompressing 300 MB takes seconds; refusing before gpg takes milliseconds.
        #expect(seconds < 1)
    }

    /// Finding 2: a bomb its writer signed is cut off at 33 bytes of output,
    /// and (finding 1) only that writer's value is lost.
    @Test(arguments: [true, false])
    func aSignedBombIsCutOffAtTheDataKeysSize(inProcess: Bool) throws {
        let bytes = try aliceWrite(resign: true) { epoch, _ in epoch.dataKeyMessage = Self.bomb }
        let start = Date()
        let logs = CapturedLogs()
        let kernel = try SecretKernel(configuration(bytes, inProcess: inProcess, logger: logs.logger))
        #expect(Date().timeIntervalSince(start) < 1)
        try expectOnlyAlicesTokenUnavailable(kernel, logs, reason: "data key is not 32 bytes", inProcess: inProcess)
    }

    func configuration(_ bytes: [UInt8], inProcess: Bool, logger: Logger? = nil) -> SecretKernel.Configuration {
        var configuration = fixture.configuration(.bytes(bytes))
        configuration.verifiesInProcess = inProcess
        if let logger { configuration.logger = logger }
        return configuration
    }

    /// What fail-small promises when alice's write of her github TOKEN is
    /// unusable: her slot serves nothing (no fallback to the deployment-wide
    /// value or the variable), every other slot serves as before, status
    /// and info say so, and one warning names the writer and `reason`.
    func expectOnlyAlicesTokenUnavailable(
        _ kernel: SecretKernel, _ logs: CapturedLogs, reason: String, inProcess: Bool
    ) throws {
        #expect(kernel.getSecret(plugin: "github", key: "TOKEN", for: .user("alice")) == nil)
        #expect(throws: SecretUnavailable.self) { try kernel.secret(plugin: "github", key: "TOKEN", for: .user("alice")) }
        do {
            _ = try kernel.secret(plugin: "github", key: "TOKEN", for: .user("alice"))
        } catch {
            #expect(error.reason == .unavailable)
        }
        #expect(try kernel.status(plugin: "github", for: .user("alice")).slots.first { $0.key == "TOKEN" }?.status == .unavailable)
        #expect(kernel.environmentVariables(for: .user("alice"))["GITHUB_TOKEN"] == nil)
        #expect(kernel.environmentVariables(for: .deployment)["GITHUB_TOKEN"] == KernelFixture.values["-/github/TOKEN"])
        #expect(kernel.info.unavailable == 1)
        // Everyone else is served.
        for (slot, value) in KernelFixture.values where slot != "alice/github/TOKEN" {
            let parts = slot.split(separator: "/").map(String.init)
            let owner = parts[0] == "-" ? nil : parts[0]
            #expect(try kernel.slotValue(plugin: parts[1], key: parts[2], of: SecretOwner(user: owner)).value == value, "\(slot)")
        }
        #expect(kernel.getSecret(plugin: "github", key: "TOKEN", for: .user("dave")) == KernelFixture.values["dave/github/TOKEN"])
        #expect(kernel.getSecret(plugin: "github", key: "TOKEN", for: .user("carol")) == KernelFixture.values["-/github/TOKEN"])
        let warnings = logs.all.filter { $0.hasPrefix("warning") }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.contains("writer=alice") == true, "\(warnings)")
        #expect(warnings.first?.contains(reason) == true, "\(warnings)")
        #expect(!logs.all.contains { $0.contains("alice_rotated") })
        // Which path verified the signatures.
        #expect(logs.all.contains { $0.contains("step by step") } == !inProcess)
    }

    /// A 32-byte data key encrypted to a key that is not a recipient.
    static func dataKeyForAStranger() throws -> [UInt8] {
        let home = try TemporaryGPGHome()
        defer { home.close() }
        let context = try Context(home: home.path)
        let stranger = try context.generateKey(userID: "stranger <stranger@example.invalid>")
        return try context.encrypt([UInt8](repeating: 7, count: 32), to: [stranger.fingerprint])
    }

    /// Finding 1: alice signs a write whose data key only a stranger can
    /// open. `check` cannot see it; every loader used to refuse the whole
    /// bundle. Now only her slot is unavailable, on both paths.
    @Test(arguments: [true, false])
    func aUsersUndecryptableDataKeyLosesOnlyHerValue(inProcess: Bool) throws {
        let stranger = try Self.dataKeyForAStranger()
        let bytes = try aliceWrite(resign: true) { epoch, _ in epoch.dataKeyMessage = stranger }
        let logs = CapturedLogs()
        let kernel = try SecretKernel(configuration(bytes, inProcess: inProcess, logger: logs.logger))
        try expectOnlyAlicesTokenUnavailable(kernel, logs, reason: "data key does not decrypt", inProcess: inProcess)
    }

    /// A data key encrypted with a passphrase (not to a public key) used to
    /// make gpg ask the runtime for one and refuse the whole bundle: its
    /// packets are read first, and only alice's slot is unavailable.
    @Test(arguments: [true, false])
    func aPassphraseDataKeyLosesOnlyHerValue(inProcess: Bool) throws {
        let home = try TemporaryGPGHome()
        defer { home.close() }
        let symmetric = try home.gpg(
            ["--batch", "--pinentry-mode", "loopback", "--passphrase", "x", "--symmetric", "--output", "-"],
            input: [UInt8](repeating: 7, count: 32))
        let bytes = try aliceWrite(resign: true) { epoch, _ in epoch.dataKeyMessage = symmetric }
        let logs = CapturedLogs()
        let kernel = try SecretKernel(configuration(bytes, inProcess: inProcess, logger: logs.logger))
        try expectOnlyAlicesTokenUnavailable(kernel, logs, reason: "packet of type 3", inProcess: inProcess)
    }

    /// Finding 1: alice signs a claim for bytes that are not sealed under
    /// her data key (they fail AES-GCM): only her slot is unavailable.
    @Test(arguments: [true, false])
    func aUsersValueFailingAESGCMLosesOnlyThatValue(inProcess: Bool) throws {
        let bytes = try aliceWrite(resign: true) { epoch, slots in
            let index = slots.firstIndex { $0.slot == aliceToken }!
            var sealed = slots[index].value!
            sealed.bytes[sealed.bytes.count - 1] ^= 1  // the tag
            slots[index].value = sealed
            let claim = epoch.claims.firstIndex { $0.slot == aliceToken }!
            epoch.claims[claim].digest = Digest.sha256(sealed.bytes)
        }
        let logs = CapturedLogs()
        let kernel = try SecretKernel(configuration(bytes, inProcess: inProcess, logger: logs.logger))
        try expectOnlyAlicesTokenUnavailable(kernel, logs, reason: "does not authenticate", inProcess: inProcess)
    }

    /// Finding 10: a value alice signed by hand that fails its manifest
    /// pattern (carried in the signed policy) is not served.
    @Test(arguments: [true, false])
    func aValueFailingItsPatternIsNotServed(inProcess: Bool) throws {
        let bytes = try aliceWrite(resign: false, value: "github_pat_EXAMPLE_alice_rotated_0\nevil.example.com") { _, _ in }
        let logs = CapturedLogs()
        let kernel = try SecretKernel(configuration(bytes, inProcess: inProcess, logger: logs.logger))
        try expectOnlyAlicesTokenUnavailable(kernel, logs, reason: "does not match its pattern", inProcess: inProcess)
    }

    /// Fail small stops at admins: an unusable value an admin signed
    /// refuses the whole bundle, on both paths.
    @Test(arguments: [true, false])
    func anAdminsUndecryptableWriteRefusesTheBundle(inProcess: Bool) throws {
        let stranger = try Self.dataKeyForAStranger()
        let slot = SlotKey(owner: nil, plugin: "github", key: "APP_ID")
        let bytes = try write(resign: true, [slot: "654321"], by: nil) { epoch, _ in epoch.dataKeyMessage = stranger }
        #expect {
            try SecretKernel(configuration(bytes, inProcess: inProcess))
        } throws: { error in
            (error as? SecretKernelError)?.message.contains("signed by an admin") == true
        }
    }

    /// A policy that has a secret set LD_PRELOAD (an admin's mistake, or a
    /// stolen admin key) is refused by loaders on both paths: `exec` would
    /// run a value as code beside every secret.
    @Test(arguments: [true, false])
    func aReservedVariableRefusesTheBundle(inProcess: Bool) throws {
        let bytes = try fixture.resigned { bundle in
            for index in bundle.slots.indices where bundle.slots[index].slot.key == "TOKEN" {
                bundle.slots[index].attributes.env = "LD_PRELOAD"
            }
        }
        #expect {
            try SecretKernel(configuration(bytes, inProcess: inProcess))
        } throws: { error in
            (error as? SecretKernelError)?.kind == .invalidBundle
                && (error as? SecretKernelError)?.message.contains("'LD_PRELOAD'") == true
        }
    }

    /// A runtime that holds no recipient's key is told so: it is not mistaken
    /// for every writer's fault.
    @Test func aRuntimeWithoutTheKeyIsRefusedWhole() throws {
        let empty = try TemporaryGPGHome()
        defer { empty.close() }
        var configuration = fixture.configuration()
        configuration.keys = .gnupgHome(empty.path)
        #expect {
            try SecretKernel(configuration)
        } throws: { error in
            (error as? SecretKernelError)?.kind == .keyUnavailable
        }
    }

    /// Finding 7: a staging bundle copied over production is refused by a
    /// loader told it runs in production.
    @Test func aBundleOfAnotherEnvironmentIsRefused() throws {
        var configuration = fixture.configuration()
        configuration.expectedEnvironment = "staging"
        #expect(throws: SecretKernelError.self) { try SecretKernel(configuration) }
        configuration.expectedEnvironment = "production"
        #expect(try SecretKernel(configuration).getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "123456")
    }

    /// Finding 4: a pin that is not a fingerprint is an error, not ignored.
    @Test func pinsThatAreNotFingerprintsAreErrors() {
        #expect(throws: SecretKernelError.self) { try SecretKernel.Configuration.trustedAdmins(from: "ops") }
        #expect(throws: SecretKernelError.self) {
            try SecretKernel.Configuration.trustedAdmins(from: "\(KernelFixture.admin),")
        }
        #expect((try? SecretKernel.Configuration.trustedAdmins(from: KernelFixture.admin.lowercased())) == [KernelFixture.admin])
    }

    /// Finding 3: one epoch of 1,100 claims whose keys are prefixes of each
    /// other followed by a digit (K1, K10, …) loads on the fast path, and
    /// both paths agree on every value.
    @Test(arguments: [["K"], ["K", "K_"]])
    func largeEpochsWithPrefixedNamesLoad(_ prefixes: [String]) throws {
        var bundle = try SecretBundle(parsing: fixture.bytes)
        var values: [SlotKey: String] = [:]
        for prefix in prefixes {
            for index in 0..<(1_100 / prefixes.count) {
                let slot = SlotKey(owner: nil, plugin: "github", key: "\(prefix)\(index)")
                bundle.slots.append(SlotLine(slot: slot, value: nil, attributes: SlotAttributes(env: "BIG_\(values.count)")))
                values[slot] = "value-\(prefix)-\(index)"
            }
        }
        bundle.slots.sort { $0.slot < $1.slot }
        let grown = try fixture.resigned(bundle.serialized()) { _ in }
        let written = try fixture.written(values, onto: grown)
        let kernel = try SecretKernel(fixture.configuration(.bytes(written)))
        for (slot, value) in values { #expect(kernel.getSecret(plugin: slot.plugin, key: slot.key, for: .deployment) == value) }
        // The step-by-step verifier accepts the same bundle.
        _ = try BundleVerifier(trustedAdmins: [KernelFixture.admin]).verify(try SecretBundle(parsing: written))
    }
}
