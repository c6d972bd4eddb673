import ArgumentParser
import BundleFormat
import Foundation
import SecretCompiler
import SecretCore
import SecretModel

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The signed audit trail: who wrote, rotated or deleted which slot, and when — never a value.",
        discussion: """
            Lists every write batch of the bundles (newest first) with its time, its verified writer and each slot \
            it set, rotated or deleted, and every re-seal and policy signature. Everything shown is covered by a \
            signature verified against the declared admins; no secret key is needed. --git also reads every \
            committed version of the bundles, so writes a re-seal compacted away are still listed, each with the \
            commit that first held it.
            """)

    @OptionGroup var project: ProjectOptions

    @Option(help: "Only this environment.", completion: Completions.environments)
    var env: String?

    @Option(help: "Only writes to this user's slots ('-' for deployment-wide slots).", completion: Completions.users)
    var user: String?

    @Option(help: "Only writes to this plugin's slots.", completion: Completions.plugins)
    var plugin: String?

    @Option(help: "Output format: text or json.")
    var format: Status.StatusFormat = .text

    @Flag(help: "Follow the bundles through the git history too.")
    var git = false

    func run() throws {
        let loaded = try project.loadValidProject()
        try FilterOptions.requireDeclared(loaded, env: env, user: user, plugin: plugin)
        var entries: [AuditEntry] = []
        for environment in loaded.declarations.environments.map(\.name.value) where env == nil || env == environment {
            let compiler = try secretcRun { try Compiler(project: loaded, environment: environment) }
            let (trail, unverified) = try secretcRun { try compiler.auditTrail(git: git) }
            for commit in unverified {
                Console.note("warning: \(compiler.file.displayPath) at commit \(commit.hash.prefix(10)) does not verify "
                    + "under the declared admins (or those of a later verified version); its writes are not listed")
            }
            entries += trail
        }
        let filtered = entries.compactMap(matching).sorted { ($0.time, $0.id) > ($1.time, $1.id) }
        let name = { (fingerprint: String) in loaded.keyName(for: fingerprint) ?? fingerprint }
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let json = filtered.map { JSONEntry($0, name: name) }
            Console.out(VisibleText.jsonEscaped(String(decoding: try encoder.encode(json), as: UTF8.self)) + "\n")
        case .text:
            Console.out(filtered.isEmpty ? "no signed writes match\n" : filtered.map { Self.text($0, name: name, summarize: user == nil && plugin == nil) }.joined())
        }
    }

    /// The entry with only the changes the filters ask for; nil when none is left.
    private func matching(_ entry: AuditEntry) -> AuditEntry? {
        guard user != nil || plugin != nil else { return entry }
        guard entry.kind != .policy else { return nil }
        var entry = entry
        entry.changes = entry.changes.filter { change in
            (user == nil || (change.slot.owner ?? "-") == user) && (plugin == nil || change.slot.plugin == plugin)
        }
        return entry.changes.isEmpty ? nil : entry
    }

    /// `2026-12-07 10:31:05Z`: UTC, sortable, to the second.
    static func time(_ seconds: Int) -> String {
        Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601).replacingOccurrences(of: "T", with: " ")
    }

    /// One entry as text: a header line, then one line per slot (a re-seal
    /// is summed up unless `summarize` is false: filters ask for the slots).
    static func text(_ entry: AuditEntry, name: (String) -> String, summarize: Bool) -> String {
        let header: String
        switch entry.kind {
        case .write: header = "write \(entry.id.prefix(12)) by \(name(entry.signer))"
        case .checkpoint: header = "re-seal \(entry.id.prefix(12)) by \(name(entry.signer))"
        case .policy: header = "policy \(entry.serial ?? 0) (\(entry.id.prefix(12))) signed by \(name(entry.signer))"
        }
        var out = "\(time(entry.time))  \(entry.environment)  \(header)\n"
        if let commit = entry.commit {
            out += "    commit \(commit.hash.prefix(10))  \(VisibleText.escaped(commit.author))  \(commit.date)\n"
        }
        if summarize, entry.kind == .checkpoint, entry.changes.allSatisfy({ $0.action == .resealed }) {
            return out + "    re-sealed \(plural(entry.changes.count, "value"))\n"
        }
        for change in entry.changes {
            out += "    \(change.action.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(change.slot)\n"
        }
        return out
    }

    private struct JSONEntry: Encodable {
        struct Change: Encodable {
            var slot: String
            var user: String?
            var plugin: String
            var key: String
            var action: AuditEntry.Action
        }
        var environment: String
        var kind: AuditEntry.Kind
        var id: String
        var time: String
        var signer: String
        var signerFingerprint: String
        var serial: Int?
        var changes: [Change]
        var commit: AuditEntry.Commit?

        init(_ entry: AuditEntry, name: (String) -> String) {
            environment = entry.environment
            kind = entry.kind
            id = entry.id
            time = Date(timeIntervalSince1970: TimeInterval(entry.time)).formatted(.iso8601)
            signer = name(entry.signer)
            signerFingerprint = entry.signer
            serial = entry.serial
            changes = entry.changes.map {
                Change(slot: $0.slot.description, user: $0.slot.owner, plugin: $0.slot.plugin, key: $0.slot.key, action: $0.action)
            }
            commit = entry.commit
        }

        enum CodingKeys: String, CodingKey {
            case environment, kind, id, time, signer, serial, changes, commit
            case signerFingerprint = "signer_fingerprint"
        }
    }
}
