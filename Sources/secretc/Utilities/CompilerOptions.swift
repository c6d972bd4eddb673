import ArgumentParser
import Foundation
import GPG
import SecretCompiler
import SecretModel

/// `--env` and the project, shared by the commands that touch a bundle.
struct BundleOptions: ParsableArguments {
    @OptionGroup var project: ProjectOptions

    @Option(help: "The environment (may be left out when only one is declared).", completion: Completions.environments)
    var env: String?

    private var passphrase: String? { LaunchEnvironment.passphrase }

    /// A compiler for the chosen environment of a project that passes `check`.
    func compiler() throws -> Compiler {
        try compiler(cache: Self.writeCache())
    }

    private func compiler(cache: WriteCache?) throws -> Compiler {
        let loaded = try project.loadValidProject()
        var compiler = try secretcRun { try Compiler(project: loaded, environment: env, passphrase: passphrase) }
        compiler.cache = cache
        return compiler
    }

    /// The write cache, unless its folder is unsafe: then a warning, and none.
    static func writeCache() -> WriteCache? {
        guard let cache = WriteCache.standard() else { return nil }
        if let problem = cache.problem {
            Console.note("warning: the write cache folder \(cache.folder.path) \(problem): not used (writes verify everything)")
            return nil
        }
        return cache
    }

    /// Where `set` and `unset` write: the write cache's record of the project
    /// when every file it was read from is unchanged, else the loaded project.
    func writeTarget() throws -> WriteTarget {
        let cache = Self.writeCache()
        if let cache,
           let writer = try secretcRun({
               try SlotWriter.cached(config: project.configURL(), environment: env, cache: cache, passphrase: passphrase)
           })
        {
            return WriteTarget(options: self, cached: writer, compiler: nil)
        }
        return WriteTarget(options: self, cached: nil, compiler: try compiler(cache: cache))
    }
}

/// A write through the write cache, or through the loaded project when the
/// cache has no record of the bundle as it is (then the project is loaded).
struct WriteTarget {
    let options: BundleOptions
    let cached: SlotWriter?
    let compiler: Compiler?

    /// The environment the write goes to.
    var environmentName: String { cached?.environmentName ?? compiler?.environmentName ?? options.env ?? "?" }

    func write(_ request: SlotWriter.Request, _ owner: OwnerOptions) throws -> (report: WriteReport, environment: String) {
        try write(request, plugin: owner.plugin, user: owner.user, as: owner.signer)
    }

    func write(_ request: SlotWriter.Request, plugin: String, user: String?, as signer: String?) throws
        -> (report: WriteReport, environment: String)
    {
        if let cached, let report = try secretcRun({ try cached.write(request, plugin: plugin, user: user, as: signer) }) {
            return (report, cached.environmentName)
        }
        let compiler = try self.compiler ?? options.compiler()
        let report = try secretcRun { try compiler.write(request, plugin: plugin, user: user, as: signer) }
        return (report, compiler.environment.name.value)
    }
}

/// Runs compiler work, turning its errors into `secretc: error:` lines and exit 1.
func secretcRun<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CompilerError {
        throw CLIFailure(message: error.message, hints: error.hints, code: error.code.rawValue)
    } catch let error as GPGError {
        throw CLIFailure(message: "\(error)")
    }
}
