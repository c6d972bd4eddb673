import SecretCore
import SecretModel

enum FilterOptions {
    /// A filter that names nothing declared is a mistake, not an empty answer.
    static func requireDeclared(_ project: Project, env: String?, user: String?, plugin: String?) throws {
        let declarations = project.declarations
        func undeclared(_ what: String, _ name: String, _ names: [String]) -> CLIFailure {
            CLIFailure(
                message: "\(what) '\(name)' is not declared\(Suggestion.hint(for: name, in: names))",
                hints: ["declared: \(names.joined(separator: ", "))"], code: "NOT_FOUND")
        }
        if let env, !declarations.environments.contains(where: { $0.name.value == env }) {
            throw undeclared("environment", env, declarations.environments.map(\.name.value))
        }
        if let plugin, !declarations.plugins.contains(where: { $0.slug.value == plugin }) {
            throw undeclared("plugin", plugin, declarations.plugins.map(\.slug.value))
        }
        if let user, user != "-", !declarations.users.contains(where: { $0.id.value == user }) {
            throw undeclared("user", user, declarations.users.map(\.id.value))
        }
    }
}
