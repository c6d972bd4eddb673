import Foundation
import SecretModel
import Testing

/// Runs every `Vectors/check/*.txt` case: a small project (txtar-style
/// `-- path --` sections) plus the exact diagnostics `check` must report.
///
/// Header lines before the first section:
/// - `expect: <diagnostic>` — one per expected diagnostic, in report order
///   (`path:line:col: severity: message [CODE]`, paths relative to the case);
///   none means the case must pass cleanly.
/// - `strict: true` — warnings count as errors.
/// Every case gets the shared keys of `Vectors/keys/` under `keys/`, and
/// "now" is fixed at ``CheckVector/now`` so expiry cases are stable.
@Suite("check vectors")
struct CheckVectorTests {
    static let vectors: [CheckVector] = CheckVector.all()

    @Test func thereAreEnoughVectors() {
        #expect(Self.vectors.filter { !$0.expected.isEmpty }.count >= 30)
        #expect(Self.vectors.contains { $0.expected.isEmpty })
    }

    @Test(arguments: vectors)
    func vector(_ vector: CheckVector) throws {
        let root = try vector.materialise()
        defer { try? FileManager.default.removeItem(at: root) }
        let validation = ProjectValidator.load(config: root.appendingPathComponent("secretc.yaml"), now: CheckVector.now)
        let prefix = SourceFile.displayPath(for: root) + "/"
        let actual = validation.log.sorted(strict: vector.strict).map { diagnostic -> String in
            var location = diagnostic.location
            if location.file.hasPrefix(prefix) { location.file.removeFirst(prefix.count) }
            return "\(location): \(diagnostic.severity.rawValue): \(diagnostic.message) [\(diagnostic.code.rawValue)]"
        }
        #expect(actual == vector.expected, "\(vector.name)")
    }
}

struct CheckVector: Sendable, CustomTestStringConvertible {
    static let now = Date(timeIntervalSince1970: 1_780_272_000)  // 2026-06-01T00:00:00Z
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")

    var name: String
    var expected: [String]
    var strict: Bool
    var files: [(path: String, text: String)]

    var testDescription: String { name }

    static func all() -> [CheckVector] {
        let directory = folder.appendingPathComponent("check")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".txt") }.sorted().compactMap { name in
            guard let text = try? String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8) else {
                return nil
            }
            return CheckVector(name: String(name.dropLast(4)), archive: text)
        }
    }

    init(name: String, archive: String) {
        self.name = name
        var expected: [String] = []
        var strict = false
        var files: [(String, String)] = []
        var current: (path: String, lines: [String])?
        func text(_ lines: [String]) -> String {
            var lines = lines
            if lines.last == "" { lines.removeLast() }
            return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
        }
        for line in archive.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("-- "), line.hasSuffix(" --"), line.count > 6 {
                if let current { files.append((current.path, text(current.lines))) }
                current = (String(line.dropFirst(3).dropLast(3)), [])
            } else if current != nil {
                current!.lines.append(line)
            } else if line.hasPrefix("expect: ") {
                expected.append(String(line.dropFirst("expect: ".count)))
            } else if line == "strict: true" {
                strict = true
            }
        }
        if let current { files.append((current.path, text(current.lines))) }
        self.expected = expected
        self.strict = strict
        self.files = files
    }

    /// Writes the case and the shared keys into a fresh temporary folder.
    func materialise() throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("secretc-vector-\(UUID().uuidString)")
        let keys = root.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        let shared = Self.folder.appendingPathComponent("keys")
        for file in try FileManager.default.contentsOfDirectory(atPath: shared.path)
        where file.hasSuffix(".asc") || file.hasSuffix(".gpg") {
            try FileManager.default.copyItem(at: shared.appendingPathComponent(file), to: keys.appendingPathComponent(file))
        }
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        return root
    }
}
