import ArgumentParser
import SecretCompiler

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or re-seal an environment's bundle (an admin's job).",
        discussion: """
            Creates the bundle with an admin-signed policy, or re-seals it: compacts every write into one, \
            re-encrypts to the currently declared recipients, drops values of slots no longer declared, and \
            re-signs the policy. Needs an admin's secret key, and a recipient's to re-seal existing values.
            """)

    @OptionGroup var options: BundleOptions

    @Option(name: .customLong("as"), help: "The admin key name to sign with.")
    var signer: String?

    func run() throws {
        let compiler = try options.compiler()
        let report = try secretcRun { try compiler.compile(as: signer) }
        let what = report.created ? "created" : "re-sealed"
        Console.out("\(what) \(compiler.file.displayPath): \(plural(report.values, "value")), signed by \(report.signer)\n")
        for slot in report.dropped { Console.note("dropped the value of \(slot), which is no longer declared") }
        for slot in report.unmatched {
            Console.note("warning: the value of \(slot) does not match its manifest's pattern (written before it changed); "
                + "`secretc set` would refuse it now")
        }
    }
}
