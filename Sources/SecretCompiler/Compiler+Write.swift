import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretCore
import SecretModel

/// What a write did: which slots it set and deleted, and who signed.
public struct WriteReport: Sendable {
    public var set: [String]
    public var deleted: [String]
    /// The key name that signed; nil when nothing changed.
    public var signer: String?
}

extension Compiler {
    public typealias WriteReport = SecretCompiler.WriteReport

    /// Upserts a batch for one owner and plugin (the seeds' PUT): keys not
    /// named are untouched; a nil or empty value deletes the slot.
    /// Everything is validated before anything is written.
    public func write(
        plugin: String, user: String?, changes: [(key: String, value: SecureBytes?)], as signerName: String? = nil
    ) throws(CompilerError) -> WriteReport {
        try write(.upsert(changes), plugin: plugin, user: user, as: signerName)
    }

    /// Deletes every slot `user` has for `plugin` (the seeds' DELETE, "disconnect").
    public func disconnect(plugin: String, user: String?, as signerName: String? = nil) throws(CompilerError) -> WriteReport {
        try write(.disconnect, plugin: plugin, user: user, as: signerName)
    }

    /// Performs `request` for `user`'s (nil: the deployment's) slots of `plugin`.
    public func write(_ request: SlotWriter.Request, plugin: String, user: String?, as signerName: String? = nil)
        throws(CompilerError) -> WriteReport
    {
        // A writer verifying in full verifies what it reads: it never defers.
        guard let report = try slotWriter().write(request, plugin: plugin, user: user, as: signerName) else {
            throw CompilerError(.unavailable, "the write was deferred without a reason")
        }
        return report
    }

    /// A writer that verifies the bundle in full against this project.
    func slotWriter() throws(CompilerError) -> SlotWriter {
        let facts = WriteFacts(project)
        return SlotWriter(
            facts: facts, environment: try facts.environment(environmentName), file: file, home: home,
            passphrase: passphrase, cache: cache, verification: .full(self))
    }
}

/// Writes one environment's slots: checks each change against the plugin's
/// manifest and the bundle's signed policy, authorizes the writer (a user's
/// key writes that user's slots, an admin's any slot), seals one epoch and
/// splices it into the bundle, under the bundle's lock. Nothing is written
/// when a step fails.
public struct SlotWriter {
    public enum Request {
        /// New values (nil or empty: delete); keys not named are untouched.
        case upsert([(key: String, value: SecureBytes?)])
        /// Delete every value the owner has for the plugin.
        case disconnect
    }

    /// How the bundle read under the lock is known to be verified.
    enum Verification {
        /// Verify it in full against the project's declarations.
        case full(Compiler)
        /// It must be, byte for byte, the bundle this write-cache entry recorded.
        case recorded(WriteCache.Entry)
    }

    /// A data key being encrypted since before the writer was made, and the
    /// recipients' keys it is encrypted to (by principal name).
    struct EarlyDataKey {
        let keys: [String: WriteFacts.Key]
        let pending: Pending<Result<(DataKey, recipients: [String]), CompilerError>>
    }

    /// The environment's bundle, being read since before the writer was
    /// made: without hashing when it is the file the record says the last
    /// write left, else hashed as it is read. Used only if the checked
    /// record names the same bundle and, under the lock, the path still is
    /// the file read.
    struct EarlyBundle {
        typealias Read = (bytes: [UInt8], identity: FileIdentity, digest: BundleDigest?)
        let url: URL
        let read: Pending<Read?>

        init(url: URL, written: FileIdentity?) {
            self.url = url
            let file = BundleFile(url: url)
            read = Pending {
                if let written, let bytes = file.read(ifIdentity: written) { return (bytes, written, nil) }
                return BundleDigest.identifiedRead(url.path).map { ($0.bytes, $0.identity, $0.digest) }
            }
        }
    }

    let facts: WriteFacts
    let environment: WriteFacts.Environment
    let file: BundleFile
    let home: String?
    let passphrase: String?
    let cache: WriteCache?
    let verification: Verification
    let early: EarlyDataKey?
    let earlyBundle: EarlyBundle?

