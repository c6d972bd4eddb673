import BundleSeal
import CLinux
import Crypto
import Foundation
import GPG
import SecretCore
import SecretModel

/// A record, kept outside the repository, that a project passed validation
/// and that an environment's bundle, byte for byte, passed verification
/// against it.
///
/// Loading 20,000 users' declarations and verifying a 100,000-slot bundle
/// takes a second or more; a writer adds one epoch to it. With this record a
/// writer instead hashes the files the project was read from — the
/// declarations, every manifest and key file — and the bundle, and when all
/// of them still hash as recorded, it writes from the recorded
/// ``WriteFacts`` without reading the declarations at all. (The
/// declarations file itself, megabytes for a large deployment, is not even
/// hashed again while it is the very file recorded: same device, inode,
/// size, modification and change time, as for the bundle a writer left.)
/// Anything else (a
/// changed file, a bundle another writer or `git pull` changed, an expiry
/// reached, a damaged record) is a miss: the writer loads and verifies
/// everything, as it would without the record, and records the result.
///
/// An entry holds names, fingerprints, paths and SHA-256 digests — never a
/// value. Readers (`get`, `exec`, the loader) never use it.
public struct WriteCache: Sendable {
    public let folder: URL

    public init(folder: URL) { self.folder = folder }

    /// `SECRETC_CACHE_DIR` (set but empty: no cache), else
    /// `$XDG_CACHE_HOME/secretc`, else `~/.cache/secretc`.
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> WriteCache? {
        if let folder = environment["SECRETC_CACHE_DIR"] {
            return folder.isEmpty ? nil : WriteCache(folder: URL(fileURLWithPath: folder))
        }
        if let base = environment["XDG_CACHE_HOME"], base.hasPrefix("/") {
            return WriteCache(folder: URL(fileURLWithPath: base).appendingPathComponent("secretc"))
        }
        guard let home = environment["HOME"], !home.isEmpty else { return nil }
        return WriteCache(folder: URL(fileURLWithPath: home).appendingPathComponent(".cache/secretc"))
    }

    /// Why the folder must not be used, or nil: it must be a folder (not a
    /// link) of this user that nobody else may write, as ssh requires of
    /// `~/.ssh` — whoever could write there could make a writer skip
    /// checking the bundle. A folder that does not exist yet is fine (it is
    /// made 0700).
    public var problem: String? {
        var info = stat()
        guard lstat(folder.path, &info) == 0 else { return errno == ENOENT ? nil : "cannot be examined" }
        if info.st_mode & S_IFMT != S_IFDIR { return "is not a folder (a symbolic link?)" }
        if info.st_uid != geteuid() { return "is owned by another user (uid \(info.st_uid))" }
        if info.st_mode & 0o022 != 0 { return "may be written by other users (chmod go-w)" }
        return nil
    }

    /// What an entry says about a project whose files all still hash as recorded.
    public struct Entry: Sendable {
        public let facts: WriteFacts
        /// The ``BundleDigest`` of the bundles verified most recently, by
        /// environment (newest first; a few, so that switching branches back
        /// and forth stays fast).
        public var verified: [String: [[UInt8]]]
        /// The bundle file a writer itself left last, by environment: its
        /// identity and its digest (one of `verified`). A bundle that still
        /// has that identity is read without being hashed.
        public var written: [String: Written]
        /// The entry's lines up to its `verified` and `written` lines.
        fileprivate let body: [UInt8]
    }

    public struct Written: Sendable {
        public var identity: FileIdentity
        public var digest: [UInt8]
    }

    static let magic = "secretc-write-cache 3"

    // MARK: Reading

