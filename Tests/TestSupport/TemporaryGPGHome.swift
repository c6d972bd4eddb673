import Foundation

/// A throwaway GnuPG home with a short path (gpg-agent sockets break past
/// ~86 bytes), removed with its agent when ``close()`` runs or it dies.
public final class TemporaryGPGHome: @unchecked Sendable {
    public let path: String

    public init() throws {
        var template = Array("/tmp/g.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestSupportError("mkdtemp failed") }
        path = String(cString: made)
        chmod(path, 0o700)
    }

    deinit { close() }

    /// Kills the home's gpg-agent and deletes the folder; safe to call twice.
    public func close() {
        guard FileManager.default.fileExists(atPath: path) else { return }
        _ = try? run("/usr/bin/env", ["gpgconf", "--homedir", path, "--kill", "all"])
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Runs `gpg --batch` in this home and returns its standard output.
    @discardableResult
    public func gpg(_ arguments: [String], input: [UInt8]? = nil) throws -> [UInt8] {
        let result = try run(
            "/usr/bin/env", ["gpg", "--homedir", path, "--batch", "--yes", "--pinentry-mode", "loopback"] + arguments,
            input: input)
        guard result.status == 0 else {
            throw TestSupportError("gpg \(arguments.joined(separator: " ")) failed: \(result.stderrText)")
        }
        return result.stdout
    }

    /// Makes a key pair (`future-default`: Ed25519 + Cv25519) and returns its fingerprint.
    /// - Parameters:
    ///   - usage: `default` for sign + encrypt subkey, or e.g. `sign` for a signing-only key.
    ///   - expire: gpg's expiry syntax, e.g. `never`, `1d`, or `seconds=1`.
    @discardableResult
    public func generateKey(
        _ name: String, algorithm: String = "future-default", usage: String = "default",
        expire: String = "never", passphrase: String = ""
    ) throws -> String {
        try gpg(["--passphrase", passphrase, "--quick-gen-key", "\(name) <\(name)@example.invalid>",
                 algorithm, usage, expire])
        return try fingerprint(of: "\(name)@example.invalid")
    }

    /// The primary fingerprint of the one key matching `query`.
    public func fingerprint(of query: String) throws -> String {
        let listing = String(decoding: try gpg(["--with-colons", "--list-keys", query]), as: UTF8.self)
        guard let line = listing.split(separator: "\n").first(where: { $0.hasPrefix("fpr:") }) else {
            throw TestSupportError("no key for \(query)")
        }
        return String(line.split(separator: ":", omittingEmptySubsequences: false)[9])
    }

    /// The armored public key.
    public func exportPublic(_ query: String) throws -> String {
        String(decoding: try gpg(["--armor", "--export", query]), as: UTF8.self)
    }

    /// The armored secret key.
    public func exportSecret(_ query: String, passphrase: String = "") throws -> String {
        String(decoding: try gpg(["--passphrase", passphrase, "--armor", "--export-secret-keys", query]), as: UTF8.self)
    }
}

/// A failure in the test harness itself, not in the code under test.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
