import BundleFormat
import BundleSeal
import Foundation
import GPG
import TestSupport
import Testing

/// Runs `Vectors/*.txt`: a header (`expect:` ok or the exact error, `pinned:`
/// the trusted admin), an empty line, then a bundle. Each is parsed,
/// verified and opened with the example's EXAMPLE-ONLY runtime key.
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
        do {
            let bundle: SecretBundle
            do { bundle = try SecretBundle(parsing: bundleBytes) } catch { throw BundleSealError.format(error) }
            let verified = try BundleVerifier(trustedAdmins: [String(pinned)]).verify(bundle)
            let values = try BundleOpener.open(verified, with: Context(home: runtime.path))
            outcome = values.isEmpty ? "no values" : "ok"
        } catch let error as BundleSealError {
            outcome = error.description
        }
        #expect(outcome == String(expect), "\(name)")
    }
}
