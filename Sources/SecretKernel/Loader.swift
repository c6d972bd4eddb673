import BundleFormat
import BundleSeal
import Crypto
import Foundation
import GPG
import SecretCore
import Synchronization

/// Turns bundle bytes into a verified, decrypted ``Snapshot``
/// (docs/bundle-format.md §6, every step), or refuses the whole bundle.
enum Loader {
    static func load(_ bytes: [UInt8], name: String, _ configuration: SecretKernel.Configuration)
        throws(SecretKernelError) -> Snapshot
    {
        let pins = Set(configuration.trustedAdmins.map { $0.uppercased() })
        guard !pins.isEmpty else {
            throw SecretKernelError(.misconfigured, "no trusted admin fingerprint is configured (SECRETC_TRUSTED_ADMINS)")
        }
        Context.warmUp()  // gpgme's start-up overlaps parsing
        let bundle: SecretBundle
        do {
            bundle = try SecretBundle(parsing: bytes)
        } catch {
            throw SecretKernelError(.invalidBundle, "\(name): invalid bundle: \(error)")
        }
        let verified: BundleVerifier.Verified
        let dataKeys: [String: SymmetricKey]
        do throws(BundleSealError) {
            // gpg decrypts the data keys while the signatures are checked in
            // process; the keys are used only once verification has passed.
            let (decrypted, checked) = try concurrently({
                Result { () throws(BundleSealError) in
                    try withContext(configuration) { context throws(BundleSealError) in
                        try BundleOpener.dataKeys(ofUnverified: bundle, with: context)
                    }
                }
            }) { () throws(BundleSealError) in try BundleVerifier(trustedAdmins: pins).verify(bundle) }
            verified = checked
            dataKeys = try decrypted.get()
        } catch {
            throw SecretKernelError(error, bundle: name, recipients: bundle.recipients)
        }
        let now = Int((configuration.clock?() ?? Date()).timeIntervalSince1970)
        var serving = servingEntries(bundle, scope: configuration.scope)
        let arena = try openValues(bundle, dataKeys, into: &serving, now: now, name: name)
        return Snapshot(
            environment: bundle.environment, slots: bundle.slots.map(\.slot), serving: serving,
            metadata: metadata(verified), environmentVariables: environmentVariables(bundle),
            declared: declared(bundle), epochCount: bundle.epochs.count, digest: Digest.sha256Hex(bytes),
            loadedAt: Date(timeIntervalSince1970: TimeInterval(now)), arena: arena)
    }

    /// Runs `body` with a context holding the runtime secret key: the
    /// configured home, or a private temporary one holding an armored key,
    /// removed (agent stopped) before this returns.
    private static func withContext<T>(
        _ configuration: SecretKernel.Configuration, _ body: (Context) throws(BundleSealError) -> T
    ) throws(BundleSealError) -> T {
        var source = configuration.keys
        if case .automatic = source {
            if let armored = configuration.environment["SECRETC_GPG_KEY"], !armored.isEmpty {
                source = .armoredSecretKey(SecureBytes(armored), passphrase: configuration.environment["SECRETC_GPG_PASSPHRASE"])
            } else {
                source = .gnupgHome(configuration.environment["GNUPGHOME"])
            }
        }
        do {
            switch source {
            case .automatic, .gnupgHome(nil):
                return try body(try Context())
            case .gnupgHome(let home?):
                return try body(try Context(home: home))
            case .armoredSecretKey(let key, let passphrase):
                let home = try TemporaryHome(in: configuration.temporaryDirectory)
                defer { home.remove() }
                let context = try Context(home: home.path, passphrase: passphrase)
                let imported = try key.withUnsafeBytes { try context.importKeys(Array($0)) }
                guard !imported.isEmpty, !(try context.listKeys(secret: true)).isEmpty else {
                    throw GPGError.invalidData("SECRETC_GPG_KEY holds no OpenPGP secret key")
                }
                return try body(context)
            }
        } catch let error as BundleSealError {
            throw error
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw .gpg(.engineUnavailable("\(error)"))
        }
    }