    init(
        facts: WriteFacts, environment: WriteFacts.Environment, file: BundleFile, home: String?, passphrase: String?,
        cache: WriteCache?, verification: Verification, early: EarlyDataKey? = nil, earlyBundle: EarlyBundle? = nil
    ) {
        self.facts = facts
        self.environment = environment
        self.file = file
        self.home = home
        self.passphrase = passphrase
        self.cache = cache
        self.verification = verification
        self.early = early
        self.earlyBundle = earlyBundle
    }

    /// A writer from the write cache, when its entry for `config` still
    /// describes every file of the project; nil otherwise (load the project
    /// and write through ``Compiler``).
    public static func cached(
        config: URL, environment: String?, cache: WriteCache, home: String? = nil, passphrase: String? = nil
    ) throws(CompilerError) -> SlotWriter? {
        Context.warmUp()  // gpgme's start-up overlaps hashing the project's files
        // gpg encrypts a data key to the recorded recipients while the
        // project's files are hashed; `write` uses it only if the checked
        // record names the same keys.
        let recorded = cache.early(config: config, environment: environment)
        let early = recorded.map { recorded in
            EarlyDataKey(
                keys: recorded.keys,
                pending: encryptedDataKey(
                    names: recorded.keys.keys.sorted(), keys: recorded.keys, bundle: BundleFile(url: recorded.bundle).displayPath))
        }
        // The bundle is read (and hashed, unless the last write left it) meanwhile, too.
        let earlyBundle = recorded.map { EarlyBundle(url: $0.bundle, written: $0.written) }
        guard let entry = cache.entry(config: config) else {
            _ = early?.pending.wait()  // no gpg work outlives this call
            return nil
        }
        let chosen: WriteFacts.Environment
        do {
            chosen = try entry.facts.environment(environment)
        } catch {
            _ = early?.pending.wait()
            throw error
        }
        return SlotWriter(
            facts: entry.facts, environment: chosen, file: BundleFile(url: chosen.bundle), home: home,
            passphrase: passphrase, cache: cache, verification: .recorded(entry), early: early, earlyBundle: earlyBundle)
    }

    public var environmentName: String { environment.name }

    /// Performs `request` for `user`'s (nil: the deployment's) slots of `plugin`.
    /// - Returns: nil only for a writer from the write cache whose bundle is
    ///   no longer the one it recorded; nothing was written then.
    public func write(_ request: Request, plugin: String, user: String?, as signerName: String? = nil)
        throws(CompilerError) -> WriteReport?
    {
        Context.warmUp()  // gpgme's start-up overlaps reading and hashing the bundle
        guard let manifest = facts.manifests[plugin] else {
            let names = facts.manifests.keys.sorted()
            throw CompilerError(
                .notFound, "plugin '\(plugin)' is not declared\(Suggestion.hint(for: plugin, in: names))",
                hints: ["declared: \(names.joined(separator: ", "))"])
        }
        if let user, !facts.users.contains(user) {
            let names = facts.users.sorted()
            throw CompilerError(
                .notFound, "user '\(user)' is not declared\(Suggestion.hint(for: user, in: names))",
                hints: ["declared: \(names.joined(separator: ", "))"])
        }
        let values = try validate(request, manifest, plugin: plugin)
        // The data key's encryption needs nothing of the bundle: gpg does it
        // while the signer is found and the bundle is read and checked.
        let dataKey = early.flatMap(usable) ?? makeDataKey()
        defer {
            // No gpg work outlives the write, not even an early data key left unused.
            _ = dataKey.wait()
            _ = early?.pending.wait()
        }
        // Who may sign is known before the bundle is read; whose secret key
        // is here, gpg finds out when it signs (no look-up first).
        let signers = try Self.signers(facts, owner: user, signerName)
        let context = try Compiler.context(home: home, passphrase: passphrase)
        return try file.withLock { () throws(CompilerError) -> WriteReport? in
            let (bytes, digest, digestValue) = try readCurrent()
            guard try verify(bytes, digest: digestValue) else { return nil }
            let splice = try file.formatted { () throws(BundleFormatError) in try BundleSplice(bytes) }
            let changes = try resolve(values, in: splice, plugin: plugin, user: user)
            // Deleting what holds no value changes nothing.
            let effective = changes.filter { $0.value != nil || $0.slot.hasValue }
            guard !effective.isEmpty else { return WriteReport(set: [], deleted: [], signer: nil) }
            let (pieces, writerName) = try seal(
                effective, into: splice, dataKey: try dataKey.wait().get(), signers: signers, context: context)
            // Hashed while the file is written and flushed; everything before
            // the new epoch line is as it was.
            let unchanged = splice.slotsStart
            let newDigest = Pending { BundleDigest(pieces: pieces, reusing: digest, unchanged: unchanged) }
            let identity = try file.replace(with: pieces, spare: cache?.spare(for: file.url))
            record(newDigest.wait().value, written: identity)
            return WriteReport(
                set: effective.filter { $0.value != nil }.map(\.slot.slot.description),
                deleted: effective.filter { $0.value == nil }.map(\.slot.slot.description), signer: writerName)
        }
    }

