import Foundation
import GPG

/// Reads every declared key file and asks gpg about all of them in one run.
struct KeyInspector {
    /// How early an approaching expiry is reported.
    static let warningWindow: TimeInterval = 30 * 86_400

    let now: Date

    func inspect(_ declarations: [KeyDeclaration], into log: inout DiagnosticLog) -> [String: PrincipalKey] {
        var candidates: [(declaration: KeyDeclaration, data: [UInt8], fingerprint: String?)] = []
        for declaration in declarations {
            let display = declaration.path.value  // as written, relative to secretc.yaml
            let at = declaration.path.location
            guard let data = FileManager.default.contents(atPath: declaration.url.path) else {
                log.error(.notFound, "key file '\(display)' of key '\(declaration.name.value)' does not exist", at: at)
                continue
            }
            let scan: KeyFile
            do {
                scan = try KeyFile(scanning: Array(data))
            } catch let error as GPGError {
                log.error(.invalidInput, "key file '\(display)' is not an OpenPGP public key: \(error.reason)", at: at)
                continue
            } catch {
                log.error(.invalidInput, "key file '\(display)' is not an OpenPGP public key", at: at)
                continue
            }
            if scan.kind == .secretKey {
                log.error(
                    .forbidden,
                    "key file '\(display)' holds a SECRET key; commit only the public half (gpg --armor --export)",
                    at: at)
                continue
            }
            if scan.primaryKeyCount > 1 {
                log.error(
                    .invalidInput,
                    "key file '\(display)' holds \(scan.primaryKeyCount) keys; put exactly one public key in each file",
                    at: at)
                continue
            }
            candidates.append((declaration, Array(data), scan.fingerprints.first))
        }
        guard !candidates.isEmpty else { return [:] }

        let listed: [String: KeyInfo]
        let context: Context
        let home: TemporaryHome
        do {
            home = try TemporaryHome(publicKeysOnly: true)
            context = try Context(home: home.path)
            // gpg detects armor once per input, so only armored files can share a run.
            listed = try parallelListing(candidates.map(\.data).filter { ($0.first ?? 0) & 0x80 == 0 })
        } catch {
            let at = candidates[0].declaration.path.location
            log.error(.keyUnusable, "cannot read key files: \(error)", at: at)
            return [:]
        }
        defer { home.remove() }

        var keys: [String: PrincipalKey] = [:]
        for candidate in candidates {
            let declaration = candidate.declaration
            let display = declaration.path.value
            let at = declaration.path.location
            // A key the batch did not return (or one with no v4 fingerprint) is asked about alone.
            let info = candidate.fingerprint.flatMap { listed[$0] }
                ?? (try? context.keys(in: candidate.data))?.first
            guard let info else {
                log.error(.keyUnusable, "gpg cannot use the key in '\(display)' (damaged, or no valid self-signature)", at: at)
                continue
            }
            let name = declaration.name.value
            if info.isRevoked {
                log.error(.keyUnusable, "key '\(name)' (\(info.fingerprint)) is revoked", at: at)
                continue
            }
            if let expires = info.expires, expires <= now || info.isExpired {
                log.error(.expired, "key '\(name)' (\(info.fingerprint)) expired on \(ExpiryDate.format(expires))", at: at)
                continue
            } else if let expires = info.expires, expires.timeIntervalSince(now) < Self.warningWindow {
                log.warning(.expired, "key '\(name)' (\(info.fingerprint)) expires on \(ExpiryDate.format(expires))", at: at)
            }
            keys[name] = PrincipalKey(name: name, url: declaration.url, info: info, data: candidate.data)
        }
        return keys
    }

    /// Files per gpg run below which a second process costs more than it saves.
    static let minimumChunk = 16

    /// gpg checks every self-signature, which dominates `check` for many keys:
    /// split the files over the cores, one gpg run (and private home) each.
    private func parallelListing(_ files: [[UInt8]]) throws -> [String: KeyInfo] {
        guard !files.isEmpty else { return [:] }
        let chunks = max(1, min(ProcessInfo.processInfo.activeProcessorCount, files.count / Self.minimumChunk))
        let size = (files.count + chunks - 1) / chunks
        let results = ResultSlots(count: chunks)
        DispatchQueue.concurrentPerform(iterations: chunks) { index in
            let slice = Array(files[(index * size)..<min(files.count, (index + 1) * size)])
            results.set(index, Result { try Self.listing(slice) })
        }
        var merged: [String: KeyInfo] = [:]
        for result in results.all {
            for (fingerprint, info) in try result.get() { merged[fingerprint] = merged[fingerprint] ?? info }
        }
        return merged
    }

    /// One gpg run over `files`; an empty answer when gpg refuses the whole batch
    /// (each file is then asked about alone).
    private static func listing(_ files: [[UInt8]]) throws -> [String: KeyInfo] {
        // gpgme lists through `gpg --import --dry-run`, whose default repair-keys
        // pass checks every signature again; the listing is identical without it.
        let home = try TemporaryHome(configuration: ["import-options no-repair-keys"], publicKeysOnly: true)
        defer { home.remove() }
        let context = try Context(home: home.path)
        var joined: [UInt8] = []
        for file in files {
            joined.append(contentsOf: file)
            joined.append(UInt8(ascii: "\n"))
        }
        guard let keys = try? context.keys(in: joined) else { return [:] }
        return Dictionary(keys.map { ($0.fingerprint, $0) }, uniquingKeysWith: { first, _ in first })
    }
}

/// Results written by concurrent workers, one slot each.
private final class ResultSlots: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Result<[String: KeyInfo], any Error>?]
    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ index: Int, _ result: Result<[String: KeyInfo], any Error>) {
        lock.withLock { slots[index] = result }
    }
    var all: [Result<[String: KeyInfo], any Error>] { lock.withLock { slots.compactMap { $0 } } }
}

extension GPGError {
    /// The message without the "not OpenPGP data: " lead, for embedding.
    var reason: String {
        if case .invalidData(let why) = self { return why }
        return description
    }
}
