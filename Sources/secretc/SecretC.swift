import ArgumentParser
import CLinux
import Foundation
import SecretCore

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
        subcommands: [Check.self, Status.self, Log.self, Show.self, Init.self, Set_.self, Unset.self, Import.self, Compile.self, Get.self, Exec.self, Guard.self, MergeBundles.self]
    )

    /// Runs a command and maps every failure onto the documented exit codes:
    /// 1 for problems found, 2 for usage errors, never a stack trace.
    static func main() {
        // secretc holds values in memory: no core file, no same-user debugger.
        _ = secretc_set_non_dumpable()
        // A closed pipe on the other end is an error to report, not a signal that kills.
        signal(SIGPIPE, SIG_IGN)
        LaunchEnvironment.takeSecrets()
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
            // The parser's message is several lines (the error, then usage): each is escaped on its own.
            let lines = message.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n", omittingEmptySubsequences: false)
            Console.error(String(lines.first ?? ""))
            for line in lines.dropFirst() { Console.write(STDERR_FILENO, VisibleText.escaped(String(line)) + "\n") }
            Foundation.exit(2)
        }
    }
}

/// The environment secretc was started with. Its `SECRETC_GPG_*` variables
/// (a runtime key, a passphrase) are taken out of the process environment
/// before anything runs, so that no gpg, gpg-agent or `exec`'d program
/// started from here inherits them; secretc reads them from here.
enum LaunchEnvironment {
    nonisolated(unsafe) private(set) static var values: [String: String] = [:]

    static func takeSecrets() {
        values = ProcessInfo.processInfo.environment
        for name in values.keys where name.hasPrefix("SECRETC_GPG_") || name == "SECRETC_PASSPHRASE" { unsetenv(name) }
        if values["SECRETC_PASSPHRASE"] != nil {
            Console.note("warning: SECRETC_PASSPHRASE is not read; the passphrase goes in SECRETC_GPG_PASSPHRASE")
        }
    }

    /// The passphrase for a secret key, when one is given.
    static var passphrase: String? { values["SECRETC_GPG_PASSPHRASE"] }
}
