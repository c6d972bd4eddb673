/// Whose secrets a lookup asks for. There is no default: a shared resource
/// (a workbook, a scheduled job) runs with its owner's secrets, never the
/// viewer's, and asking for the deployment-wide value is said out loud.
public enum SecretOwner: Sendable, Hashable, CustomStringConvertible {
    /// A user's own slot first, then the deployment-wide slot, then the
    /// environment variable.
    case user(String)
    /// The deployment-wide slot, then the environment variable.
    case deployment

    /// `.user(id)`, or `.deployment` when `id` is nil — for callers whose
    /// own input says which (a `--user` option, a nullable column).
    public init(user id: String?) {
        self = id.map(SecretOwner.user) ?? .deployment
    }

    /// The user's id; nil for `.deployment`.
    public var user: String? {
        if case .user(let id) = self { return id }
        return nil
    }

    public var description: String { user.map { "user '\($0)'" } ?? "deployment" }
}
