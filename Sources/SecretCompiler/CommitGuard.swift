import Crypto
import Foundation
import SecretCore

/// What must never be committed next to a bundle: an OpenPGP secret key,
/// and a plaintext dotenv file whose values `import dotenv` already put in
/// the bundle. Used by `secretc guard`, the pre-commit hook.
public enum CommitGuard {
    /// Why `bytes` (the file at `path`, relative to the work tree) must not
    /// be committed, or nil.
    public static func refusal(path: String, bytes: [UInt8], imported: ImportRecord) -> String? {
        if holdsSecretKey(bytes) {
            return "holds an OpenPGP secret key; a secret key never goes into the repository"
        }
        if let when = imported.entry(path: path, bytes: bytes) {
            return "is a plaintext file `secretc import dotenv` consumed (\(when)); its values are in the bundle"
        }
        return nil
    }

    /// An armored secret key block anywhere, or a file that starts with a
    /// binary secret key or secret subkey packet (tag 5 or 7, version 4 or 5).
    public static func holdsSecretKey(_ bytes: [UInt8]) -> Bool {
        if bytes.firstRange(of: Array("-----BEGIN PGP PRIVATE KEY BLOCK-----".utf8)) != nil { return true }
        guard bytes.count > 6 else { return false }
        let header = bytes[0]
        let tag: UInt8
        let bodyStart: Int
        if header & 0xC0 == 0xC0 {  // new format: tag in the low six bits, then a length
            tag = header & 0x3F
            bodyStart = bytes[1] < 192 ? 2 : bytes[1] < 224 ? 3 : 6
        } else if header & 0xC0 == 0x80 {  // old format: tag in bits 5–2, length type in bits 1–0
            tag = (header >> 2) & 0x0F
            bodyStart = [2, 3, 5, 1][Int(header & 0x03)]
        } else {
            return false
        }
        guard tag == 5 || tag == 7, bodyStart < bytes.count else { return false }
        return bytes[bodyStart] == 4 || bytes[bodyStart] == 5
    }
}

/// The dotenv files `secretc import dotenv` consumed in a git work tree:
/// their path and a SHA-256 of their contents (so a copy or a rename is
/// still recognised), one line each in `.git/secretc-imported`, which is
/// never committed. Nothing is recorded outside a git work tree.
public struct ImportRecord: Sendable {
    public static let fileName = "secretc-imported"

    private var byPath: [String: String] = [:]
    private var byDigest: [String: String] = [:]

    public init() {}

    /// The record of the work tree around `folder` (empty when there is none).
    public init(around folder: String) {
        guard let gitDirectory = Self.gitDirectory(around: folder),
              let text = try? String(contentsOfFile: gitDirectory + "/" + Self.fileName, encoding: .utf8)
        else { return }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
            guard fields.count == 3 else { continue }
            byDigest[fields[0]] = fields[1]
            byPath[fields[2]] = fields[1]
        }
    }

    /// When the file at `path` (relative to the work tree), or one with the
    /// same contents, was imported; nil when it was not.
    public func entry(path: String, bytes: [UInt8]) -> String? {
        byDigest[Self.digest(bytes)] ?? byPath[path]
    }

    /// Notes that `file` was imported; quietly nothing outside a work tree.
    public static func record(_ file: URL, bytes: [UInt8], now: Date = Date()) {
        let folder = file.deletingLastPathComponent().path
        guard let gitDirectory = gitDirectory(around: folder),
              let root = BaseRevision.git(["rev-parse", "--show-toplevel"], in: folder)
                  .map({ String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines) })
        else { return }
        let resolved = file.resolvingSymlinksInPath().path
        let rootPath = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        let relative = resolved.hasPrefix(rootPath + "/") ? String(resolved.dropFirst(rootPath.count + 1)) : resolved
        let line = "\(digest(bytes))\t\(now.formatted(.iso8601))\t\(relative)\n"
        let descriptor = open(gitDirectory + "/" + fileName, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = Array(line.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    private static func digest(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    private static func gitDirectory(around folder: String) -> String? {
        BaseRevision.git(["rev-parse", "--absolute-git-dir"], in: folder)
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .newlines) }
    }
}
