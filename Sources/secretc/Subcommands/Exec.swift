import ArgumentParser
import Foundation
import GPG
import Logging
import SecretCompiler
import SecretKernel

struct Exec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a command with the environment's secrets as environment variables.",
        discussion: """
            Loads the bundle exactly as the SecretKernel library does — every signature, authorization and \
            ciphertext verified against the pinned admins (SECRETC_TRUSTED_ADMINS, required), the bundle's \
            environment compared with --env — \
            then replaces itself with COMMAND. The command sees the deployment-wide values, plus --user's own \
            values, under their env names (the manifest's `env`, else SLUG_KEY); a user's value wins over the \
            deployment-wide one. Variables already set are kept unless a secret sets the same name. \
            SECRETC_GPG_KEY, SECRETC_GPG_PASSPHRASE and every other SECRETC_GPG_* variable are removed from the \
            command's environment (and from any gpg or gpg-agent secretc starts). Expired, \
            inactive and out-of-scope values are left out. A value its writer signed that cannot be used (its data \
            key does not decrypt, it fails AES-GCM or its pattern) is unavailable: a warning on standard error \
            names the writer and why, and its variable is removed, never replaced by another value; the other \
            values are passed. If loading fails, the command never runs. \
            Values travel only in the environment, never in arguments.

            The runtime key: SECRETC_GPG_KEY (an armored secret key, imported into a private temporary home), \
            else GNUPGHOME.

            --state PATH keeps the history of the bundle that was run (its policy and writes, no value) in PATH, \
            created on first use: a later run refuses a bundle that does not extend it — an older bundle, or one \
            with a write removed or replaced — unless an admin's checkpoint re-sealed it.
            """)

    @OptionGroup var project: ProjectOptions

    @Option(help: "The environment (may be left out when only one is declared).", completion: Completions.environments)
    var env: String?

    @Option(help: "Also pass this user's own values.", completion: Completions.users)
    var user: String?

    @Option(help: "Serve only slots whose scopes include this one (or that have none).")
    var scope: String?

    @Option(help: "Read this bundle file without any declarations (needs --env).")
    var bundle: String?

    @Option(help: ArgumentHelp(
        "Remember the bundle's history in this file and refuse a later bundle that does not extend it (a rollback).",
        valueName: "path"))
    var state: String?

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after `--`.")
    var command: [String] = []

    func run() throws {
        var arguments = command
        if arguments.first == "--" { arguments.removeFirst() }
        guard let program = arguments.first else {
            throw CLIFailure(message: "no command to run", hints: ["secretc exec --env production -- ./server"], exitCode: 2)
        }
        // As started: SECRETC_GPG_KEY for the key source. (The process
        // environment CMD inherits no longer holds any SECRETC_GPG_*.)
        let launched = LaunchEnvironment.values
        let target = try RuntimeTarget.resolve(project: project, bundle: bundle, env: env)
        let kernel: SecretKernel
        do {
            kernel = try SecretKernel(.init(
                bundle: .path(target.bundle), keys: .fromVariables(launched), trustedAdmins: target.trustedAdmins,
                expectedEnvironment: target.environment, scope: scope, fallbackEnvironment: launched,
                logger: ConsoleLogHandler.logger, trustedState: state))
        } catch {
            throw CLIFailure(message: error.message, hints: Self.hints(for: error))
        }
        for name in kernel.unavailableVariables(for: SecretOwner(user: user)) { unsetenv(name) }
        for (name, value) in kernel.environmentVariables(for: SecretOwner(user: user)) { setenv(name, value, 1) }
        let argv = arguments.map { strdup($0) } + [nil]
        execvp(program, argv)
        let reason = String(cString: strerror(errno))
        throw CLIFailure(message: "cannot run \(program): \(reason)", exitCode: errno == ENOENT ? 127 : 126)
    }

    static func hints(for error: SecretKernelError) -> [String] {
        switch error.kind {
        case .keyUnavailable: return ["import a recipient's secret key into GNUPGHOME, or set SECRETC_GPG_KEY"]
        case .verificationFailed: return ["run `secretc check` to see every problem with the bundle"]
        case .rollback:
            return [
                "deploy a bundle that extends the one trusted (a later commit); to go back on purpose, an admin "
                    + "re-seals the wanted values with `secretc compile`, which extends it",
            ]
        default: return []
        }
    }
}