    /// The bundle's bytes and digest: one the last recorded write left as it
    /// was is read without hashing (its digest is recorded). The early read
    /// serves when the path still is the file it read.
    private func readCurrent() throws(CompilerError) -> (bytes: [UInt8], digest: BundleDigest?, value: [UInt8]) {
        if let early = earlyBundle, early.url.standardizedFileURL.path == file.url.standardizedFileURL.path,
           let read = early.read.wait(), file.isStill(read.identity)
        {
            if let digest = read.digest { return (read.bytes, digest, digest.value) }
            if let known = lastWritten, known.identity == read.identity { return (read.bytes, nil, known.digest) }
        }
        if let known = lastWritten, let unchanged = file.read(ifIdentity: known.identity) {
            return (unchanged, nil, known.digest)
        }
        guard let (bytes, digest) = try file.readDigested() else {
            throw Compiler.missingBundle(file, environment: environmentName)
        }
        return (bytes, digest, digest.value)
    }

    /// Each named key's new value (nil: delete), checked against the manifest;
    /// nil for a disconnect, whose keys are the owner's slots.
    private func validate(_ request: Request, _ manifest: Manifest, plugin: String) throws(CompilerError)
        -> [(key: String, value: SecureBytes?)]?
    {
        guard case .upsert(let changes) = request else { return nil }
        var seen = Set<String>()
        var values: [(key: String, value: SecureBytes?)] = []
        let names = manifest.secrets.map(\.key.value)
        for change in changes {
            // A word that is not even a key name may be a value typed in the
            // wrong place: it is never echoed.
            guard NameKind.secretKey.accepts(change.key) else {
                throw CompilerError(
                    .notFound,
                    "an argument is not a declared key of plugin '\(plugin)' (not shown: it is not a key name, "
                        + "and may be a value)",
                    hints: ["declared: \(names.joined(separator: ", "))", "give a value as KEY=@FILE, or as KEY alone to be asked for it"])
            }
            guard seen.insert(change.key).inserted else {
                throw CompilerError(.invalidInput, "'\(change.key)' is given twice")
            }
            guard let spec = manifest.secret(change.key) else {
                throw CompilerError(
                    .notFound, "plugin '\(plugin)' declares no secret '\(change.key)'\(Suggestion.hint(for: change.key, in: names))",
                    hints: ["declared: \(names.joined(separator: ", "))"])
            }
            let value = change.value.flatMap { $0.isEmpty ? nil : $0 }
            if let value {
                guard let text = value.utf8String() else {
                    throw CompilerError(.invalidInput, "the value for '\(change.key)' is not UTF-8 text")
                }
                // Served as an environment variable, a NUL would cut the value short.
                guard !text.utf8.contains(0) else {
                    throw CompilerError(.invalidInput, "the value for '\(change.key)' holds a NUL byte, which no environment variable can")
                }
                guard spec.accepts(text) else {
                    throw CompilerError(
                        .invalidInput, "the value for '\(change.key)' does not match its pattern \(spec.pattern?.value ?? "")",
                        hints: spec.placeholder.map { ["expected something like \($0)"] } ?? [])
                }
            }
            values.append((change.key, value))
        }
        return values
    }

