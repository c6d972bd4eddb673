import ArgumentParser
import Foundation
import SecretModel

/// `--config PATH`, shared by every command that reads a project.
struct ProjectOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The declarations file (default: secretc.yaml here or in the nearest folder above).", valueName: "path"),
        completion: .file(extensions: ["yaml", "yml"]))
    var config: String?

    /// The declarations file to read.
    func configURL() throws -> URL {
        if let config {
            let url = URL(fileURLWithPath: config)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw CLIFailure(message: "config file '\(config)' does not exist")
            }
            if isDirectory.boolValue {
                let inside = url.appendingPathComponent(Project.configName)
                guard FileManager.default.fileExists(atPath: inside.path) else {
                    throw CLIFailure(message: "'\(config)' is a folder without \(Project.configName)")
                }
                return inside
            }
            return url
        }
        let here = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        guard let found = Project.locate(from: here) else {
            throw CLIFailure(
                message: "no \(Project.configName) in this folder or any folder above it",
                hints: ["run `secretc init` to create one, or pass --config PATH"])
        }
        // Found above the working folder: like git's safe.directory, only
        // when this user (or root) owns it and nobody else may change it —
        // a secretc.yaml another user put in /tmp must not drive a write.
        if found.deletingLastPathComponent().standardizedFileURL.path != here.standardizedFileURL.path,
           let problem = Self.foreignOwnership(found)
        {
            throw CLIFailure(
                message: "\(found.path) \(problem), and was found in a folder above this one: not used",
                hints: ["if you trust it, pass --config \(found.path)"])
        }
        return found
    }

    /// Why `file` (or its folder) may be another user's, or nil: each must
    /// be this user's or root's, and the file writable by nobody else; the
    /// folder may be writable by others only with the sticky bit (as /tmp).
    static func foreignOwnership(_ file: URL) -> String? {
        var info = stat()
        guard stat(file.path, &info) == 0 else { return "cannot be examined" }
        if info.st_uid != geteuid(), info.st_uid != 0 { return "is owned by another user (uid \(info.st_uid))" }
        if info.st_mode & 0o022 != 0 { return "is writable by other users" }
        guard stat(file.deletingLastPathComponent().path, &info) == 0 else { return "cannot be examined" }
        if info.st_uid != geteuid(), info.st_uid != 0 { return "is in a folder owned by another user (uid \(info.st_uid))" }
        if info.st_mode & 0o022 != 0, info.st_mode & S_ISVTX == 0 { return "is in a folder writable by other users" }
        return nil
    }

    /// Validates the project; throws when it has errors, after printing them.
    func loadValidProject() throws -> Project {
        let validation = ProjectValidator.load(config: try configURL())
        let errors = validation.log.sorted().filter { $0.severity == .error }
        guard let project = validation.project, errors.isEmpty else {
            let formatter = DiagnosticFormatter(format: .text, colour: false, sources: validation.sources)
            Console.write(STDERR_FILENO, formatter.render(errors))
            throw CLIFailure(
                message: "the declarations have \(plural(errors.count, "error"))",
                hints: ["run `secretc check` for the full report"])
        }
        return project
    }
}

/// `1 error`, `3 errors`.
func plural(_ count: Int, _ noun: String) -> String {
    "\(count) \(noun)\(count == 1 ? "" : "s")"
}
