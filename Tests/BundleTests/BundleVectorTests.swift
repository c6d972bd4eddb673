import BundleFormat
import BundleSeal
import Foundation
import GPG
import Logging
@testable import SecretKernel
import TestSupport
import Testing

/// Runs `Vectors/*.txt`: a header (`expect:` ok or the exact error, `pinned:`
/// the trusted admin, `unavailable:` the slots a loader contains), an empty
/// line, then a bundle. Each is parsed, verified step by step, then loaded
/// as a service loads it with the example's EXAMPLE-ONLY runtime key.
/// Regenerate with `swift run secretc-vectors Tests/BundleTests/Vectors`.
@Suite("bundle vectors")
struct BundleVectorTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")
    static let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
        .filter { $0.hasSuffix(".txt") }.sorted()

    @Test func everyKindOfFailureHasAVector() {
        #expect(Self.names.count >= 12)
        #expect(Self.names.contains("valid.txt"))
    }

    @Test(arguments: names)
    func vector(_ name: String) throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent(name)))
        let split = try #require(bytes.firstRange(of: Array("\n\n".utf8)))
        let header = String(decoding: bytes[..<split.lowerBound], as: UTF8.self).split(separator: "\n")
        let expect = try #require(header.first { $0.hasPrefix("expect: ") }).dropFirst("expect: ".count)
        let pinned = try #require(header.first { $0.hasPrefix("pinned: ") }).dropFirst("pinned: ".count)
        let bundleBytes = Array(bytes[split.upperBound...])

        let runtime = try TemporaryGPGHome()
        defer { runtime.close() }
        try runtime.gpg(["--import"], input: Array(try Data(contentsOf: Secretc.packageRoot.appendingPathComponent(
            "examples/gridos/example-secret-keys/runtime-production.EXAMPLE-ONLY.asc"))))
        let outcome: String
        var failure: BundleSealError?
        var unavailable: [String] = []
        do {
            // Steps 1–6, step by step.
            let bundle: SecretBundle
            do { bundle = try SecretBundle(parsing: bundleBytes) } catch { throw BundleSealError.format(error) }
            _ = try BundleVerifier(trustedAdmins: [String(pinned)]).verify(bundle)
            // Step 7 as a loader takes it: a user's unusable write is contained.
            let kernel = try SecretKernel(.init(
                bundle: .bytes(bundleBytes), keys: .gnupgHome(runtime.path), trustedAdmins: [String(pinned)],
                fallbackEnvironment: [:], logger: Logger(label: "vectors", factory: { _ in SwiftLogNoOpLogHandler() })))
            for line in bundle.slots where line.value != nil {
                do {
                    _ = try kernel.slotValue(plugin: line.slot.plugin, key: line.slot.key, of: SecretOwner(user: line.slot.owner))
                } catch where error.reason == .unavailable {
                    unavailable.append(line.slot.description)
                } catch {}
            }
            outcome = "ok"
        } catch let error as BundleSealError {
            outcome = error.description
            failure = error
        } catch let error as SecretKernelError {
            outcome = error.message.hasPrefix("bundle: ") ? String(error.message.dropFirst("bundle: ".count)) : error.message
            failure = .undecryptable(error.message)
        }
        #expect(outcome == String(expect), "\(name)")
        try expectSameVerdictInProcess(bundleBytes, pinned: String(pinned), gpgHome: runtime.path, refused: outcome != "ok", name)
        let promised = header.first { $0.hasPrefix("unavailable: ") }.map {
            $0.dropFirst("unavailable: ".count).split(separator: ", ").map(String.init)
        } ?? []
        #expect(unavailable == promised, "\(name)")

        // The loaders' fast path (steps 1–6 on the scanned bytes) reaches the same verdict.
        let fast = Self.fastPath(bundleBytes, pinned: String(pinned))
        switch failure {
        case nil, .undecryptable?:  // decryption is not part of steps 1–6
            #expect(fast == nil, "\(name)")
        case .inconsistent?:
            // The fast path's per-slot messages are terser; the loader names the slot step by step.
            guard case .inconsistent? = fast else { Issue.record("\(name): fast path: \(String(describing: fast))"); break }
        case let expected?:
            #expect(fast == expected, "\(name)")
        }
    }

    /// Writes within one second share its time and are ordered by their
    /// chain: the second write is served though its id sorts first.
    @Test func theLaterOfTwoWritesInOneSecondIsServed() throws {
        let bytes = Array(try Data(contentsOf: Self.folder.appendingPathComponent("same-second-writes.txt")))
        let split = try #require(bytes.firstRange(of: Array("\n\n".utf8)))
        let bundle = try SecretBundle(parsing: Array(bytes[split.upperBound...]))
        let (first, second) = (bundle.epochs[bundle.epochs.count - 2], bundle.epochs[bundle.epochs.count - 1])
        #expect(first.time == second.time && second.id < first.id && second.parents == .after([first.id]))
        let key = Array(try Data(contentsOf: Secretc.packageRoot.appendingPathComponent(
            "examples/gridos/example-secret-keys/runtime-production.EXAMPLE-ONLY.asc")))
        let kernel = try SecretKernel(.init(
            bundle: .bytes(Array(bytes[split.upperBound...])), keys: .armoredSecretKey(SecureBytes(key)),
            trustedAdmins: [bundle.admins[0]], fallbackEnvironment: [:],
            logger: Logger(label: "vectors", factory: { _ in SwiftLogNoOpLogHandler() })))
        #expect(try kernel.slotValue(plugin: "github", key: "TOKEN", of: SecretOwner(user: "alice")).value
            == "github_pat_second_of_one_second")
    }

    /// Every route to the data keys reaches gpg's verdict: the key given in
    /// the process and gpg-agent's agreement (``Cv25519Decryptor``) refuse
    /// what gpg refuses, and serve the same value (or none) for every slot.
    func expectSameVerdictInProcess(_ bytes: [UInt8], pinned: String, gpgHome: String, refused: Bool, _ name: String) throws {
        let key = Array(try Data(contentsOf: Secretc.packageRoot.appendingPathComponent(
            "examples/gridos/example-secret-keys/runtime-production.EXAMPLE-ONLY.asc")))
        let logger = Logger(label: "vectors", factory: { _ in SwiftLogNoOpLogHandler() })
        func load(_ keys: SecretKernel.KeySource, gpg: Bool = false) -> SecretKernel? {
            var configuration = SecretKernel.Configuration(
                bundle: .bytes(bytes), keys: keys, trustedAdmins: [pinned], fallbackEnvironment: [:], logger: logger)
            configuration.decryptsWithoutGPG = !gpg
            return try? SecretKernel(configuration)
        }
        // Listed ahead: a load of a few epochs would otherwise leave them to gpg.
        _ = try #require(Cv25519Decryptor.agent(of: gpgHome))
        let routes = [
            ("the key in the process", load(.armoredSecretKey(SecureBytes(key)))),
            ("gpg-agent's agreement", load(.gnupgHome(gpgHome))),
        ]
        let withGPG = load(.gnupgHome(gpgHome), gpg: true)
        guard !refused else {
            for (route, kernel) in routes { #expect(kernel == nil, "\(name): refused by gpg, loaded through \(route)") }
            return
        }
        let reference = try #require(withGPG, "\(name)")
        let bundle = try SecretBundle(parsing: bytes)
        for (route, kernel) in routes {
            let opened = try #require(kernel, "\(name): loaded by gpg, refused through \(route)")
            for line in bundle.slots {
                let owner = SecretOwner(user: line.slot.owner)
                let expected = try? reference.slotValue(plugin: line.slot.plugin, key: line.slot.key, of: owner).value
                let found = try? opened.slotValue(plugin: line.slot.plugin, key: line.slot.key, of: owner).value
                #expect(found == expected, "\(name): \(line.slot) through \(route)")
            }
        }
    }

    /// Steps 1–6 as loaders run them first (in process); nil when they pass.
    static func fastPath(_ bytes: [UInt8], pinned: String) -> BundleSealError? {
        do throws(BundleSealError) {
            let scan: ScannedBundle
            do { scan = try ScannedBundle(scanning: bytes) } catch { throw .format(error) }
            guard let verifier = try ScanVerifier(scan, trustedAdmins: [pinned]) else {
                return .gpg(.engineUnavailable("a signer's key is not checked in process"))
            }
            try verifier.checkAllValues()
            return nil
        } catch {
            return error
        }
    }
}
