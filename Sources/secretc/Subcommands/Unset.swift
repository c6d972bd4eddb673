import ArgumentParser
import SecretCompiler
import SecretModel

struct Unset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete values; without KEYs, every slot the owner has for PLUGIN (disconnect).",
        discussion: "Reserved slots are refused: un-reserve them in the declarations and compile first.")

    @OptionGroup var options: BundleOptions

    @OptionGroup var owner: OwnerOptions

    @Argument(help: "The keys to delete (default: all of them).")
    var keys: [String] = []

    func run() throws {
        let compiler = try options.compiler()
        let report = try secretcRun {
            keys.isEmpty
                ? try compiler.disconnect(plugin: owner.plugin, user: owner.user, as: owner.signer)
                : try compiler.write(
                    plugin: owner.plugin, user: owner.user, changes: keys.map { ($0, nil) }, as: owner.signer)
        }
        Console.out(report.summary(environment: compiler.environment.name.value))
    }
}
