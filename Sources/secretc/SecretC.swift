import ArgumentParser
import Foundation

@main
struct SecretC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secretc",
        abstract: "A static-config GitOps secrets compiler for plugin credentials.",
        discussion: """
            Declarations (secretc.yaml) and plugin manifests are committed without values; \
            `secretc check` validates them in CI without any secret key.
            Exit status: 0 on success, 1 when problems were found, 2 on usage errors.
            """,
        version: "0.1.0",
        subcommands: [Check.self, Status.self, Init.self, Set_.self, Unset.self, Compile.self, Get.self, Exec.self, MergeBundles.self]
    )

    /// Runs a command and maps every failure onto the documented exit codes:
    /// 1 for problems found, 2 for usage errors, never a stack trace.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CLIFailure {
            Console.report(failure)
            Foundation.exit(failure.exitCode)
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                self.exit(withError: error)  // --help, --version
            }
            var message = fullMessage(for: error)
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            Console.error(message.trimmingCharacters(in: .whitespacesAndNewlines))
            Foundation.exit(2)
        }
    }
}
