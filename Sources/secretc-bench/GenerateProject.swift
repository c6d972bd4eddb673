import ArgumentParser
import Foundation

/// Writes a large synthetic project: N users × the three example plugins, two
/// environments, and K users with keys of their own.
struct GenerateProject: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-project", abstract: "Write a synthetic project of N users × 3 plugins.")

    @Option(help: "Number of users.") var users = 10_000
    @Option(help: "How many of them have a key of their own.") var keyedUsers = 1_000
    @Option(help: "Output folder (replaced).") var output: String
    @Option(help: "Environments: 2 (production, staging) or 1 (production).") var environments = 2

    func run() throws {
        let url = URL(fileURLWithPath: output)
        try Self.generate(at: url, users: users, keyedUsers: keyedUsers, environments: environments)
        print("wrote \(url.path)")
    }

    /// The example's three manifests, copied so the project looks like a real deployment.
    static let exampleRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../examples/gridos").standardizedFileURL

    static func generate(at root: URL, users: Int, keyedUsers: Int, environments: Int = 2) throws {
        let manager = FileManager.default
        try? manager.removeItem(at: root)
        try manager.createDirectory(at: root.appendingPathComponent("keys"), withIntermediateDirectories: true)
        for plugin in ["shopify", "stripe", "github"] {
            let folder = root.appendingPathComponent("plugins/\(plugin)")
            try manager.createDirectory(at: folder, withIntermediateDirectories: true)
            try manager.copyItem(
                at: exampleRoot.appendingPathComponent("plugins/\(plugin)/manifest.json"),
                to: folder.appendingPathComponent("manifest.json"))
        }
        for key in ["ops", "runtime-production", "runtime-staging"] {
            try manager.copyItem(
                at: exampleRoot.appendingPathComponent("keys/\(key).asc"), to: root.appendingPathComponent("keys/\(key).asc"))
        }
        let names = (1...users).map { String(format: "u%05d", $0) }
        try generateUserKeys(Array(names.prefix(keyedUsers)), into: root.appendingPathComponent("keys"))

        var yaml = "version: 1\nkeys:\n  ops: keys/ops.asc\n  runtime-production: keys/runtime-production.asc\n"
        if environments > 1 { yaml += "  runtime-staging: keys/runtime-staging.asc\n" }
        for name in names.prefix(keyedUsers) { yaml += "  \(name): keys/\(name).asc\n" }
        yaml += "admins: [ops]\nusers:\n"
        for (index, name) in names.enumerated() { yaml += index < keyedUsers ? "  \(name): { key: \(name) }\n" : "  \(name): {}\n" }
        yaml += "plugins:\n"
        for plugin in ["shopify", "stripe", "github"] { yaml += "  \(plugin): plugins/\(plugin)/manifest.json\n" }
        yaml += "environments:\n  production:\n    recipients: [runtime-production]\n"
        if environments > 1 { yaml += "  staging:\n    recipients: [runtime-staging]\n" }
        yaml += "slots:\n  - plugin: github\n"
        for name in names {
            yaml += "  - user: \(name)\n    plugin: shopify\n    keys: [STORE_DOMAIN, ADMIN_TOKEN]\n"
            yaml += "  - user: \(name)\n    plugin: stripe\n"
            yaml += "  - user: \(name)\n    plugin: github\n    keys:\n      TOKEN: { expires: 2030-01-01, scopes: [formulas] }\n"
        }
        try Data(yaml.utf8).write(to: root.appendingPathComponent("secretc.yaml"))
    }

    /// Makes the keys with one gpg run (a batch parameter file) and exports each.
    private static func generateUserKeys(_ names: [String], into folder: URL) throws {
        guard !names.isEmpty else { return }
        var template = Array("/tmp/g.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw BenchFailure("mkdtemp failed") }
        let home = String(cString: made)
        defer {
            _ = try? runQuietly("/usr/bin/env", ["gpgconf", "--homedir", home, "--kill", "all"])
            try? FileManager.default.removeItem(atPath: home)
        }
        var parameters = ""
        for name in names {
            parameters += """
                Key-Type: eddsa
                Key-Curve: ed25519
                Key-Usage: sign
                Subkey-Type: ecdh
                Subkey-Curve: cv25519
                Subkey-Usage: encrypt
                Name-Real: \(name)
                Name-Email: \(name)@bench.invalid
                Expire-Date: 0
                %no-protection
                %commit

                """
        }
        let gpg = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback"]
        guard try runQuietly("/usr/bin/env", gpg + ["--gen-key"], input: Data(parameters.utf8)) == 0 else {
            throw BenchFailure("gpg could not generate the benchmark keys")
        }
        for name in names {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = gpg + ["--armor", "--output", folder.appendingPathComponent("\(name).asc").path,
                                       "--export", "\(name)@bench.invalid"]
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
        }
    }
}
