@testable import BundleFormat
import Foundation
import TestSupport
import Testing

/// Seeded mutation fuzzing of the bundle parser: every damaged bundle is
/// refused with a line-numbered error or parses into something that writes
/// back canonically; never a crash.
@Suite("bundle parser fuzzing")
struct BundleParserFuzzTests {
    /// The scanner validates base64 without decoding; the materializer
    /// decodes. They must agree on every input, or a scan could accept what
    /// decoding refuses.
    @Test func base64ValidationAgreesWithDecoding() {
        var state: UInt64 = 0xBA5E64
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".utf8) + [UInt8(ascii: "-"), 0]
        var valid = 0
        for _ in 0..<50_000 {
            let length = Int(next() % 13)
            // Mostly alphabet characters, with '=' likelier near the end.
            let field = (0..<length).map { index -> UInt8 in
                if index >= length - 2, next() % 3 == 0 { return UInt8(ascii: "=") }
                return alphabet[Int(next() % UInt64(next() % 8 == 0 ? alphabet.count : 64))]
            }
            let decoded = Base64.decode(field[...])
            #expect(Base64.decodedCount(field[...]) == decoded?.count, "\(String(decoding: field, as: UTF8.self))")
            if let decoded {
                valid += 1
                var out: [UInt8] = []
                Base64.append(decoded, to: &out)
                #expect(out == field, "canonical: re-encoding gives the same text")
            }
        }
        #expect(valid > 1_000)
    }

    /// Large slot sections are scanned in chunks, beside the header, on every
    /// core: the verdicts and line numbers must be those of one pass.
    @Test func largeSlotSectionsScanLikeSmallOnes() throws {
        let example = try String(
            contentsOf: Secretc.packageRoot.appendingPathComponent("examples/gridos/secrets/production.bundle"), encoding: .utf8)
        let header = example.split(separator: "\n").filter { !$0.hasPrefix("slot ") }.map { $0 + "\n" }.joined()
        var lines: [String] = []
        for user in 0..<30_000 {
            lines.append("slot u\(String(format: "%05d", user)) github TOKEN - env=GITHUB_TOKEN;expires=1893456000\n")
        }
        let headerLines = header.split(separator: "\n").count
        func scan(_ slotLines: [String]) -> Result<SecretBundle, BundleFormatError> {
            Result { () throws(BundleFormatError) in try SecretBundle(parsing: Array((header + slotLines.joined()).utf8)) }
        }
        let bytes = Array((header + lines.joined()).utf8)
        let chunks = (bytes.count - header.utf8.count) >> 18
        #expect(chunks == 7, "cut in 7 chunks of as many lines (all lines are as long)")
        let bundle = try scan(lines).get()
        #expect(bundle.slots.count == 30_000)
        #expect(bundle.serialized() == bytes)

        // Errors anywhere, including at and after chunk boundaries, name the right line.
        let boundaries = [1, 4].map { 30_000 * $0 / chunks }
        for position in [10, 14_999, 15_000, 15_001, 29_999] + boundaries.flatMap({ [$0, $0 + 1] }) {
            var swapped = lines
            swapped.swapAt(position - 1, position)
            #expect(throws: BundleFormatError.malformed(line: headerLines + position + 1, reason: "slot lines must be sorted")) {
                try scan(swapped).get()
            }
            var duplicated = lines
            duplicated[position] = duplicated[position - 1]
            #expect(throws: BundleFormatError.malformed(
                line: headerLines + position + 1, reason: "a second line for slot u\(String(format: "%05d", position - 1))/github/TOKEN")
            ) { try scan(duplicated).get() }
            var foreign = lines
            foreign[position] = "admin 2E5035F3951C4CC79B8E447F436EF147770AE473\n"
            #expect(throws: BundleFormatError.malformed(line: headerLines + position + 1, reason: "'admin' line out of order")) {
                try scan(foreign).get()
            }
        }
        // A header error comes first, whatever the slot lines hold.
        var broken = lines
        broken[20_000] = "slot x\n"
        let badHeader = header.replacingOccurrences(of: "\nepoch ", with: "\nepoch x")
        let badEpoch = try #require(header.split(separator: "\n").firstIndex { $0.hasPrefix("epoch ") }) + 1
        let time = header.split(separator: "\n")[badEpoch - 1].split(separator: " ")[1]
        let reason = "'x\(time)' is not a time (seconds since 1970, at most \(SecretBundle.latestTime))"
        #expect(throws: BundleFormatError.malformed(line: badEpoch, reason: reason)) {
            try SecretBundle(parsing: Array((badHeader + broken.joined()).utf8))
        }
    }

    /// Lines are split eight bytes at a time: a carriage return or a tab at
    /// any position of a line, within a word or not, is still found.
    @Test func aCarriageReturnOrTabAnywhereInALineIsRefused() throws {
        let seed = Array(try Data(contentsOf: Secretc.packageRoot.appendingPathComponent("examples/gridos/secrets/production.bundle")))
        let lineStarts = [0] + seed.indices.filter { seed[$0] == UInt8(ascii: "\n") }.map { $0 + 1 }.dropLast()
        let lines = lineStarts.indices.filter { index in
            let tag = seed[lineStarts[index]...].prefix(5)
            return tag.elementsEqual("epoch".utf8) || tag.elementsEqual("slot ".utf8)
        }
        for line in [lines.first!, lines.last!] {
            let start = lineStarts[line]
            let end = seed[start...].firstIndex(of: UInt8(ascii: "\n"))!
            for position in start..<end {
                for byte: UInt8 in [13, 9] {
                    var bytes = seed
                    bytes[position] = byte
                    #expect(throws: BundleFormatError.malformed(line: line + 1, reason: "carriage return or tab")) {
                        try SecretBundle(parsing: bytes)
                    }
                }
            }
        }
    }

    @Test func survivesMutations() throws {
        let seed = Array(try Data(contentsOf: Secretc.packageRoot.appendingPathComponent("examples/gridos/secrets/production.bundle")))
        var state: UInt64 = 0x5EC2E7
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let interesting = Array(" \n;=/.-*".utf8) + [0, 0xFF, UInt8(ascii: "A")]
        let slots = try SecretBundle(parsing: seed).slots.map(\.slot)
            + [SlotKey(owner: "zz", plugin: "zz", key: "ZZ"), SlotKey(owner: nil, plugin: "a", key: "A")]
        var parsed = 0
        for _ in 0..<4_000 {
            var bytes = seed
            for _ in 0..<(1 + Int(next() % 3)) {
                let index = Int(next() % UInt64(bytes.count))
                switch next() % 4 {
                case 0: bytes[index] = interesting[Int(next() % UInt64(interesting.count))]
                case 1: bytes.remove(at: index)
                case 2: bytes.insert(interesting[Int(next() % UInt64(interesting.count))], at: index)
                default: bytes.removeSubrange(index...)
                }
                if bytes.isEmpty { break }
            }
            do {
                let bundle = try SecretBundle(parsing: bytes)
                parsed += 1
                // Whatever parses is canonical: it writes back byte for byte.
                #expect(bundle.serialized() == bytes)
            } catch {
                if case .malformed(let line, _) = error { #expect(line >= 1) }
            }
            // Writers splice only verified bundles, but damaged bytes must still
            // end in an error, never a crash.
            do throws(BundleFormatError) {
                let splice = try BundleSplice(bytes)
                for slot in slots { _ = try? splice.slot(slot) }
                _ = try? splice.slots(owner: "alice", plugin: "shopify")
            } catch {
                if case .malformed(let line, _) = error { #expect(line >= 1) }
            }
        }
        #expect(parsed < 4_000)
    }
}
