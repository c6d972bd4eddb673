import Foundation
import GPG
@testable import SecretModel
import SecretCore
import TestSupport
import Testing

@Suite("names, suggestions, dates")
struct NameTests {
    @Test(arguments: [
        (NameKind.user, "alice", true), (.user, "12345", true), (.user, "a.b+c@d-e_f", true),
        (.user, "bo b", false), (.user, "-x", false), (.user, "", false), (.user, "a/b", false),
        (.user, String(repeating: "a", count: 129), false),
        (.plugin, "google-sheets", true), (.plugin, "shop", true), (.plugin, "Shop", false),
        (.plugin, "a_b", false), (.plugin, "a--b", false), (.plugin, "a-", false), (.plugin, "1a", false),
        (.secretKey, "API_KEY_2", true), (.secretKey, "api", false), (.secretKey, "A-B", false),
        (.principal, "runtime-production", true), (.principal, "Ops", false),
        (.environment, "prod-eu", true), (.environment, "p_1", false),
        (.scope, "sync_job", true), (.scope, "Sync", false),
        (.environmentVariable, "_X1", true), (.environmentVariable, "1X", false), (.environmentVariable, "A-B", false),
    ])
    func grammar(kind: NameKind, name: String, accepted: Bool) {
        #expect(kind.accepts(name) == accepted, "\(kind.rawValue) '\(name)'")
    }

    @Test func defaultEnvironmentVariableName() {
        #expect(defaultEnvironmentVariable(plugin: "google-sheets", key: "API_KEY") == "GOOGLE_SHEETS_API_KEY")
        #expect(defaultEnvironmentVariable(plugin: "shopify", key: "TOKEN") == "SHOPIFY_TOKEN")
    }

    @Test func suggestionsCountSwapsAsOneEdit() {
        #expect(Suggestion.editDistance("kye", "key") == 1)
        #expect(Suggestion.editDistance("alcie", "alice") == 1)
        #expect(Suggestion.closest(to: "qouta", in: ["recipients", "bundle", "quota"]) == "quota")
        #expect(Suggestion.closest(to: "zebra", in: ["recipients", "bundle", "quota"]) == nil)
    }

    @Test func expiryDates() throws {
        let day = try #require(ExpiryDate.parse("2027-06-30"))
        #expect(day == Date(timeIntervalSince1970: 1_814_313_600))
        #expect(ExpiryDate.format(day) == "2027-06-30")
        let instant = try #require(ExpiryDate.parse("2027-06-30T12:00:00Z"))
        #expect(instant.timeIntervalSince(day) == 43_200)
        #expect(ExpiryDate.format(instant) == "2027-06-30T12:00:00Z")
        #expect(ExpiryDate.parse("2027-02-30") == nil)
        #expect(ExpiryDate.parse("tomorrow") == nil)
    }
}

@Suite("validating the example")
struct ExampleProjectTests {
    static let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../examples/gridos/secretc.yaml").standardizedFileURL

    @Test func exampleIsClean() throws {
        let validation = ProjectValidator.load(config: Self.config)
        #expect(validation.log.diagnostics.isEmpty, "\(validation.log.diagnostics)")
        let project = try #require(validation.project)
        #expect(project.slots.count == 22)
        #expect(Set(project.keys.keys) == ["ops", "runtime-production", "runtime-staging", "alice", "carol"])
        // bob's Stripe key keeps its metadata; the webhook secret inherits its manifest scopes.
        let bob = project.slots.filter { $0.user == "bob" }
        #expect(bob.map(\.key) == ["SECRET_KEY", "WEBHOOK_SECRET"])
        #expect(bob[0].metadata.reserved && bob[0].metadata.scopes == ["formulas"])
        #expect(bob[1].metadata.scopes == ["webhooks"])
    }

    @Test func statusHasTheSeedShape() throws {
        let project = try #require(ProjectValidator.load(config: Self.config).project)
        let report = StatusReport(environment: "production", user: "alice", plugin: "shopify").build(project)
        #expect(report.count == 1)
        let entry = try #require(report.first)
        #expect(entry.pluginSlug == "shopify")
        #expect(entry.declared.map(\.key) == ["STORE_DOMAIN", "ADMIN_TOKEN"])
        #expect(entry.setKeys.isEmpty)
        #expect(entry.slots.allSatisfy { $0.status == .pending && !$0.hasValue })
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(entry)) as? [String: Any]
        #expect(json?["plugin_slug"] as? String == "shopify")
        #expect(json?["set_keys"] as? [String] == [])
        #expect((json?["declared"] as? [[String: Any]])?.first?["placeholder"] as? String == "myshop.myshopify.com")
        #expect(json?.keys.contains("user") == true)

        let deployment = StatusReport(user: "-").build(project)
        #expect(deployment.map(\.environment) == ["production", "staging"])
        #expect(deployment.allSatisfy { $0.user == nil && $0.pluginSlug == "github" })
    }
}

