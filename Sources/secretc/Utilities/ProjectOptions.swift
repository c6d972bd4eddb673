import ArgumentParser
import Foundation
import SecretModel

/// `--config PATH`, shared by every command that reads a project.
struct ProjectOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The declarations file (default: secretc.yaml here or in the nearest folder above).", valueName: "path"))
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
        return found
    }

    /// Validates the project; throws when it has errors, after printing them.
    func loadValidProject() throws -> Project {
        let validation = ProjectValidator.load(config: try configURL())
        let errors = validation.log.sorted().filter { $0.severity == .error }
        guard let project = validation.project, errors.isEmpty else {
            let formatter = DiagnosticFormatter(format: .text, colour: false, sources: validation.sources)
            FileHandle.standardError.write(Data(formatter.render(errors).utf8))
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
