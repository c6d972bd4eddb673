import ArgumentParser
import Foundation
import GPG
import SecretCompiler
import SecretKernel

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one value (needs a recipient's secret key) — for operators.",
        discussion: """
            Verifies the whole bundle first: the policy against the pinned admin fingerprints \
            (SECRETC_TRUSTED_ADMINS, comma-separated; else the declared admins), every write's signature and \
            authorization. Prints the value as stored, with a newline only when standard output is a terminal.
            """)

    @OptionGroup var options: BundleOptions

    @Argument(help: "The plugin slug.")
    var plugin: String

    @Argument(help: "The secret key.")
    var key: String

    @Option(help: "Whose slot (default: deployment-wide).")
    var user: String?

    func run() throws {
        let compiler = try options.compiler()
        let pinned = ProcessInfo.processInfo.environment["SECRETC_TRUSTED_ADMINS"]
            .map(SecretKernel.Configuration.trustedAdmins(from:))
        let value = try secretcRun {
            try compiler.read(plugin: plugin, key: key, user: user, trustedAdmins: pinned ?? compiler.declaredAdmins)
        }
        value.withUnsafeBytes { FileHandle.standardOutput.write(Data($0)) }
        if isatty(STDOUT_FILENO) == 1 { Console.out("\n") }
    }
}
