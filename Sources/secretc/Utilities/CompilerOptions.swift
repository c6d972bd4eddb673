import ArgumentParser
import Foundation
import GPG
import SecretCompiler
import SecretModel

/// `--env` and the project, shared by the commands that touch a bundle.
struct BundleOptions: ParsableArguments {
    @OptionGroup var project: ProjectOptions

    @Option(help: "The environment (may be left out when only one is declared).")
    var env: String?

    /// A compiler for the chosen environment of a project that passes `check`.
    func compiler() throws -> Compiler {
        let loaded = try project.loadValidProject()
        return try secretcRun {
            try Compiler(
                project: loaded, environment: env, passphrase: ProcessInfo.processInfo.environment["SECRETC_PASSPHRASE"])
        }
    }
}

/// Runs compiler work, turning its errors into `secretc: error:` lines and exit 1.
func secretcRun<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CompilerError {
        throw CLIFailure(message: error.message, hints: error.hints)
    } catch let error as GPGError {
        throw CLIFailure(message: "\(error)")
    }
}
