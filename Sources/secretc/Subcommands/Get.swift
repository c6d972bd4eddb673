import ArgumentParser
import Foundation
import GPG
import Logging
import SecretCompiler
import SecretKernel

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one value (needs a recipient's secret key) — for operators.",
        discussion: """
            Loads the bundle as SecretKernel and `secretc exec` do, verifying all of it first: the policy against \
            the pinned admin fingerprints (SECRETC_TRUSTED_ADMINS, comma-separated, required), the bundle's \
            environment against --env, every write's signature, authorization and history, every ciphertext. \
            Prints the value of exactly that slot as stored, with a newline only when standard output is a terminal.
            """)

    @OptionGroup var project: ProjectOptions

    @Option(help: "The environment (may be left out when only one is declared).", completion: Completions.environments)
    var env: String?

    @Argument(help: "The plugin slug.", completion: Completions.plugins)
    var plugin: String

    @Argument(help: "The secret key.", completion: Completions.keys)
    var key: String

    @Option(help: "Whose slot (default: deployment-wide).", completion: Completions.users)
    var user: String?

    @Option(help: "Read this bundle file without any declarations (needs --env).")
    var bundle: String?

    func run() throws {
        let target = try RuntimeTarget.resolve(project: project, bundle: bundle, env: env)
        // Loaded as a service loads it: nothing is printed unless the whole bundle verifies.
        let kernel: SecretKernel
        do {
            kernel = try SecretKernel(.init(
                bundle: .path(target.bundle), keys: .fromVariables(LaunchEnvironment.values), trustedAdmins: target.trustedAdmins,
                expectedEnvironment: target.environment, fallbackEnvironment: LaunchEnvironment.values,
                logger: ConsoleLogHandler.logger))
        } catch {
            throw CLIFailure(message: error.message, hints: Exec.hints(for: error))
        }
        let secret: Secret
        do {
            secret = try kernel.slotValue(plugin: plugin, key: key, of: SecretOwner(user: user))
        } catch {
            let slot = "\(target.environment)/\(user ?? "-")/\(plugin)/\(key)"
            throw CLIFailure(message: "slot \(slot) serves no value: \(error.reason)")
        }
        Console.write(STDOUT_FILENO, secret.value)
        if isatty(STDOUT_FILENO) == 1 { Console.out("\n") }
    }
}
