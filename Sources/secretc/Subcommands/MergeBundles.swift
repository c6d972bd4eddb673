import ArgumentParser
import BundleFormat
import BundleSeal
import Foundation

struct MergeBundles: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge-bundles",
        abstract: "git merge driver for bundles: merge writes to different slots from two branches.",
        discussion: """
            Configure once per clone: git config merge.secretc.driver "secretc merge-bundles %O %A %B" \
            (secretc init writes the .gitattributes line). Writes the merge into OURS and exits 0; when both \
            sides wrote the same slot, both changed the policy, or one side compiled while the other wrote, it \
            writes both sides between conflict markers into OURS and exits 1 (a conflict for git): `secretc \
            check` then names both writes and how to resolve. The merge is not re-signed: run \
            `secretc check` after merging.
            """)

    @Argument(help: "The common ancestor (%O).") var base: String
    @Argument(help: "Our version (%A); the result is written here.") var ours: String
    @Argument(help: "Their version (%B).") var theirs: String

    func run() throws {
        func load(_ path: String) throws -> SecretBundle {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIFailure(message: "cannot read \(path)")
            }
            do {
                return try SecretBundle(parsing: Array(data))
            } catch {
                throw CLIFailure(message: "\(path) is not a valid bundle: \(error)")
            }
        }
        let merged: SecretBundle
        do {
            let sides = (base: try load(base), ours: try load(ours), theirs: try load(theirs))
            merged = try BundleMerge.merge(base: sides.base, ours: sides.ours, theirs: sides.theirs)
            try Self.requireExtension(of: [("the common ancestor", sides.base), ("ours", sides.ours), ("theirs", sides.theirs)],
                                      by: merged)
        } catch let conflict as BundleMerge.Conflict {
            // Like git's own conflicts: the file holds both sides between
            // markers, which no reader accepts and `check` explains, so the
            // other side's write can never be lost without a word.
            let marked = Array("<<<<<<< secretc merge conflict: \(conflict)\n".utf8)
                + Array((FileManager.default.contents(atPath: ours) ?? Data())) + Array("=======\n".utf8)
                + Array((FileManager.default.contents(atPath: theirs) ?? Data())) + Array(">>>>>>> theirs\n".utf8)
            try? Data(marked).write(to: URL(fileURLWithPath: ours), options: .atomic)
            throw CLIFailure(
                message: "cannot merge the bundle: \(conflict)",
                hints: ["resolve it as `secretc check` explains: take one side, then redo the other side's writes"])
        }
        do {
            try Data(merged.serialized()).write(to: URL(fileURLWithPath: ours), options: .atomic)
        } catch {
            throw CLIFailure(message: "cannot write \(ours)")
        }
    }

    /// The merge must extend every side (docs/bundle-format.md §6a): a side
    /// that dropped writes without an admin's checkpoint naming them — a
    /// bundle put back to an older version — is a rollback, never merged
    /// silently, whatever the other side changed.
    static func requireExtension(of sides: [(name: String, bundle: SecretBundle)], by merged: SecretBundle)
        throws(BundleMerge.Conflict) {
        guard let result = TrustedHistory(merged) else { return }
        for (name, side) in sides {
            guard let history = TrustedHistory(side) else { continue }
            do {
                try history.checkExtended(by: result, naming: { merged.userNames[$0] ?? $0 })
            } catch {
                throw BundleMerge.Conflict(
                    description: "the merge does not extend \(name) (\(error)); one side rolled back writes the other kept")
            }
        }
    }
}
