import ArgumentParser
import Foundation
import SecretCompiler
import SecretCore

/// `secretc guard [FILE...]`: the pre-commit hook that keeps secret keys
/// and consumed plaintext files out of the repository.
struct Guard: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Refuse files that must not be committed: OpenPGP secret keys, and dotenv files `import dotenv` consumed.",
        discussion: """
            With files (as pre-commit passes them), checks those; without, checks what is staged in git, \
            so it also works as a plain .git/hooks/pre-commit. A file is refused when it holds an OpenPGP secret \
            key (armored or binary), or when `secretc import dotenv` imported it (or a file with the same contents) \
            in this clone. Exit status 1 names every refused file; nothing is printed from inside a file.
            """)

    @Argument(help: "The files to check (default: the files staged in git).", completion: .file())
    var files: [String] = []

    func run() throws {
        let here = FileManager.default.currentDirectoryPath
        let imported = ImportRecord(around: here)
        var refused: [String] = []
        for (path, bytes) in try candidates(in: here) {
            if let reason = CommitGuard.refusal(path: path, bytes: bytes, imported: imported) {
                refused.append(path)
                Console.write(STDERR_FILENO, "\(VisibleText.escaped(path)): error: \(reason) [FORBIDDEN]\n")
            }
        }
        guard refused.isEmpty else {
            throw CLIFailure(
                message: "\(plural(refused.count, "file")) must not be committed",
                hints: ["unstage with `git rm --cached FILE`, then delete a consumed plaintext file (`shred -u FILE`) "
                    + "and keep a secret key in your GnuPG home only"],
                code: "FORBIDDEN")
        }
    }

    /// The files to check, as paths relative to the work tree, with their contents.
    private func candidates(in here: String) throws -> [(String, [UInt8])] {
        if !files.isEmpty {
            let root = BaseRevision.git(["rev-parse", "--show-toplevel"], in: here)
                .map { URL(fileURLWithPath: String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines)) }
            return try files.map { file in
                guard let bytes = FileManager.default.contents(atPath: file) else {
                    throw CLIFailure(message: "cannot read \(file)", code: "NOT_FOUND")
                }
                let resolved = URL(fileURLWithPath: file).resolvingSymlinksInPath().path
                let rootPath = root?.resolvingSymlinksInPath().path
                let relative = rootPath.flatMap { resolved.hasPrefix($0 + "/") ? String(resolved.dropFirst($0.count + 1)) : nil }
                return (relative ?? file, Array(bytes))
            }
        }
        guard let listing = BaseRevision.git(["diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR"], in: here) else {
            throw CLIFailure(message: "not in a git work tree, and no files given",
                             hints: ["run it in a clone (it checks the staged files), or name the files to check"])
        }
        let root = BaseRevision.git(["rev-parse", "--show-toplevel"], in: here)
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines) } ?? here
        return listing.split(separator: 0).compactMap { name in
            let path = String(decoding: name, as: UTF8.self)
            // The staged contents, which are what the commit will hold.
            return BaseRevision.git(["cat-file", "blob", ":\(path)"], in: root).map { (path, $0) }
        }
    }
}
