import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretKernel
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

    /// alice's write, with `change` applied to her epoch, re-signed by her when `resign`.
    func aliceWrite(resign: Bool, _ change: (inout Epoch) -> Void) throws -> [UInt8] {
        var bundle = try SecretBundle(parsing: try fixture.written([aliceToken: "github_pat_EXAMPLE_alice_rotated_0"], by: "alice"))
        var epoch = bundle.epochs.removeLast()
        change(&epoch)
        if resign {
            let home = try TemporaryGPGHome()
            defer { home.close() }
            try home.gpg(["--import", KernelFixture.secretKey("alice").path])
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
        let bytes = try aliceWrite(resign: false) { $0.dataKeyMessage = Self.bomb }
        let (error, seconds) = load(bytes)
        #expect(error?.kind == .verificationFailed)
        #expect(error?.message.contains("bad signature") == true, "\(String(describing: error))")
        // Decompressing 300 MB takes seconds; refusing before gpg takes milliseconds.
        #expect(seconds < 1)
    }

    /// Finding 2: a bomb its writer signed is cut off at 33 bytes of output.
    @Test func aSignedBombIsCutOffAtTheDataKeysSize() throws {
        let bytes = try aliceWrite(resign: true) { $0.dataKeyMessage = Self.bomb }
        let (error, seconds) = load(bytes)
        #expect(error?.message.contains("data key is not 32 bytes") == true, "\(String(describing: error))")
        #expect(seconds < 1)
    }

    /// Finding 7: a staging bundle copied over production is refused by a
    /// loader told it runs in production.
    @Test func aBundleOfAnotherEnvironmentIsRefused() throws {
        var configuration = fixture.configuration()
        configuration.expectedEnvironment = "staging"
        #expect(throws: SecretKernelError.self) { try SecretKernel(configuration) }
        configuration.expectedEnvironment = "production"
        #expect(try SecretKernel(configuration).getSecret("github", "APP_ID") == "123456")
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
        for (slot, value) in values { #expect(kernel.getSecret(slot.plugin, slot.key) == value) }
        // The step-by-step verifier accepts the same bundle.
        _ = try BundleVerifier(trustedAdmins: [KernelFixture.admin]).verify(try SecretBundle(parsing: written))
    }
}
