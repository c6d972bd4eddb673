import Foundation

/// A git revision to compare bundles with (`secretc check --base REV`): the
/// revision a change is reviewed against, whose bundles the change must
/// extend. Files are read from git's objects, never checked out.
public struct BaseRevision: Sendable {
    /// As the user named it (`origin/main`).
    public let name: String
    /// The commit it resolved to.
    public let commit: String
    private let gitDirectory: String

    /// Resolves `name` in the git repository holding `directory`.
    /// - Throws: when git is missing, `directory` is not in a repository, or
    ///   the revision is unknown (a shallow clone lacks it: the hint says
    ///   which `git fetch` brings it).
    public init(_ name: String, in directory: URL) throws(CompilerError) {
        self.name = name
        gitDirectory = directory.path
        guard !name.hasPrefix("-") else {
            throw CompilerError(.invalidInput, "base revision '\(name)' starts with '-'")
        }
        guard let output = Self.git(["rev-parse", "--verify", "--quiet", "\(name)^{commit}"], in: directory.path),
              let commit = String(bytes: output, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              commit.utf8.count >= 40
        else {
            throw CompilerError(
                .notFound, "base revision '\(name)' is not a commit of the repository at \(directory.path)",
                hints: [
                    "a shallow clone (as CI makes) lacks it: `git fetch --no-tags --depth=1 origin <branch>` "
                        + "(in GitHub Actions, `actions/checkout` with `fetch-depth: 0`, or fetch the base ref), "
                        + "then `secretc check --base origin/<branch>`",
                ])
        }
        self.commit = commit
    }

    /// The bytes of `file` (inside the repository) at this revision; nil
    /// when it did not exist there.
    public func contents(of file: URL) throws(CompilerError) -> [UInt8]? {
        let folder = file.deletingLastPathComponent().path
        guard let prefixBytes = Self.git(["rev-parse", "--show-prefix"], in: folder),
              let prefix = String(bytes: prefixBytes, encoding: .utf8)?.trimmingCharacters(in: .newlines)
        else {
            throw CompilerError(.notFound, "\(file.path) is not inside the git repository of \(gitDirectory)")
        }
        let object = "\(commit):\(prefix)\(file.lastPathComponent)"
        guard Self.git(["cat-file", "-e", object], in: folder) != nil else { return nil }
        guard let bytes = Self.git(["cat-file", "blob", object], in: folder) else {
            throw CompilerError(.notFound, "git cannot read \(prefix)\(file.lastPathComponent) at \(name)")
        }
        return bytes
    }

    /// Every version of `file` committed after this revision up to `HEAD`
    /// (on any branch merged since), newest first, at most `limit`.
    public func laterVersions(of file: URL, limit: Int = 1_000) -> [[UInt8]] {
        let folder = file.deletingLastPathComponent().path
        guard let prefixBytes = Self.git(["rev-parse", "--show-prefix"], in: folder),
              let prefix = String(bytes: prefixBytes, encoding: .utf8)?.trimmingCharacters(in: .newlines),
              let listed = Self.git(
                ["rev-list", "--max-count=\(limit)", "\(commit)..HEAD", "--", "\(prefix)\(file.lastPathComponent)"],
                in: Self.root(folder) ?? folder)
        else { return [] }
        return String(decoding: listed, as: UTF8.self).split(separator: "\n").compactMap { commit in
            Self.git(["cat-file", "blob", "\(commit):\(prefix)\(file.lastPathComponent)"], in: folder)
        }
    }

    /// The last version of `file` committed at or before this revision,
    /// when the file is absent here (deleted, or its environment dropped):
    /// the commit that last touched it, and its bytes there — or, when that
    /// commit deleted it, in its parent. nil when it never existed.
    public func lastVersion(of file: URL) -> (commit: String, bytes: [UInt8])? {
        let folder = file.deletingLastPathComponent().path
        guard let prefixBytes = Self.git(["rev-parse", "--show-prefix"], in: folder),
              let prefix = String(bytes: prefixBytes, encoding: .utf8)?.trimmingCharacters(in: .newlines),
              let root = Self.root(folder),
              let listed = Self.git(
                ["log", "-1", "--format=%H", commit, "--", "\(prefix)\(file.lastPathComponent)"], in: root),
              let last = String(bytes: listed, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              last.utf8.count >= 40
        else { return nil }
        for revision in [last, "\(last)^"] {
            if let bytes = Self.git(["cat-file", "blob", "\(revision):\(prefix)\(file.lastPathComponent)"], in: root) {
                return (String(revision.prefix(10)), bytes)
            }
        }
        return nil
    }

    private static func root(_ folder: String) -> String? {
        git(["rev-parse", "--show-toplevel"], in: folder).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines)
        }
    }

    /// Every committed version of `file` reachable from `HEAD`, oldest
    /// first, with its commit (at most `limit`); empty outside a repository.
    public static func history(of file: URL, limit: Int = 10_000) -> [(AuditEntry.Commit, [UInt8])] {
        let folder = file.deletingLastPathComponent().path
        guard let output = git(
                  ["log", "--max-count=\(limit)", "--format=%H%x09%an <%ae>%x09%aI", "--", file.lastPathComponent], in: folder),
              let prefixBytes = git(["rev-parse", "--show-prefix"], in: folder),
              let prefix = String(bytes: prefixBytes, encoding: .utf8)?.trimmingCharacters(in: .newlines)
        else { return [] }
        var versions: [(AuditEntry.Commit, [UInt8])] = []
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n").reversed() {
            let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
            guard fields.count == 3,
                  let bytes = git(["cat-file", "blob", "\(fields[0]):\(prefix)\(file.lastPathComponent)"], in: folder)
            else { continue }  // the commit deleted the file
            versions.append((AuditEntry.Commit(hash: fields[0], author: fields[1], date: fields[2]), bytes))
        }
        return versions
    }

    /// git's standard output in `directory`, or nil when it fails (or is not installed).
    public static func git(_ arguments: [String], in directory: String) -> [UInt8]? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "-C", directory] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return process.terminationStatus == 0 ? Array(bytes) : nil
    }
}