    /// What serving each slot needs, in canonical order.
    private static func servingEntries(_ bundle: SecretBundle, scope: String?) -> [Snapshot.Serving] {
        bundle.slots.map { line in
            let attributes = line.attributes
            return Snapshot.Serving(
                offset: 0, length: -1, expires: attributes.expires ?? Int.max, hasValue: line.value != nil,
                inactive: attributes.inactive, inScope: scope.map { attributes.scopes?.contains($0) ?? true } ?? true)
        }
    }

    /// What status answers need about each slot, in canonical order.
    private static func metadata(_ verified: BundleVerifier.Verified) -> [Snapshot.Metadata] {
        var writerNames: [String: String] = [:]
        for (user, fingerprint) in verified.bundle.users { writerNames[fingerprint] = user }
        return verified.bundle.slots.enumerated().map { position, line in
            let epoch = verified.latestWriter[position: position]
            return Snapshot.Metadata(
                reserved: line.attributes.reserved, scopes: line.attributes.scopes,
                description: line.attributes.description, writer: epoch.map { writerNames[$0.writer] ?? $0.writer },
                writtenAt: epoch?.time)
        }
    }

    /// Opens every value (each must authenticate, served or not) and keeps
    /// those that can be served in one arena; the rest are zeroed at once.
    /// Values are opened in parallel: AES-GCM is the bulk of a large load.
    private static func openValues(
        _ bundle: SecretBundle, _ dataKeys: [String: SymmetricKey], into entries: inout [Snapshot.Serving], now: Int,
        name: String
    ) throws(SecretKernelError) -> UnsafeMutableRawBufferPointer {
        var size = 0
        for index in entries.indices {
            guard let sealed = bundle.slots[index].value else { continue }
            let entry = entries[index]
            guard !entry.inactive, entry.inScope, entry.expires > now
            else { continue }
            entries[index].offset = Int32(size)
            entries[index].length = Int32(sealed.bytes.count - 28)
            size += sealed.bytes.count - 28
        }
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
        let failure = Mutex<BundleSealError?>(nil)
        let slots = bundle.slots
        let layout = entries
        let chunks = min(64, max(1, slots.count / 512))
        nonisolated(unsafe) let target = arena
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            var index = slots.count * chunk / chunks
            let end = slots.count * (chunk + 1) / chunks
            while index < end {
                defer { index += 1 }
                guard let sealed = slots[index].value else { continue }
                guard let key = dataKeys[sealed.epoch] else {
                    failure.withLock { $0 = $0 ?? .inconsistent(slot: slots[index].slot.description, reason: "its epoch is missing") }
                    return
                }
                let entry = layout[index]
                do throws(BundleSealError) {
                    try BundleOpener.open(sealed, of: slots[index].slot, environment: bundle.environment, key: key) { plaintext in
                        guard entry.length >= 0, plaintext.count == Int(entry.length) else { return }
                        UnsafeMutableRawBufferPointer(rebasing: target[Int(entry.offset)..<Int(entry.offset) + plaintext.count])
                            .copyMemory(from: plaintext)
                    }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    return
                }
            }
        }
        if let error = failure.withLock({ $0 }) {
            wipe(arena)
            arena.deallocate()
            throw SecretKernelError(error, bundle: name, recipients: bundle.recipients)
        }
        return arena
    }

    /// Each declared plugin key's variable, shared between its slots.
    private static func environmentVariables(_ bundle: SecretBundle) -> [Snapshot.PluginKey: String] {
        // Few distinct plugin keys repeat across many users: compare with
        // those already seen (small strings compare cheaply) before hashing.
        var seen: [(plugin: String, key: String)] = []
        var names: [Snapshot.PluginKey: String] = [:]
        for line in bundle.slots {
            let slot = line.slot
            if seen.count < 64, seen.contains(where: { $0.key == slot.key && $0.plugin == slot.plugin }) { continue }
            let pluginKey = Snapshot.PluginKey(plugin: slot.plugin, key: slot.key)
            if names[pluginKey] == nil {
                names[pluginKey] = line.attributes.env
                if seen.count < 64 { seen.append((slot.plugin, slot.key)) }
            }
        }
        return names
    }

    private static func declared(_ bundle: SecretBundle) -> [String: [DeclaredSecret]] {
        var declared: [String: [DeclaredSecret]] = [:]
        for field in bundle.fields {
            declared[field.plugin, default: []].append(
                DeclaredSecret(key: field.key, label: field.label, placeholder: field.placeholder, help: field.help))
        }
        return declared
    }
}

