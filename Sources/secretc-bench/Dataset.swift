import ArgumentParser
import BundleFormat
import Foundation
import SecretModel

/// Prepares the N-slot data set the side-by-side benchmark (`scripts/bench`)
/// compares tools on: the generated project, its one-epoch bundle, and the
/// same values in plain YAML for the peer to encrypt. Prints where they are,
/// as JSON.
struct Dataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prepare an N-slot project, bundle and the same values as plain YAML; print their paths as JSON.")

    @Option(help: "Slots in the bundle (5 per user, one environment).") var slots = 5_000
    @Option(help: "Writes that filled the slots: 1, or a history of N epochs.") var epochs = 1
    @Option(help: "Where generated data sets are kept between runs.") var cache = ".bench"

    func run() throws {
        let large = try LargeBundle.prepare(slots: slots, epochs: epochs, cache: cache)
        defer { large.remove() }
        let root = large.config.deletingLastPathComponent()
        let plain = root.appendingPathComponent("plain.yaml")
        if !FileManager.default.fileExists(atPath: plain.path) {
            // The values LargeBundle sealed, one YAML key per slot: "owner/plugin/KEY".
            var text = ""
            for slot in large.project.slots {
                text += "\"\(slot.user ?? "-")/\(slot.plugin)/\(slot.key)\": \"\(LargeBundle.sampleValue(SlotKey(owner: slot.user, plugin: slot.plugin, key: slot.key)))\"\n"
            }
            try Data(text.utf8).write(to: plain, options: .atomic)
        }
        let description: [String: String] = [
            "config": large.config.path, "bundle": large.bundle.path,
            "pristine": root.appendingPathComponent("production.pristine-v3").path, "plain": plain.path,
            "admin": large.admin,
        ]
        let json = try JSONSerialization.data(withJSONObject: description, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }
}