@Suite("key expiry relative to now")
struct KeyExpiryTests {
    @Test func keysExpiringWithinThirtyDaysWarn() throws {
        let home = try TemporaryGPGHome()
        let fingerprint = try home.generateKey("soon", expire: "10d")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("secretc-expiry-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("keys"), withIntermediateDirectories: true)
        try Data(try home.exportPublic(fingerprint).utf8).write(to: root.appendingPathComponent("keys/soon.asc"))
        let declaration = KeyDeclaration(
            name: Located("soon", at: SourceLocation(file: "secretc.yaml", line: 3, column: 3)),
            path: Located("keys/soon.asc", at: SourceLocation(file: "secretc.yaml", line: 3, column: 9)),
            url: root.appendingPathComponent("keys/soon.asc"))
        var log = DiagnosticLog()
        let keys = KeyInspector(now: Date()).inspect([declaration], into: &log)
        #expect(keys["soon"]?.info.fingerprint == fingerprint)
        #expect(log.diagnostics.count == 1)
        #expect(log.diagnostics.first?.severity == .warning)
        #expect(log.diagnostics.first?.code == .expired)
        #expect(log.diagnostics.first?.message.hasPrefix("key 'soon' (\(fingerprint)) expires on ") == true)

        var later = DiagnosticLog()
        _ = KeyInspector(now: Date().addingTimeInterval(20 * 86_400)).inspect([declaration], into: &later)
        #expect(later.diagnostics.map(\.severity) == [.error])
    }
}

@Suite("diagnostic formats")
struct FormatterTests {
    let diagnostics = [
        Diagnostic(.error, .notFound, "slot names undeclared user 'carol'", at: SourceLocation(file: "secretc.yaml", line: 3, column: 11)),
        Diagnostic(.warning, .unused, "key 'x' is not used, really: 100%", at: SourceLocation(file: "a,b.yaml", line: 1, column: 1)),
    ]

    @Test func textQuotesTheLineWithACaret() {
        let formatter = DiagnosticFormatter(format: .text, sources: ["secretc.yaml": "a: 1\nslots:\n  - user: carol\n"])
        #expect(formatter.render([diagnostics[0]]) == """
            secretc.yaml:3:11: error: slot names undeclared user 'carol' [NOT_FOUND]
                  - user: carol
                          ^

            """)
    }

    @Test func githubAnnotationsAreEscaped() {
        let formatter = DiagnosticFormatter(format: .github)
        #expect(formatter.render(diagnostics) == """
            ::error file=secretc.yaml,line=3,col=11,title=secretc NOT_FOUND::slot names undeclared user 'carol'
            ::warning file=a%2Cb.yaml,line=1,col=1,title=secretc UNUSED::key 'x' is not used, really: 100%25

            """)
    }

    @Test func jsonIsAListOfLocatedDiagnostics() throws {
        let text = DiagnosticFormatter(format: .json).render(diagnostics)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
        #expect(list.count == 2)
        #expect(list[0]["file"] as? String == "secretc.yaml")
        #expect(list[0]["line"] as? Int == 3)
        #expect(list[0]["column"] as? Int == 11)
        #expect(list[0]["severity"] as? String == "error")
        #expect(list[0]["code"] as? String == "NOT_FOUND")
        #expect(DiagnosticFormatter(format: .json).render([]) == "[\n\n]\n")
    }

    @Test func strictPromotesWarnings() {
        var log = DiagnosticLog()
        log.warning(.unused, "w", at: SourceLocation(file: "f", line: 1, column: 1))
        #expect(!log.hasErrors)
        #expect(log.sorted(strict: true).map(\.severity) == [.error])
    }
}

@Suite("reading whole files")
struct FileBytesTests {
    /// Small files are read in one call, large ones in parallel chunks: both
    /// give every byte, in order, including a last chunk that is not whole.
    @Test(arguments: [0, 1, 4095, (4 << 20) - 1, (4 << 20) + 12_345, 9 << 20])
    func readsEveryByte(count: Int) throws {
        let folder = try TemporaryDirectory()
        var state: UInt64 = UInt64(count) | 1
        let bytes = (0..<count).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        let path = folder.url.appendingPathComponent("file").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(FileBytes.read(atPath: path) == bytes)
        #expect(FileBytes.read(atPath: folder.url.appendingPathComponent("missing").path) == nil)
        #expect(FileBytes.read(atPath: folder.url.path) == nil, "a folder is not a file")
    }
}

@Suite("manifests read back from the write cache")
struct ValidatedManifestTests {
    /// A manifest whose bytes passed the full parse reads the same when its
    /// strict JSON pass and pattern compilation are skipped.
    @Test(arguments: ["shopify", "stripe", "github"])
    func aValidatedParseReadsTheSame(_ plugin: String) throws {
        let url = Secretc.packageRoot.appendingPathComponent("examples/gridos/plugins/\(plugin)/manifest.json")
        let file = SourceFile(url: url, text: try String(contentsOf: url, encoding: .utf8))
        let full = try #require(Manifest.parse(file))
        let validated = try #require(Manifest.parse(validated: file))
        #expect(validated.slug.value == full.slug.value && validated.name == full.name)
        #expect(validated.secrets.map(\.key.value) == full.secrets.map(\.key.value))
        #expect(validated.secrets.map { $0.pattern?.value } == full.secrets.map { $0.pattern?.value })
        #expect(validated.secrets.map { $0.env?.value } == full.secrets.map { $0.env?.value })
        #expect(validated.secrets.map(\.required) == full.secrets.map(\.required))
        #expect(full.secrets.contains { $0.pattern != nil } || plugin == "github")
    }
}
