import ArgumentParser
import Foundation
import SecretCompiler
import SecretModel

extension DiagnosticFormat: ExpressibleByArgument {}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate declarations, manifests and keys without any secret key.",
        discussion: """
            Reports every problem as file:line:col, not just the first, and exits 1 if any is an error.
            --format github prints workflow annotations for GitHub Actions.

            --base REV compares each bundle with the same file at git revision REV (ROLLBACK): every write \
            there must still be here, signed identically, or re-sealed by an admin's checkpoint, and the policy \
            serial must not go back. A shallow clone needs the base fetched first, e.g. \
            `git fetch --no-tags --depth=1 origin main` then `--base origin/main`.
            """)

    @OptionGroup var project: ProjectOptions

    @Option(help: "Output format: text, json or github.")
    var format: DiagnosticFormat = .text

    @Flag(help: "Treat warnings as errors.")
    var strict = false

    @Option(help: ArgumentHelp(
        "A git revision (the pull request's base) whose bundles these must extend: a rolled-back value, "
            + "a removed write or an older policy is an error.",
        valueName: "rev"))
    var base: String?

    func run() throws {
        let progress = TerminalProgress()
        progress.report("reading the declarations")
        let validation = ProjectValidator.load(config: try project.configURL())
        var log = validation.log
        var sources = validation.sources
        // Bundles are verified once the declarations they are checked against are sound.
        if let loaded = validation.project, !log.hasErrors {
            var checker = BundleChecker(project: loaded)
            if let base {
                let folder = try project.configURL().deletingLastPathComponent()
                do throws(CompilerError) {
                    checker.base = try BaseRevision(base, in: folder)
                } catch {
                    throw CLIFailure(message: error.message, hints: error.hints, code: error.code.rawValue)
                }
            }
            progress.report("verifying the bundles of \(plural(loaded.slots.count, "slot"))")
            let bundles = checker.check()
            log.append(contentsOf: bundles.log)
            sources.merge(bundles.sources) { first, _ in first }
        }
        progress.finish()
        let diagnostics = log.sorted(strict: strict)
        let formatter = DiagnosticFormatter(
            format: format, colour: format == .text && Console.stdoutWantsColour, sources: sources)
        Console.out(formatter.render(diagnostics))

        let errors = diagnostics.filter { $0.severity == .error }.count
        let warnings = diagnostics.count - errors
        if format != .json {
            if let usage = validation.project.flatMap(quotaUsage) { Console.out(usage + "\n") }
            Console.out(summary(validation.project, errors: errors, warnings: warnings) + "\n")
        }
        if errors > 0 { throw ExitCode(1) }
    }

    /// `quota: production 13 of 500 slots, staging 9 of 100`, for environments with a quota.
    private func quotaUsage(_ project: Project) -> String? {
        let counts = project.slotCounts
        let parts = project.declarations.environments.compactMap { environment -> String? in
            guard let quota = environment.quota?.value else { return nil }
            return "\(environment.name.value) \(counts[environment.name.value] ?? 0) of \(quota)"
        }
        return parts.isEmpty ? nil : "quota: " + parts.joined(separator: ", ") + " slots"
    }

    private func summary(_ project: Project?, errors: Int, warnings: Int) -> String {
        if errors > 0 || warnings > 0 {
            let parts = [errors > 0 ? plural(errors, "error") : nil, warnings > 0 ? plural(warnings, "warning") : nil]
            return "check: " + parts.compactMap { $0 }.joined(separator: ", ")
        }
        guard let project else { return "check: ok" }
        let declarations = project.declarations
        return "check: ok (\(plural(declarations.plugins.count, "plugin")), \(plural(declarations.users.count, "user")), "
            + "\(plural(declarations.environments.count, "environment")), \(plural(project.slots.count, "slot")))"
    }
}
