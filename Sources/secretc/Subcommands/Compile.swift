import ArgumentParser
import SecretCompiler

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an environment's bundle, or bring it in line with the declarations (an admin's job).",
        discussion: """
            Does the least the declarations need. A change of users, slots, metadata, manifests or writers' \
            keys re-signs the policy and keeps every write and ciphertext: it needs an admin's secret key only, \
            never a key that reads secrets. A change of recipients (or a removed slot or writer whose writes the \
            bundle still holds) re-seals: every value is read with a recipient's secret key and encrypted again \
            into one checkpoint; compile says so before it starts. --reseal always re-seals (compacting history \
            under a fresh data key).
            """)

    @OptionGroup var options: BundleOptions

    @Option(name: .customLong("as"), help: "The admin key name to sign with.", completion: Completions.signers)
    var signer: String?

    @Flag(help: "Re-seal every value even when re-signing the policy would do (needs a recipient's secret key).")
    var reseal = false

    func run() throws {
        let progress = TerminalProgress()
        progress.report("reading the declarations")
        var compiler = try options.compiler()
        compiler.progress = progress.report
        let path = compiler.file.displayPath
        defer { progress.finish() }
        let report = try secretcRun {
            try compiler.compile(as: signer, mode: reseal ? .reseal : .automatic) { reasons in
                guard reasons != ["--reseal"] else { return }
                progress.finish()
                Console.note("re-sealing \(path): \(reasons.joined(separator: "; ")); this reads every value "
                    + "with a recipient's secret key")
            }
        }
        progress.finish()
        switch report.action {
        case .created:
            Console.out("created \(path), signed by \(report.signer)\n")
        case .upToDate:
            Console.out("\(path) is up to date with the declarations (\(plural(report.values, "value"))); "
                + "nothing to sign (--reseal re-seals anyway)\n")
        case .resigned:
            Console.out("re-signed the policy of \(path), signed by \(report.signer): "
                + "\(plural(report.values, "value")) and every write kept as they are\n")
        case .resealed:
            Console.out("re-sealed \(path): \(plural(report.values, "value")), signed by \(report.signer)\n")
        }
        for slot in report.dropped { Console.note("dropped the value of \(slot), which is no longer declared") }
        for slot in report.unmatched {
            Console.note("warning: the value of \(slot) does not match its manifest's pattern (written before it changed); "
                + "`secretc set` would refuse it now")
        }
        for key in report.changedPatterns {
            Console.note("warning: the pattern of \(key) changed; values written before are not re-checked here: "
                + "a user's value that fails it is unavailable to loaders until rewritten (`secretc compile --reseal` "
                + "with a recipient's key lists them)")
        }
    }
}
