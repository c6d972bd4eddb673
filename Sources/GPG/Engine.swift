internal import CGPGME
import Dispatch

/// gpgme's one-time, process-wide initialisation.
enum Engine {
    /// gpgme's version string once initialised, or why it could not be.
    private static let state: Result<String, GPGError> = {
        // gpgme otherwise asks gpgconf where gpg is, three times, before every
        // first operation (~20 ms on the critical path of a `set`); without it,
        // gpgme finds gpg on the PATH.
        _ = gpgme_set_global_flag("disable-gpgconf", "1")
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

    /// Starts gpgme's initialisation on another thread and returns at once.
    /// gpgme asks every installed engine for its version (several processes,
    /// about 10 ms); a program that will need gpg soon calls this first, so
    /// that the work overlaps its own. Later contexts wait for it to finish.
    static func warmUp() {
        DispatchQueue.global(qos: .userInitiated).async { _ = state }
    }

    /// The gpgme library version, e.g. `1.18.0`.
    static var version: String? { try? state.get() }
}
