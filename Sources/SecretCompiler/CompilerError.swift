import BundleSeal
import GPG

/// Why a write or read of a bundle was refused. Stable codes as in DESIGN.md;
/// never carries a value.
public struct CompilerError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidInput = "INVALID_INPUT"
        case notFound = "NOT_FOUND"
        case forbidden = "FORBIDDEN"
        case conflict = "CONFLICT"
        case unavailable = "UNAVAILABLE"
    }

    public var code: Code
    public var message: String
    public var hints: [String]

    public init(_ code: Code, _ message: String, hints: [String] = []) {
        self.code = code
        self.message = message
        self.hints = hints
    }

    public var description: String { "\(message) [\(code.rawValue)]" }

    static func seal(_ error: BundleSealError, bundle: String) -> CompilerError {
        switch error {
        case .gpg(let gpg): return .gpg(gpg)
        default: return CompilerError(.conflict, "\(bundle) cannot be trusted: \(error)")
        }
    }

    static func gpg(_ error: GPGError) -> CompilerError {
        switch error {
        case .noSecretKey, .passphraseRequired, .badPassphrase:
            return CompilerError(.forbidden, "\(error)")
        default:
            return CompilerError(.unavailable, "\(error)")
        }
    }
}
