import ArgumentParser

/// Whose slots of which plugin a write touches, and with which key — shared by `set` and `unset`.
struct OwnerOptions: ParsableArguments {
    @Argument(help: "The plugin slug.", completion: Completions.plugins)
    var plugin: String

    @Option(help: "Whose slots (default: deployment-wide).", completion: Completions.users)
    var user: String?

    @Option(name: .customLong("as"), help: "The key name to sign with (default: the user's own key, else an admin's).", completion: Completions.signers)
    var signer: String?
}
