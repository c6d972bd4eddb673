import BundleFormat
import BundleSeal
import Foundation
import GPG
import TestSupport
import Testing

/// The spec is complete enough for an independent implementation: a reader
/// written from docs/bundle-format.md alone (Python, `gpg` and `cryptography`)
/// verifies and decrypts what secretc writes, and refuses what it refuses.
@Suite("reference reader outside Swift")
struct ReferenceReaderTests {
    static let reader = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("reference_reader.py").path

    func read(_ bundle: SecretBundle, _ fixture: BundleFixture) throws -> ProcessResult {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ref-\(UUID().uuidString).bundle")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(bundle.serialized()).write(to: file)
        return try run(
            "/usr/bin/env", ["python3", Self.reader, file.path, fixture.admin],
            environment: ["GNUPGHOME": fixture.runtimeHome.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"])
    }

    @Test func readsWhatSecretcWrites() throws {
        let fixture = try BundleFixture()
        var bundle = try fixture.makeBundle(value: "tok_ünïcødé ✓")
        try fixture.write([fixture.appSlot: "42"], into: &bundle, as: fixture.admin, home: fixture.adminHome)
        let result = try read(bundle, fixture)
        #expect(result.status == 0, "\(result.stderrText)")
        let swift = try BundleOpener.open(
            try BundleVerifier(trustedAdmins: [fixture.admin]).verify(bundle), with: Context(home: fixture.runtimeHome.path))
        let expected = swift.sorted { $0.key < $1.key }.map { slot, value in
            "\(slot)\t\(value.withUnsafeBytes { Data($0).base64EncodedString() })"
        }
        #expect(result.stdoutText.split(separator: "\n").map(String.init) == expected)
    }

    /// Every vector: the reader loads what `expect: ok` vectors promise —
    /// the same slots unavailable — and refuses the others.
    @Test(arguments: BundleVectorTests.names)
    func agreesOnTheVector(_ name: String) throws {
        let bytes = Array(try Data(contentsOf: BundleVectorTests.folder.appendingPathComponent(name)))
        let split = try #require(bytes.firstRange(of: Array("\n\n".utf8)))
        let header = String(decoding: bytes[..<split.lowerBound], as: UTF8.self).split(separator: "\n")
        let pinned = try #require(header.first { $0.hasPrefix("pinned: ") }).dropFirst("pinned: ".count)
        let unavailable = header.first { $0.hasPrefix("unavailable: ") }.map {
            $0.dropFirst("unavailable: ".count).split(separator: ", ").map(String.init)
        } ?? []
        let runtime = try TemporaryGPGHome()
        defer { runtime.close() }
        try runtime.gpg(["--import"], input: Array(try Data(contentsOf: Secretc.packageRoot.appendingPathComponent(
            "examples/gridos/example-secret-keys/runtime-production.EXAMPLE-ONLY.asc"))))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vector-\(UUID().uuidString).bundle")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(bytes[split.upperBound...]).write(to: file)
        let result = try run(
            "/usr/bin/env", ["python3", Self.reader, file.path, String(pinned)],
            environment: ["GNUPGHOME": runtime.path, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"])
        if header.contains("expect: ok") {
            #expect(result.status == 0, "\(name): \(result.stderrText)")
            let contained = result.stdoutText.split(separator: "\n").filter { $0.hasSuffix("\tunavailable") }
                .map { String($0.dropLast("\tunavailable".count)) }
            #expect(contained == unavailable, "\(name)")
        } else {
            #expect(result.status == 1, "\(name): \(result.stdoutText)")
        }
    }

    @Test func refusesWhatSecretcRefuses() throws {
        let fixture = try BundleFixture()
        let bundle = try fixture.makeBundle()
        var dropped = bundle
        dropped.slots[1].value = nil
        let result = try read(dropped, fixture)
        #expect(result.status == 1)
        #expect(result.stderrText.hasPrefix("refused: dropped value alice/shop/TOKEN"))
        var unauthorized = bundle
        try fixture.write([fixture.appSlot: "1"], into: &unauthorized, as: fixture.alice, home: fixture.aliceHome)
        #expect(try read(unauthorized, fixture).stderrText.hasPrefix("refused: unauthorized writer"))
    }
}
