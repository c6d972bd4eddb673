import Foundation

/// Encrypts to a set of public keys without importing them: each key is
/// written as a file into a private GnuPG home (no agent, no keyring) and
/// handed to gpg as a recipient file. One gpg process per encryption; the
/// caller's own keyring and gpg.conf are never involved.
public final class KeyFileEncryptor: @unchecked Sendable {
    private let home: TemporaryHome
    private let context: Context
    /// Key file path by the key's fingerprint.
    private let files: [String: String]

    /// - Parameter keys: each public key's fingerprint and its bytes (armored or binary).
    public init(keys: [(fingerprint: String, data: [UInt8])]) throws {
        home = try TemporaryHome(publicKeysOnly: true)
        var files: [String: String] = [:]
        for (index, key) in keys.enumerated() {
            let path = "\(home.path)/recipient-\(index).key"
            guard FileManager.default.createFile(atPath: path, contents: Data(key.data), attributes: [.posixPermissions: 0o600])
            else { throw GPGError.engineUnavailable("cannot write a recipient key into \(home.path)") }
            files[key.fingerprint] = path
        }
        self.files = files
        context = try Context(home: home.path)
    }

    deinit { home.remove() }

    /// Encrypts `plaintext` to the keys with these fingerprints (each given to ``init(keys:)``).
    public func encrypt(_ plaintext: UnsafeRawBufferPointer, to recipients: [String]) throws -> [UInt8] {
        let paths = try recipients.map { fingerprint in
            guard let path = files[fingerprint] else { throw GPGError.keyNotFound(fingerprint) }
            return path
        }
        return try context.encrypt(plaintext, toKeyFiles: paths)
    }

    /// Deletes the private home (also done when the encryptor is released).
    public func remove() { home.remove() }
}
