import ArgumentParser
import Foundation
import SecretModel

/// Shell completion of names from the declarations: the shell runs
/// `secretc` with the words typed so far, and these read the project the
/// command would read (`--config` among the words, else `secretc.yaml` here
/// or above) — names only, never a value, and nothing when it cannot be read.
enum Completions {
    static let environments = CompletionKind.custom { words, _, prefix in
        matching(prefix, project(words)?.declarations.environments.map(\.name.value))
    }

    static let users = CompletionKind.custom { words, _, prefix in
        matching(prefix, project(words)?.declarations.users.map(\.id.value))
    }

    static let plugins = CompletionKind.custom { words, _, prefix in
        matching(prefix, project(words)?.declarations.plugins.map(\.slug.value))
    }

    static let signers = CompletionKind.custom { words, _, prefix in
        matching(prefix, project(words)?.declarations.keys.map(\.name.value))
    }

    /// The secret keys of the plugin named among the words, as `KEY=` for
    /// `set` (which takes `KEY=VALUE`) and as `KEY` elsewhere.
    static let keys = CompletionKind.custom { words, _, prefix in
        keyNames(words).flatMap { matching(prefix, $0) } ?? []
    }

    static let assignments = CompletionKind.custom { words, _, prefix in
        matching(prefix, keyNames(words)?.map { "\($0)=" })
    }

    private static func keyNames(_ words: [String]) -> [String]? {
        guard let project = project(words) else { return nil }
        let slugs = Set(project.declarations.plugins.map(\.slug.value))
        let named = option("--plugin", in: words) ?? words.first { slugs.contains($0) }
        guard let slug = named, let manifest = project.manifests[slug] else { return nil }
        return manifest.secrets.map(\.key.value)
    }

    private static func matching(_ prefix: String, _ names: [String]?) -> [String] {
        Array(Set(names ?? []).filter { $0.hasPrefix(prefix) }).sorted()
    }

    /// The project the typed command would read, if it can be read.
    private static func project(_ words: [String]) -> Project? {
        let url: URL?
        if let config = option("--config", in: words) {
            let given = URL(fileURLWithPath: config)
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: given.path, isDirectory: &isDirectory)
            url = isDirectory.boolValue ? given.appendingPathComponent(Project.configName) : given
        } else {
            let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            url = Project.locate(from: here).flatMap { found in
                // As the commands do: not from a folder above owned by someone else.
                found.deletingLastPathComponent().standardizedFileURL.path == here.standardizedFileURL.path
                    || ProjectOptions.foreignOwnership(found) == nil ? found : nil
            }
        }
        return url.flatMap { ProjectValidator.load(config: $0).project }
    }

    /// The value of `--name VALUE` or `--name=VALUE` among the words.
    private static func option(_ name: String, in words: [String]) -> String? {
        for (index, word) in words.enumerated() {
            if word == name, index + 1 < words.count { return words[index + 1] }
            if word.hasPrefix(name + "=") { return String(word.dropFirst(name.count + 1)) }
        }
        return nil
    }
}
