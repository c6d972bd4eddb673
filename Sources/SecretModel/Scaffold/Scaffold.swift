/// The files `secretc init` writes into a new project.
public enum Scaffold {
    /// `secretc.yaml` for one admin and the given environments, each decrypted
    /// by its own runtime key `runtime-ENV`, with one example plugin.
    public static func declarations(admin: String, environments: [String]) -> String {
        let keys = ([admin] + environments.map { "runtime-\($0)" }).map { "  \($0): keys/\($0).asc" }
        let envs = environments.map {
            "  \($0):\n    recipients: [runtime-\($0)]     # keys that decrypt this bundle at boot\n"
                + "    bundle: secrets/\($0).bundle"
        }
        return """
            # secretc declarations: who may write and read which secret slots.
            # No values live here; see docs/declarations.md for every field.
            version: 1

            keys:                       # public keys only, by name
            \(keys.joined(separator: "\n"))

            admins: [\(admin)]             # sign the policy and may write any slot

            users: {}                   # e.g. alice: { key: alice }  or  bob: {}

            plugins:
              example: plugins/example/manifest.json

            environments:
            \(envs.joined(separator: "\n"))

            slots:
              - plugin: example         # deployment-wide: every key the manifest declares

            """
    }

    /// An example plugin manifest in the seeds' schema.
    public static let exampleManifest = """
        {
          "slug": "example",
          "name": "Example connector",
          "secrets": [
            {
              "key": "API_TOKEN",
              "label": "API token",
              "placeholder": "tok_...",
              "help": "Create a token in the service's settings page.",
              "required": true,
              "pattern": "^tok_[A-Za-z0-9]{8,}$",
              "env": "EXAMPLE_API_TOKEN"
            }
          ]
        }

        """

    /// Lines `init` makes sure `.gitignore` has: secret keys never belong in
    /// git, nor a writer's lock file or a temporary file a killed write left.
    public static let gitignoreLines = [
        "# secretc: secret keys never belong in the repository",
        "*.sec.asc",
        "*.secret.asc",
        "secret-keys/",
        "# secretc: a writer's lock, and what a killed write leaves",
        "*.bundle.lock",
        ".*.bundle.*.tmp",
    ]
}
