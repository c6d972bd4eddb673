/// Why bytes are not a valid bundle. Messages name the line and the field.
public enum BundleFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The version line names a version this code does not read.
    case unsupportedVersion(found: String)
    /// A line breaks the grammar or the canonical order.
    case malformed(line: Int, reason: String)

    public var description: String {
        switch self {
        case .unsupportedVersion(let found):
            let newer = (Int(found) ?? 0) > SecretBundle.version
            return "bundle format version \(found) is not supported; this secretc reads version \(SecretBundle.version)"
                + (newer ? " (upgrade secretc)" : "")
        case .malformed(let line, let reason):
            return "line \(line): \(reason)"
        }
    }
}
