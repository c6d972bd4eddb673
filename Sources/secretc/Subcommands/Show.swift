import ArgumentParser
import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretCompiler
import SecretCore

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a bundle as readable lines — slots, writers, policy — never a value (git's textconv).",
        discussion: """
            One line per slot with its state, who last wrote it and when (set, rotated, deleted, re-sealed), its \
            metadata; the policy, recipients, admins and writers; every write batch. With \
            `git config diff.secretc.textconv "secretc show"` and `diff=secretc` in .gitattributes, `git diff` \
            and `git log -p` show bundle changes slot by slot. Signatures are checked against the bundle's own \
            admins, for display only: `secretc check` verifies against the declarations.
            """)

    @Argument(help: "The bundle file.", completion: .file(extensions: ["bundle"]))
    var file: String

    func run() throws {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file)))
        } catch {
            throw CLIFailure(message: "cannot read \(file): \(error.localizedDescription)")
        }
        guard !bytes.isEmpty else { return }  // a file added or deleted: nothing on that side
        let bundle: SecretBundle
        do {
            bundle = try SecretBundle(parsing: bytes)
        } catch {
            // Still show something a diff can use: the lines, after why.
            Console.out("NOT A READABLE SECRETC BUNDLE: \(VisibleText.escaped("\(error)"))\n")
            Console.out(VisibleText.escaped(String(decoding: bytes, as: UTF8.self)) + "\n")
            return
        }
        Console.out(Self.render(bundle))
    }

    static func render(_ bundle: SecretBundle) -> String {
        let verified: BundleVerifier.Verified?
        let problem: String?
        do {
            verified = try BundleVerifier(trustedAdmins: Set(bundle.admins), upgrading: true).verify(bundle)
            problem = nil
        } catch {
            verified = nil
            problem = error.description
        }
        // Unverified, a signer is only what the bundle claims: say so at
        // every name, so a forged write never reads as an admin's.
        let name = { (fingerprint: String) in
            problem == nil ? bundle.principalName(of: fingerprint) : "\(bundle.principalName(of: fingerprint)) (claimed, not verified)"
        }
        let signedAt = verified?.policySignedAt ?? 0
        let entries = AuditTrail.entries([(bundle, policySignedAt: signedAt, nil)])
        var last: [SlotKey: (AuditEntry.Action, String, Int)] = [:]
        for entry in entries {
            for change in entry.changes { last[change.slot] = (change.action, name(entry.signer), entry.time) }
        }

        var out = "secretc bundle: environment \(VisibleText.escaped(bundle.environment)), format \(bundle.formatVersion)\n"
        out += problem.map { "NOT VERIFIED: \(VisibleText.escaped($0))\n" }
            ?? "verified against its own admins (`secretc check` verifies against the declarations)\n"
        if let policy = bundle.policy {
            out += "policy \(bundle.policySerial) signed by \(name(policy.signer))"
                + (signedAt > 0 ? " at \(Log.time(signedAt))" : "") + "\n"
        }
        out += "recipients: \(bundle.recipients.map(name).sorted().joined(separator: ", "))\n"
        // With fingerprints: a name is only what a key calls itself, so a swapped key must show.
        out += "admins: \(bundle.admins.map { "\(name($0)) (\($0.suffix(16)))" }.sorted().joined(separator: ", "))\n"
        out += "writers: \(bundle.users.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.suffix(16)))" }.joined(separator: ", "))\n"
        let width = bundle.slots.map { $0.slot.description.count }.max() ?? 0
        for line in bundle.slots {
            let slot = line.slot.description.padding(toLength: width, withPad: " ", startingAt: 0)
            var state = "no value"
            if line.value != nil, let (action, writer, time) = last[line.slot] {
                state = "\(action.rawValue) by \(writer)  \(Log.time(time))"
            } else if line.value != nil {
                state = "has a value"
            }
            var notes: [String] = ["env \(line.attributes.env)"]
            if line.attributes.reserved { notes.append("reserved") }
            if line.attributes.inactive { notes.append("inactive") }
            if let expires = line.attributes.expires { notes.append("expires \(Log.time(expires).prefix(10))") }
            if let scopes = line.attributes.scopes { notes.append("scopes \(scopes.joined(separator: ","))") }
            out += "slot \(slot)  \(state)  (\(VisibleText.escaped(notes.joined(separator: "; "))))\n"
        }
        for entry in entries where entry.kind != .policy {
            let what = entry.kind == .checkpoint ? "re-seal" : "write"
            let changes = entry.changes.map { "\($0.action.rawValue) \($0.slot)" }.joined(separator: ", ")
            out += "\(what) \(Log.time(entry.time)) \(entry.id.prefix(12)) by \(name(entry.signer)): \(changes)\n"
        }
        return out
    }
}
