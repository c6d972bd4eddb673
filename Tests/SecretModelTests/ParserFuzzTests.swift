import Foundation
@testable import GPG
@testable import SecretModel
import TestSupport
import Testing

/// Seeded mutation fuzzing of every parser: thousands of damaged inputs, each
/// of which must produce diagnostics (or a model), never a crash or a hang.
@Suite("parser fuzzing")
struct ParserFuzzTests {
    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../examples/gridos").standardizedFileURL

    /// Bytes that mean something to YAML or JSON, favoured when inserting.
    static let interesting = Array(":-{}[],'\"&*!|>#%@`\t\n ?~0".utf8)

    @Test func declarationsParserSurvivesMutations() throws {
        let seed = try String(contentsOf: Self.example.appendingPathComponent("secretc.yaml"), encoding: .utf8)
        var rng = SplitMix64(seed: 0x5EC7E7C)
        for _ in 0..<3_000 {
            let text = mutate(seed, &rng)
            var parser = DeclarationsParser(file: SourceFile(url: Self.example.appendingPathComponent("secretc.yaml"), text: text))
            let (declarations, log) = parser.parse()
            #expect(declarations != nil || log.hasErrors, "a file that yields nothing must say why")
        }
    }

    @Test func manifestParserSurvivesMutations() throws {
        let url = Self.example.appendingPathComponent("plugins/shopify/manifest.json")
        let seed = try String(contentsOf: url, encoding: .utf8)
        var rng = SplitMix64(seed: 0xA11CE)
        for _ in 0..<3_000 {
            var parser = ManifestParser(file: SourceFile(url: url, text: mutate(seed, &rng)))
            let (manifest, log) = parser.parse()
            #expect(manifest != nil || log.hasErrors)
        }
    }

    @Test func keyFileScanSurvivesMutations() throws {
        let armored = Array(try String(contentsOf: Self.example.appendingPathComponent("keys/ops.asc"), encoding: .utf8).utf8)
        let binary = try KeyFile.binary(from: armored)
        var rng = SplitMix64(seed: 0xB0B)
        for round in 0..<5_000 {
            var bytes = round.isMultiple(of: 2) ? binary : armored
            for _ in 0..<(1 + Int(rng.next() % 4)) where !bytes.isEmpty {
                let index = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[index] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.removeSubrange(index...)
                default: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: index)
                }
            }
            _ = try? KeyFile(scanning: bytes)
        }
    }

    private func mutate(_ text: String, _ rng: inout SplitMix64) -> String {
        var bytes = Array(text.utf8)
        for _ in 0..<(1 + Int(rng.next() % 5)) where !bytes.isEmpty {
            let index = Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 5 {
            case 0: bytes[index] = Self.interesting[Int(rng.next() % UInt64(Self.interesting.count))]
            case 1: bytes.remove(at: index)
            case 2: bytes.insert(Self.interesting[Int(rng.next() % UInt64(Self.interesting.count))], at: index)
            case 3: bytes.removeSubrange(index...)
            default: bytes[index] = UInt8(truncatingIfNeeded: rng.next())  // may make invalid UTF-8
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}


