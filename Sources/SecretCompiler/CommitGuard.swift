import Crypto
import Foundation
import GPG
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
        if let origin = imported.importedEntry(in: bytes) {
            return "holds \(origin) by `secretc import dotenv`; its values are in the bundle"
        }
        return nil
    }

    /// Whether `bytes` hold an OpenPGP secret key: armored under any header
    /// (a renamed `PUBLIC KEY BLOCK` line hides nothing), binary, compressed,
    /// or as the base64 of an armored key (a Kubernetes Secret, a CI
    /// variable). Files that look like OpenPGP are decoded by gpg itself
    /// (`--list-packets`, in a private home that never starts an agent),
    /// which reads every form gpg would import.
    public static func holdsSecretKey(_ bytes: [UInt8]) -> Bool {
        candidates(bytes).contains(where: gpgFindsSecretKey)
    }

    /// The parts of `bytes` worth asking gpg about.
    static func candidates(_ bytes: [UInt8]) -> [[UInt8]] {
        var found: [[UInt8]] = []
        if let header = bytes.first, header & 0x80 != 0, plausiblePacket(bytes) { found.append(bytes) }
        // An armor header anywhere — at a line's start, or inside a JSON,
        // Python or shell string, a .env value — whatever its type.
        let armor = Array("-----BEGIN PGP ".utf8)
        var searchFrom = 0
        while let range = bytes[searchFrom...].firstRange(of: armor) {
            found.append(armoredBlock(bytes[range.lowerBound...]))
            searchFrom = range.upperBound
        }
        // The base64 of an armored block: "-----BEGIN PGP" encodes to this.
        for marker in ["LS0tLS1CRUdJTiBQR1Ag", "LS0tLS1CRUdJTiBQR1A"] {
            var from = 0
            while let range = bytes[from...].firstRange(of: Array(marker.utf8)) {
                let run = bytes[range.lowerBound...].prefix { isBase64($0) }
                if let decoded = Data(base64Encoded: Data(run), options: .ignoreUnknownCharacters)
                    ?? Data(base64Encoded: Data(run.prefix(run.count - run.count % 4)))
                {
                    found.append(contentsOf: candidates(Array(decoded)))
                }
                from = range.lowerBound + run.count
                if run.isEmpty { from = range.upperBound }
            }
            if !found.isEmpty { break }
        }
        // The base64 of a binary secret key (a Kubernetes Secret's data, a
        // CI variable): a long run that decodes to a secret-key packet.
        var start = 0
        while start < bytes.count {
            guard isBase64(bytes[start]) else {
                start += 1
                continue
            }
            let run = bytes[start...].prefix { isBase64($0) }
            // Its first 12 bytes decide (a packet header and the key's first
            // fields); only a run that starts like a secret key is decoded whole.
            if run.count >= 64, let head = Data(base64Encoded: Data(run.prefix(16))), startsWithSecretKeyPacket(Array(head)),
               let decoded = Data(base64Encoded: Data(run.prefix(run.count - run.count % 4)))
            {
                found.append(Array(decoded))
            }
            start += run.count
        }
        return found
    }

    /// The armored block starting at `block`'s first byte, up to the end of
    /// its `-----END PGP …-----` line, as gpg reads armor: string escapes
    /// (`\n`, `\r`, `\/`) undone and each line's indentation removed.
    private static func armoredBlock(_ block: ArraySlice<UInt8>) -> [UInt8] {
        var end = block.endIndex
        if let footer = block.firstRange(of: Array("-----END PGP ".utf8)) {
            end = block[footer.upperBound...].firstRange(of: Array("-----".utf8))?.upperBound ?? block.endIndex
        }
        var text = String(decoding: block[block.startIndex..<end], as: UTF8.self)
        for (escape, character) in [("\\r\\n", "\n"), ("\\n", "\n"), ("\\r", "\n"), ("\\/", "/"), ("\r\n", "\n")] {
            text = text.replacingOccurrences(of: escape, with: character)
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.drop { $0 == " " || $0 == "\t" }
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// A secret key or subkey packet (tag 5 or 7) of version 4 or 5 with a
    /// known public-key algorithm: what an exported secret key starts with,
    /// and what random bytes almost never do.
    private static func startsWithSecretKeyPacket(_ bytes: [UInt8]) -> Bool {
        guard bytes.count > 8, bytes[0] & 0x80 != 0 else { return false }
        let tag: UInt8, bodyStart: Int
        if bytes[0] & 0x40 != 0 {
            tag = bytes[0] & 0x3F
            bodyStart = bytes[1] < 192 ? 2 : bytes[1] < 224 ? 3 : bytes[1] == 255 ? 6 : 2
        } else {
            tag = (bytes[0] >> 2) & 0x0F
            bodyStart = [2, 3, 5, 1][Int(bytes[0] & 3)]
        }
        guard tag == 5 || tag == 7, bytes.count > bodyStart + 5 else { return false }
        return [4, 5].contains(bytes[bodyStart]) && [1, 2, 3, 16, 17, 18, 19, 22, 25, 27].contains(bytes[bodyStart + 5])
    }

    private static func isBase64(_ byte: UInt8) -> Bool {
        (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
            || byte == 0x2B || byte == 0x2F || byte == 0x3D
    }

    /// A first packet header gpg could read: a known tag and a length that fits.
    private static func plausiblePacket(_ bytes: [UInt8]) -> Bool {
        guard bytes.count > 2 else { return false }
        let header = bytes[0]
        let tag = header & 0x40 != 0 ? header & 0x3F : (header >> 2) & 0x0F
        return (1...19).contains(tag) || (60...63).contains(tag)
    }

    /// gpg's own reading of `bytes`: a secret key or subkey packet anywhere.
    private static func gpgFindsSecretKey(_ bytes: [UInt8]) -> Bool {
        guard let home = try? TemporaryHome(publicKeysOnly: true) else { return false }
        defer { home.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gpg", "--homedir", home.path, "--batch", "--no-tty", "--quiet", "--list-packets"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return false }
        let writer = Thread {
            try? input.fileHandleForWriting.write(contentsOf: Data(bytes))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let listing = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: listing, as: UTF8.self)
        return text.contains(":secret key packet:") || text.contains(":secret sub key packet:")
    }
}

/// The `KEY=value` entries `secretc import dotenv` put in a bundle, so
/// that `secretc guard` recognises them in any file later staged — the
/// consumed file, a copy, a reformatted one — by an HMAC of each entry under
/// a random key of this clone. They are kept in the repository's common git
/// directory (`secretc-imported`, mode 0600; shared by its worktrees, never
/// committed). Nothing is recorded outside a git work tree.
public struct ImportRecord: Sendable {
    public static let fileName = "secretc-imported"

    private var key: [UInt8] = []
    /// Entry HMAC → (file name, date) of its import.
    private var entries: [String: String] = [:]

    public init() {}

    /// The record of the repository around `folder` (empty when there is none).
    public init(around folder: String) {
        guard let file = Self.recordFile(around: folder),
              let text = try? String(contentsOfFile: file, encoding: .utf8)
        else { return }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", maxSplits: 2).map(String.init)
            if fields.count == 2, fields[0] == "key" { key = Self.bytes(hex: fields[1]) }
            if fields.count == 3 { entries[fields[0]] = fields[2] }
        }
    }

    /// Where and when one of `bytes`' dotenv entries was imported; nil when none was.
    public func importedEntry(in bytes: [UInt8]) -> String? {
        guard !key.isEmpty, !entries.isEmpty else { return nil }
        for (name, value) in Self.entries(bytes) {
            if let origin = entries[Self.mac(key, name, value)] { return "\(name)=… imported from \(origin)" }
        }
        return nil
    }

    /// Notes the entries of `bytes` (the file at `file`) as imported into
    /// the project at `folder`; quietly nothing outside a git work tree.
    public static func record(_ file: URL, bytes: [UInt8], project folder: String, now: Date = Date()) {
        guard let path = recordFile(around: folder) else { return }
        let descriptor = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        var record = ImportRecord(around: folder)
        var text = ""
        if record.key.isEmpty {
            record.key = (0..<32).map { _ in UInt8.random(in: 0...255) }
            text += "key\t\(record.key.map { String(format: "%02x", $0) }.joined())\n"
        }
        let origin = "\(VisibleText.escaped(file.lastPathComponent)) on \(now.formatted(.iso8601))"
        for (name, value) in entries(bytes) { text += "\(mac(record.key, name, value))\t\(now.formatted(.iso8601))\t\(origin)\n" }
        _ = Array(text.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }

    /// The entries of a dotenv file; line by line when the whole does not
    /// parse (a file edited since, with a broken line, still counts).
    private static func entries(_ bytes: [UInt8]) -> [(String, [UInt8])] {
        if let whole = try? DotEnv(parsing: bytes) { return whole.entries.map { ($0.key, $0.value) } }
        return bytes.split(separator: 0x0A).flatMap { line in
            ((try? DotEnv(parsing: Array(line))).map { $0.entries.map { ($0.key, $0.value) } }) ?? []
        }
    }

    private static func mac(_ key: [UInt8], _ name: String, _ value: [UInt8]) -> String {
        var message = Array(name.utf8)
        message.append(UInt8(ascii: "="))
        message.append(contentsOf: value)
        defer { message.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
        return HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
            .map { String(format: "%02x", $0) }.joined()
    }

    private static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let byte = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return [] }
            result.append(byte)
        }
        return result
    }

    private static func recordFile(around folder: String) -> String? {
        guard let output = BaseRevision.git(["rev-parse", "--path-format=absolute", "--git-common-dir"], in: folder) else { return nil }
        let directory = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .newlines)
        return directory.isEmpty ? nil : directory + "/" + fileName
    }
}
