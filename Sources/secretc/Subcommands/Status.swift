import ArgumentParser
import Foundation
import SecretCore
import SecretCompiler
import SecretModel

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show declared slots and which hold a value — never a value. Needs no secret key.",
        discussion: """
            The JSON form is a list of objects in the shape of GET /settings/plugin-secrets/{plugin_slug}: \
            plugin_slug, declared[] and set_keys[], plus environment, user (null for deployment-wide) and slots[].
            """)

    @OptionGroup var project: ProjectOptions

    @Option(help: "Only this environment.", completion: Completions.environments)
    var env: String?

    @Option(help: "Only this user's slots ('-' for deployment-wide slots).", completion: Completions.users)
    var user: String?

    @Option(help: "Only this plugin.", completion: Completions.plugins)
    var plugin: String?

    @Option(help: "Output format: text or json.")
    var format: StatusFormat = .text

    enum StatusFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    func run() throws {
        let loaded = try project.loadValidProject()
        try FilterOptions.requireDeclared(loaded, env: env, user: user, plugin: plugin)
        let checker = BundleChecker(project: loaded)
        let bundles = checker.check()
        let errors = bundles.log.sorted().filter { $0.severity == .error }
        guard errors.isEmpty else {
            Console.write(STDERR_FILENO, DiagnosticFormatter(format: .text).render(errors))
            throw CLIFailure(message: "a bundle cannot be trusted", hints: ["run `secretc check` for the full report"])
        }
        let report = StatusReport(environment: env, user: user, plugin: plugin).build(loaded) {
            checker.state($0, in: bundles)
        }
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            Console.out(VisibleText.jsonEscaped(String(decoding: try encoder.encode(report), as: UTF8.self)) + "\n")
        case .text:
            Console.out(table(report))
        }
    }

    private func table(_ report: [PluginSecretsStatus]) -> String {
        if report.isEmpty { return "no declared slots match\n" }
        var out = ""
        for entry in report {
            out += "\(entry.environment) · \(entry.user ?? "deployment-wide") · \(entry.pluginSlug)\n"
            let labels = Dictionary(entry.declared.map { ($0.key, $0.label) }, uniquingKeysWith: { a, _ in a })
            let keyWidth = max(3, entry.slots.map(\.key.count).max() ?? 0)
            for slot in entry.slots {
                var notes: [String] = []
                if slot.reserved { notes.append("reserved") }
                if let expires = slot.expires { notes.append("expires \(expires)") }
                if let writer = slot.writtenBy, let time = slot.updatedAt { notes.append("by \(writer) \(time)") }
                if let scopes = slot.scopes { notes.append("scopes \(scopes.joined(separator: ","))") }
                let label = VisibleText.escaped(labels[slot.key] ?? "")
                let key = slot.key.padding(toLength: keyWidth, withPad: " ", startingAt: 0)
                let state = slot.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                out += "  \(key)  \(state) \(label)\(notes.isEmpty ? "" : "  (\(notes.joined(separator: "; ")))")\n"
            }
        }
        return out
    }
}
