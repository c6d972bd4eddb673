internal import CGPGME

/// gpgme's one-time, process-wide initialisation.
enum Engine {
    /// gpgme's version string once initialised, or why it could not be.
    private static let state: Result<String, GPGError> = {
        guard let version = gpgme_check_version(nil) else {
            return .failure(.engineUnavailable("gpgme could not be initialised"))
        }
        let engine = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP)
        guard gpgme_err_code(engine) == GPG_ERR_NO_ERROR else {
            return .failure(.engineUnavailable("the gpg program was not found (install gnupg: apt-get install -y gpg gpg-agent)"))
        }
        return .success(String(cString: version))
    }()

    /// Initialises gpgme once; throws if gpg cannot be used.
    static func ensureReady() throws {
        _ = try state.get()
    }

    /// The gpgme library version, e.g. `1.18.0`.
    static var version: String? { try? state.get() }
}
