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

    @Option(help: "Read this bundle file without any declarations (needs SECRETC_TRUSTED_ADMINS).")
    var bundle: String?

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let pinned = environment["SECRETC_TRUSTED_ADMINS"].map(SecretKernel.Configuration.trustedAdmins(from:))
        let value: SecureBytes
        if let bundle {
            guard let pinned, !pinned.isEmpty else { throw CLIFailure.bundleNeedsPins }
            value = try secretcRun {
                try Compiler.read(
                    BundleFile(url: URL(fileURLWithPath: bundle)), plugin: plugin, key: key, user: user,
                    trustedAdmins: pinned, passphrase: environment["SECRETC_PASSPHRASE"])
            }
        } else {
            let compiler = try options.compiler()
            value = try secretcRun {
                try compiler.read(plugin: plugin, key: key, user: user, trustedAdmins: pinned ?? compiler.declaredAdmins)
            }
        }
        value.withUnsafeBytes { FileHandle.standardOutput.write(Data($0)) }
        if isatty(STDOUT_FILENO) == 1 { Console.out("\n") }
    }
}