    /// The slot lines the changes touch, from the bundle's signed policy (which
    /// matches the declarations): a slot must be declared, and a reserved one
    /// cannot be deleted.
    private func resolve(
        _ values: [(key: String, value: SecureBytes?)]?, in splice: BundleSplice, plugin: String, user: String?
    ) throws(CompilerError) -> [(slot: BundleSplice.Slot, value: SecureBytes?)] {
        guard let values else {
            let slots = try file.formatted { () throws(BundleFormatError) in try splice.slots(owner: user, plugin: plugin) }
            if let reserved = slots.first(where: \.attributes.reserved) { throw refusal(deleting: reserved.slot) }
            return slots.map { ($0, nil) }
        }
        var changes: [(slot: BundleSplice.Slot, value: SecureBytes?)] = []
        for (key, value) in values {
            let slot = SlotKey(owner: user, plugin: plugin, key: key)
            guard let line = try file.formatted({ () throws(BundleFormatError) in try splice.slot(slot) }) else {
                throw CompilerError(
                    .notFound, "slot \(environmentName)/\(slot) is not declared",
                    hints: ["declare it under 'slots' in \(SourceFile.displayPath(for: facts.config))"])
            }
            if value == nil, line.attributes.reserved { throw refusal(deleting: slot) }
            changes.append((line, value))
        }
        return changes
    }

    private func refusal(deleting slot: SlotKey) -> CompilerError {
        CompilerError(
            .forbidden, "slot \(environmentName)/\(slot) is reserved and cannot be deleted",
            hints: ["un-reserve it in the declarations and run `secretc compile` first"])
    }

    // MARK: Steps under the lock

    /// True when `bytes` (hashing to `digest`) are known to be verified.
    private func verify(_ bytes: [UInt8], digest: [UInt8]) throws(CompilerError) -> Bool {
        switch verification {
        case .recorded(let entry):
            if entry.verified[environmentName]?.contains(digest) == true { return true }
            // Another writer may have recorded it while this one waited for the lock.
            return cache?.entry(config: facts.config)?.verified[environmentName]?.contains(digest) == true
        case .full(let compiler):
            try compiler.verifyCurrent(bytes)
            cache?.record(compiler.project, environment: environmentName, digest: digest)
            return true
        }
    }

    /// A fresh data key, encrypted to the recipients on another thread, and
    /// their fingerprints.
    private func makeDataKey() -> Pending<Result<(DataKey, recipients: [String]), CompilerError>> {
        Self.encryptedDataKey(names: environment.recipients, keys: facts.keys, bundle: file.displayPath)
    }

    /// The early data key, when it was encrypted to exactly the keys (same
    /// fingerprints, same bytes) the checked facts give this environment's recipients.
    private func usable(_ early: EarlyDataKey) -> Pending<Result<(DataKey, recipients: [String]), CompilerError>>? {
        guard Set(early.keys.keys) == Set(environment.recipients),
              early.keys.allSatisfy({ name, key in facts.keys[name] == key })
        else { return nil }
        return early.pending
    }

    /// A fresh data key, encrypted on another thread to the keys of the
    /// principals `names`.
    static func encryptedDataKey(names: [String], keys: [String: WriteFacts.Key], bundle: String)
        -> Pending<Result<(DataKey, recipients: [String]), CompilerError>>
    {
        Pending {
            Result { () throws(CompilerError) in
                let (encryptor, recipients) = try Compiler.encryptor(recipients: names, key: { keys[$0] })
                defer { encryptor.remove() }
                do throws(BundleSealError) {
                    return (try DataKey(encryptor: encryptor, recipients: recipients), recipients)
                } catch {
                    throw .seal(error, bundle: bundle)
                }
            }
        }
    }

    /// Seals the changes into one epoch signed by the first of `signers`
    /// whose secret key the GnuPG home holds, and returns the new bundle, in
    /// pieces, and the signer's name.
    private func seal(
        _ changes: [(slot: BundleSplice.Slot, value: SecureBytes?)], into splice: BundleSplice,
        dataKey: (DataKey, recipients: [String]), signers: Signers, context: Context
    ) throws(CompilerError) -> (pieces: [ArraySlice<UInt8>], signer: String) {
        try checkRecipients(of: dataKey.0.message, against: splice)
        for candidate in signers.candidates {
            // Under the bundle's policy, after every head: the history the next reader checks.
            let sealer = EpochSealer(
                environment: environmentName, writer: candidate.fingerprint, recipients: dataKey.recipients,
                policy: PolicyReference(serial: splice.policySerial, signature: splice.policySignature),
                parents: .after(splice.heads))
            do throws(BundleSealError) {
                let (epoch, sealed) = try sealer.seal(
                    changes.map { EpochSealer.Change(slot: $0.slot.slot, value: $0.value) },
                    afterTime: splice.latestEpochTime, dataKey: dataKey.0, signer: context)
                var line: [UInt8] = []
                epoch.appendLine(to: &line)
                let pieces = splice.spliced(
                    epochLine: line, values: changes.map { ($0.slot, SealedValue.field(sealed[$0.slot.slot] ?? nil)) })
                return (pieces, candidate.name)
            } catch .gpg(.noSecretKey) {
                continue  // not here: the next candidate
            } catch {
                throw .seal(error, bundle: file.displayPath)
            }
        }
        throw signers.noneHere
    }

