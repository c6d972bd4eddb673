import ArgumentParser
import SecretCompiler
import SecretModel

struct Unset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete values; without KEYs, every slot the owner has for PLUGIN (disconnect).",
        discussion: "Reserved slots are refused: un-reserve them in the declarations and compile first.")

    @OptionGroup var options: BundleOptions

    @Argument(help: "The plugin slug.")
    var plugin: String

    @Option(help: "Whose slots (default: deployment-wide).")
    var user: String?

    @Option(name: .customLong("as"), help: "The key name to sign with.")
    var signer: String?

    @Argument(help: "The keys to delete (default: all of them).")
    var keys: [String] = []

    func run() throws {
        let compiler = try options.compiler()
        let report = try secretcRun {
            keys.isEmpty
                ? try compiler.disconnect(plugin: plugin, user: user, as: signer)
                : try compiler.write(plugin: plugin, user: user, changes: keys.map { ($0, nil) }, as: signer)
        }
        Console.out(report.summary(environment: compiler.environment.name.value))
    }
}
