import ArgumentParser
import SecretCompiler
import SecretModel

struct Unset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete values; without KEYs, every slot the owner has for PLUGIN (disconnect).",
        discussion: "Reserved slots are refused: un-reserve them in the declarations and compile first.")

    @OptionGroup var options: BundleOptions

    @OptionGroup var owner: OwnerOptions

    @Argument(help: "The keys to delete (default: all of them).", completion: Completions.keys)
    var keys: [String] = []

    func run() throws {
        let target = try options.writeTarget()
        let (report, environment) = try target.write(keys.isEmpty ? .disconnect : .upsert(keys.map { ($0, nil) }), owner)
        Console.out(report.summary(environment: environment))
    }
}