    /// The write's own output against the bundle's signed policy, whatever
    /// the write cache or the declarations said: the data key must be
    /// encrypted to exactly the policy's recipients — each session key to a
    /// key of a `recipient` line (its `key` line), and every recipient
    /// reached. A record that names another recipient, or another key for
    /// one, thus never gets a value to a key the policy does not name.
    private func checkRecipients(of message: [UInt8], against splice: BundleSplice) throws(CompilerError) {
        let recipients: RecipientKeys
        do throws(BundleSealError) {
            recipients = try RecipientKeys(splice.recipientKeys())
        } catch {
            throw .seal(error, bundle: file.displayPath)
        }
        guard let problem = recipients.problem(message: message) else { return }
        throw CompilerError(
            .conflict,
            "\(file.displayPath): this write's data key would not go to the policy's recipients: \(problem); nothing was written",
            hints: [
                "the declarations or the write cache disagree with the bundle's signed policy: run `secretc check`, "
                    + "and if it passes, remove the write cache (\(cache.map { $0.folder.path } ?? "SECRETC_CACHE_DIR")) "
                    + "and write again",
            ])
    }

    /// Records `digest` as the verified state of the bundle just written.
    private func record(_ digest: [UInt8], written identity: FileIdentity?) {
        guard let cache else { return }
        switch verification {
        case .recorded(let entry): cache.record(entry, environment: environmentName, digest: digest, written: identity)
        case .full(let compiler):
            cache.record(compiler.project, environment: environmentName, digest: digest, written: identity)
        }
    }

    /// The bundle file the last recorded writer left, when writing from the record.
    private var lastWritten: WriteCache.Written? {
        guard case .recorded(let entry) = verification else { return nil }
        return entry.written[environmentName]
    }

    // MARK: Authorization

    /// The keys that may sign a write, in the order they are tried, and what
    /// to say when the GnuPG home holds none of their secret halves.
    struct Signers {
        var candidates: [(fingerprint: String, name: String)]
        var noneHere: CompilerError
    }

    /// Row-level security: a user's own key writes that user's slots; an
    /// admin's writes any slot. Default: the owner's key if its secret is
    /// here, else the first admin's that is.
    static func signers(_ facts: WriteFacts, owner: String?, _ name: String?) throws(CompilerError) -> Signers {
        let ownerKey = owner.flatMap { facts.userKeys[$0] }
        let allowed = facts.admins + (ownerKey.map { [$0] } ?? [])
        let whose = owner.map { "user '\($0)'" } ?? "the deployment"
        if let name {
            guard allowed.contains(name) else {
                throw CompilerError(
                    .forbidden, "key '\(name)' may not write slots of \(whose)",
                    hints: ["allowed: \(allowed.joined(separator: ", "))"])
            }
            let missing = CompilerError(
                .forbidden, "the secret key of '\(name)' is not in the GnuPG home", hints: [Compiler.importHint([name], home: nil)])
            guard let key = facts.keys[name] else { throw missing }
            return Signers(candidates: [(key.fingerprint, name)], noneHere: missing)
        }
        var candidates: [(fingerprint: String, name: String)] = []
        for candidate in (ownerKey.map { [$0] } ?? []) + facts.admins {
            if let key = facts.keys[candidate], !candidates.contains(where: { $0.fingerprint == key.fingerprint }) {
                candidates.append((key.fingerprint, candidate))
            }
        }
        return Signers(
            candidates: candidates,
            noneHere: CompilerError(
                .forbidden, "no key in the GnuPG home may write slots of \(whose)",
                hints: [Compiler.importHint(allowed, home: nil)]))
    }
}
