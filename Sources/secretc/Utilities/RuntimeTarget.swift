import ArgumentParser
import Foundation
import SecretCompiler
import SecretKernel

/// What `get` and `exec` load, as a service would: a bundle, the environment
/// it must be for, and the pinned admins. The pins come only from
/// `SECRETC_TRUSTED_ADMINS`, never from the repository being read: whoever
/// can edit `secretc.yaml` could otherwise name themselves admin.
struct RuntimeTarget {
    var bundle: String
    var environment: String
    var trustedAdmins: Set<String>

    /// - Parameters:
    ///   - bundle: `--bundle`, read without declarations (then `env` is required).
    ///   - env: `--env`.
    static func resolve(project: ProjectOptions, bundle: String?, env: String?) throws -> RuntimeTarget {
        let variables = ProcessInfo.processInfo.environment
        let target: (bundle: String, environment: String, declared: [String])
        if let bundle {
            guard let env else {
                throw CLIFailure(
                    message: "--bundle needs --env: the environment the bundle must be for",
                    hints: ["secretc \(CommandLine.arguments.dropFirst().first ?? "get") --bundle \(bundle) --env production …"],
                    exitCode: 2)
            }
            target = (bundle, env, [])
        } else {
            let loaded = try project.loadValidProject()
            let compiler = try secretcRun { try Compiler(project: loaded, environment: env) }
            target = (compiler.file.url.path, compiler.environmentName, compiler.declaredAdmins.sorted())
        }
        guard let text = variables["SECRETC_TRUSTED_ADMINS"], !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw CLIFailure(
                message: "no trusted admin is pinned: readers never take admins from the repository they verify",
                hints: ["set SECRETC_TRUSTED_ADMINS to the admins' fingerprints, comma-separated, from a source you trust"]
                    + (target.declared.isEmpty ? [] : ["secretc.yaml declares: \(target.declared.joined(separator: ","))"]))
        }
        let pins: Set<String>
        do {
            pins = try SecretKernel.Configuration.trustedAdmins(from: text)
        } catch {
            throw CLIFailure(message: error.message, hints: ["fingerprints are 40 hex digits, comma-separated"])
        }
        return RuntimeTarget(bundle: target.bundle, environment: target.environment, trustedAdmins: pins)
    }
}