    /// The entry for the project at `config`, when it exists and every file
    /// it was derived from is unchanged; nil otherwise.
    public func entry(config: URL, now: Date = Date()) -> Entry? {
        guard let bytes = FileBytes.read(atPath: entryURL(config).path),
              bytes.starts(with: Array((Self.magic + "\n").utf8)), bytes.suffix(5).elementsEqual("\nend\n".utf8)
        else { return nil }
        var inputs: [String: [UInt8]] = [:]
        var admins: [String] = []
        var keys: [String: WriteFacts.Key] = [:]
        var users = Set<String>()
        var userKeys: [String: String] = [:]
        var environments: [WriteFacts.Environment] = []
        var manifests: [String: Manifest] = [:]
        var verified: [String: [[UInt8]]] = [:]
        var written: [String: Written] = [:]
        var recordedConfig: URL?
        let linesEnd = bytes.count - "end\n".utf8.count
        var bodyEnd = linesEnd
        users.reserveCapacity(bytes.count / 16)
        // Lines of `tag field...`, bytes throughout (an entry lists every
        // user); a path is always the last field and may hold spaces.
        var lineStart = Self.magic.utf8.count + 1
        while lineStart < linesEnd {
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? linesEnd
            defer { lineStart = lineEnd + 1 }
            let line = bytes[lineStart..<lineEnd]
            let tagEnd = line.firstIndex(of: UInt8(ascii: " ")) ?? lineEnd
            // Most lines are users' (`user ID` or `user ID KEY`): read them without splitting.
            if line[..<tagEnd].elementsEqual("user".utf8), tagEnd < lineEnd {
                let id = line[(tagEnd + 1)...]
                guard let space = id.firstIndex(of: UInt8(ascii: " ")) else {
                    users.insert(String(decoding: id, as: UTF8.self))
                    continue
                }
                let user = String(decoding: id[..<space], as: UTF8.self)
                users.insert(user)
                userKeys[user] = String(decoding: id[(space + 1)...], as: UTF8.self)
                continue
            }
            let tag = String(decoding: line[..<tagEnd], as: UTF8.self)
            let splits: Int
            switch tag {
            case "config": splits = 0
            case "key": splits = 3
            case "environment", "input": splits = 2
            default: splits = 1
            }
            let fields = line[min(tagEnd + 1, lineEnd)...]
                .split(separator: UInt8(ascii: " "), maxSplits: splits, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            switch (tag, fields.count) {
            case ("config", 1):
                recordedConfig = URL(fileURLWithPath: fields[0])
            case ("valid-until", 1):
                guard let until = Int(fields[0]), Int(now.timeIntervalSince1970) < until else { return nil }
            case ("input", 3):
                // The file must hash as it did: read it once, keep its bytes.
                // The declarations, whose bytes a write does not need, are
                // neither read nor hashed while they are the very file
                // recorded (see ``FileIdentity``).
                let path = fields[2]
                if path == recordedConfig?.path, fields[1] != "-", FileIdentity(atPath: path)?.description == fields[1] {
                    inputs[path] = []
                    continue
                }
                guard let data = FileBytes.read(atPath: path), Self.bytes(hex: fields[0]) == Array(SHA256.hash(data: data))
                else { return nil }
                inputs[path] = data
            case ("admin", 1): admins.append(fields[0])
            case ("key", 4):
                guard let data = inputs[fields[3]] else { return nil }
                keys[fields[0]] = WriteFacts.Key(
                    fingerprint: fields[1], url: URL(fileURLWithPath: fields[3]), data: data,
                    encryptionSubkey: fields[2] == "-" ? nil : fields[2])
            case ("plugin", 2):
                guard let data = inputs[fields[1]], let text = String(validating: data, as: UTF8.self),
                      let manifest = Manifest.parse(validated: SourceFile(url: URL(fileURLWithPath: fields[1]), text: text))
                else { return nil }
                manifests[fields[0]] = manifest
            case ("environment", 3):
                environments.append(
                    WriteFacts.Environment(name: fields[0], bundle: URL(fileURLWithPath: fields[2]), recipients: Self.recipients(fields[1])))
            case ("verified", 2):
                if verified.isEmpty, written.isEmpty { bodyEnd = lineStart }
                guard let digest = Self.bytes(hex: fields[1]) else { return nil }
                verified[fields[0], default: []].append(digest)
            case ("written", 2):
                if verified.isEmpty, written.isEmpty { bodyEnd = lineStart }
                let parts = fields[1].split(separator: " ")
                guard parts.count == 2, let identity = FileIdentity(String(parts[0])),
                      let digest = Self.bytes(hex: String(parts[1]))
                else { return nil }
                written[fields[0]] = Written(identity: identity, digest: digest)
            default:
                return nil
            }
        }
        guard let recordedConfig, recordedConfig.path == config.standardizedFileURL.path,
              inputs[recordedConfig.path] != nil
        else { return nil }
        let facts = WriteFacts(
            config: recordedConfig, admins: admins, keys: keys, users: users, userKeys: userKeys,
            environments: environments, manifests: manifests)
        // A written bundle counts only while its digest is among the verified ones.
        written = written.filter { verified[$0.key]?.contains($0.value.digest) == true }
        return Entry(facts: facts, verified: verified, written: written, body: Array(bytes[..<bodyEnd]))
    }

    /// What a writer can start on before ``entry(config:now:)`` has checked
    /// the project: an environment's recipient keys and bundle, and the
    /// bundle file the last write left.
    public struct Early: Sendable {
        /// The recipients' keys, by principal name, with their key files' bytes.
        public var keys: [String: WriteFacts.Key]
        public var bundle: URL
        /// The identity of the bundle file the last recorded write left.
        public var written: FileIdentity?
    }

    /// The recipients `config`'s record names for `environment` (nil: its
    /// only one), their key files' bytes, the bundle and the file the last
    /// write left there, read without checking anything else of the record:
    /// enough to start encrypting a data key and reading the bundle while
    /// ``entry(config:now:)`` checks the project. A writer uses that data
    /// key only if the checked entry names the same keys with the same
    /// bytes, and those bundle bytes only if the checked entry names the
    /// same file and the bundle still is that file.
    public func early(config: URL, environment: String?) -> Early? {
        guard let bytes = FileBytes.read(atPath: entryURL(config).path) else { return nil }
        var keyFiles: [String: (fingerprint: String, subkey: String?, path: String)] = [:]
        var environments: [(name: String, recipients: [String], bundle: String)] = []
        var written: [String: FileIdentity] = [:]
        var lineStart = 0
        while lineStart < bytes.count {
            let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
            defer { lineStart = lineEnd + 1 }
            // Only `key`, `environment` and `written` lines (the many `user` lines start with `u`).
            let first = bytes[lineStart]
            guard first == UInt8(ascii: "k") || first == UInt8(ascii: "e") || first == UInt8(ascii: "w") else { continue }
            let fields = bytes[lineStart..<lineEnd]
                .split(separator: UInt8(ascii: " "), maxSplits: first == UInt8(ascii: "k") ? 4 : 3, omittingEmptySubsequences: false)
                .map { String(decoding: $0, as: UTF8.self) }
            if fields.count == 5, fields[0] == "key" {
                keyFiles[fields[1]] = (fields[2], fields[3] == "-" ? nil : fields[3], fields[4])
            }
            if fields.count == 4, fields[0] == "environment" {
                environments.append((fields[1], Self.recipients(fields[2]), fields[3]))
            }
            if fields.count == 4, fields[0] == "written", let identity = FileIdentity(fields[2]) {
                written[fields[1]] = identity
            }
        }
        guard let index = try? WriteFacts.choose(environment, among: environments.map(\.name)) else { return nil }
        var keys: [String: WriteFacts.Key] = [:]
        for name in environments[index].recipients {
            guard let file = keyFiles[name], let data = FileBytes.read(atPath: file.path) else { return nil }
            keys[name] = WriteFacts.Key(
                fingerprint: file.fingerprint, url: URL(fileURLWithPath: file.path), data: data, encryptionSubkey: file.subkey)
        }
        return Early(
            keys: keys, bundle: URL(fileURLWithPath: environments[index].bundle), written: written[environments[index].name])
    }

    /// An `environment` line's recipients field: `-` for none, else names joined by commas.
    private static func recipients(_ field: String) -> [String] {
        field == "-" ? [] : field.split(separator: ",").map(String.init)
    }

    // MARK: Writing

    /// Records `project` (valid, with no errors, at `now`) and that `digest`
    /// is a verified state of `environment`'s bundle. Earlier records of
    /// verified bundles survive when the project is unchanged.
    ///
    /// - Parameter written: the identity of the bundle file, when the caller
    ///   wrote it itself and `digest` is the digest of what it wrote.
    public func record(
        _ project: Project, environment: String, digest: [UInt8], written identity: FileIdentity? = nil, now: Date = Date()
    ) {
        guard let body = Self.body(project, now: now) else { return }
        var verified: [String: [[UInt8]]] = [:]
        var written: [String: Written] = [:]
        if let existing = entry(config: project.declarations.file.url, now: now), existing.body == body {
            verified = existing.verified
            written = existing.written
        }
        write(
            body: body, verified: Self.adding(digest, to: verified, environment),
            written: Self.noting(identity, digest, in: written, environment), config: project.declarations.file.url)
    }

    /// Records that `digest` is a verified state of `environment`'s bundle,
    /// in the entry a writer was working from.
    public func record(_ entry: Entry, environment: String, digest: [UInt8], written identity: FileIdentity? = nil) {
        write(
            body: entry.body, verified: Self.adding(digest, to: entry.verified, environment),
            written: Self.noting(identity, digest, in: entry.written, environment), config: entry.facts.config)
    }

    /// `written` with `environment`'s bundle now `identity` (nil: not one this process wrote).
    private static func noting(
        _ identity: FileIdentity?, _ digest: [UInt8], in written: [String: Written], _ environment: String
    ) -> [String: Written] {
        var written = written
        written[environment] = identity.map { Written(identity: $0, digest: digest) }
        return written
    }

    /// How many verified bundles an entry remembers per environment.
    static let remembered = 8

    private static func adding(_ digest: [UInt8], to verified: [String: [[UInt8]]], _ environment: String)
        -> [String: [[UInt8]]]
    {
        var verified = verified
        let known = verified[environment, default: []].filter { $0 != digest }
        verified[environment] = Array(([digest] + known).prefix(remembered))
        return verified
    }

    private func write(body: [UInt8], verified: [String: [[UInt8]]], written: [String: Written], config: URL) {
        var out = body
        for (environment, digests) in verified.sorted(by: { $0.key < $1.key }) {
            for digest in digests { out += "verified \(environment) \(Digest.hex(digest))\n".utf8 }
        }
        for (environment, file) in written.sorted(by: { $0.key < $1.key }) {
            out += "written \(environment) \(file.identity) \(Digest.hex(file.digest))\n".utf8
        }
        out += "end\n".utf8
        // A cache: failing to write it only costs the next writer time.
        let target = entryURL(config)
        let temporary = folder.appendingPathComponent(".\(target.lastPathComponent).\(getpid()).tmp")
        guard (try? FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])) != nil
        else { return }
        // Not flushed to disk: a record lost in a crash is only a miss.
        // A fresh file of our own: never through a link someone left in its place.
        unlink(temporary.path)
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = out.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written != out.count || rename(temporary.path, target.path) != 0 { unlink(temporary.path) }
    }

    /// Every line but the `verified` ones; nil when the project cannot be recorded.
    static func body(_ project: Project, now: Date) -> [UInt8]? {
        let declarations = project.declarations
        var inputs: [(path: String, digest: [UInt8])] = []
        guard let configDigest = declarations.file.sha256 else { return nil }
        let configPath = declarations.file.url.standardizedFileURL.path
        inputs.append((configPath, configDigest))
        for plugin in declarations.plugins {
            guard let manifest = project.manifests[plugin.slug.value], let digest = manifest.file.sha256 else { return nil }
            inputs.append((manifest.file.url.standardizedFileURL.path, digest))
        }
        for key in project.keys.values.sorted(by: { $0.name < $1.name }) {
            inputs.append((key.url.standardizedFileURL.path, Array(SHA256.hash(data: key.data))))
        }
        // Until the earliest expiry ahead, validating again finds the same.
        let expiries = project.keys.values.compactMap(\.info.nextExpiry) + project.slots.compactMap(\.metadata.expires)
        let until = expiries.map { Int($0.timeIntervalSince1970) }.filter { $0 > Int(now.timeIntervalSince1970) }.min()
        let facts = WriteFacts(project)

        var lines = [Self.magic, "config \(inputs[0].path)", "valid-until \(until ?? Int.max)"]
        let configIdentity = identity(of: configPath, digest: configDigest)
        lines += inputs.map { input in
            let identity = input.path == configPath ? configIdentity?.description ?? "-" : "-"
            return "input \(Digest.hex(input.digest)) \(identity) \(input.path)"
        }
        lines += facts.admins.map { "admin \($0)" }
        lines += facts.keys.sorted(by: { $0.key < $1.key }).map { name, key in
            "key \(name) \(key.fingerprint) \(key.encryptionSubkey ?? "-") \(key.url.standardizedFileURL.path)"
        }
        lines += declarations.users.map { user in
            user.key.map { "user \(user.id.value) \($0.value)" } ?? "user \(user.id.value)"
        }
        lines += declarations.plugins.map { "plugin \($0.slug.value) \($0.manifestURL.standardizedFileURL.path)" }
        lines += facts.environments.map { environment in
            let recipients = environment.recipients.isEmpty ? "-" : environment.recipients.joined(separator: ",")
            return "environment \(environment.name) \(recipients) \(environment.bundle.standardizedFileURL.path)"
        }
        // Paths are the last field of their line: one holding a line break cannot be recorded.
        guard !lines.contains(where: { $0.contains("\n") }) else { return nil }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    // MARK: Spare bundle files

    /// Where writers keep the version of `bundle` they last replaced, for
    /// the next write to write over (``BundleFile/replace(with:spare:)``);
    /// nil when the cache folder cannot be made. One per bundle path, named
    /// by its digest. It holds an old, encrypted bundle: never a value in clear.
    public func spare(for bundle: URL) -> URL? {
        guard (try? FileManager.default.createDirectory(
            at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])) != nil
        else { return nil }
        return folder.appendingPathComponent("spare-\(Self.pathDigest(bundle))")
    }

    /// The identity of the file at `path` when it holds the bytes hashing
    /// to `digest` (read between two identical `fstat`s, and still at the
    /// path); nil when it does not, or changed meanwhile.
    private static func identity(of path: String, digest: [UInt8]) -> FileIdentity? {
        let whole: @Sendable (Int, UnsafeRawBufferPointer) -> Void = { _, _ in }
        guard let (data, identity) = BundleFile.readChunked(path, handler: { _ in whole }),
              FileIdentity(atPath: path) == identity, Array(SHA256.hash(data: data)) == digest
        else { return nil }
        return identity
    }

    /// One entry per declarations file, named by its path's digest.
    private func entryURL(_ config: URL) -> URL {
        folder.appendingPathComponent("write-\(Self.pathDigest(config))")
    }

    /// What names a file of the cache after the file at `url`: the first
    /// 16 bytes of its standardized path's SHA-256, in hex.
    private static func pathDigest(_ url: URL) -> String {
        Digest.hex(SHA256.hash(data: Array(url.standardizedFileURL.path.utf8)).prefix(16))
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }
}
