import BundleFormat
import BundleSeal
import Crypto
import Foundation
import GPG
import Logging
import SecretCore
import Synchronization

/// Turns bundle bytes into a verified, decrypted ``Snapshot``
/// (docs/bundle-format.md §6, every step), or refuses the whole bundle.
enum Loader {
    /// - Parameter trusted: the history of the bundle trusted so far (the
    ///   one served, or the trusted-state file's): a bundle that does not
    ///   extend it is refused before anything is decrypted.
    static func load(
        _ bytes: [UInt8], name: String, _ configuration: SecretKernel.Configuration, extending trusted: TrustedHistory?
    ) throws(SecretKernelError) -> Snapshot {
        let configured = Set(configuration.trustedAdmins.map { $0.uppercased() })
        guard !configured.isEmpty else {
            throw SecretKernelError(.misconfigured, "no trusted admin fingerprint is configured (SECRETC_TRUSTED_ADMINS)")
        }
        // The pins bootstrap trust; once a bundle is trusted, its policy's
        // admins sign the next policy (admin rotation, as TUF's root chain):
        // an admin that policy removed is no longer trusted, pinned or not.
        let pins = trusted.map { Set($0.admins) } ?? configured
        let keys = keySource(configuration)
        if case .gnupgHome(let home?) = keys, !home.isEmpty, !FileManager.default.fileExists(atPath: home) {
            throw SecretKernelError(
                .keyUnavailable, "the GnuPG home \(home) (GNUPGHOME) does not exist: no runtime key can be read from it")
        }
        // gpgme's start-up (and binding a context to the home) overlaps parsing.
        if case .gnupgHome(let home) = keys {
            ContextPool.shared.warmUp(home: home)
        } else {
            Context.warmUp()
        }
        var phases = Phases()
        let scan: ScannedBundle
        do {
            scan = try ScannedBundle(scanning: bytes)
        } catch {
            throw SecretKernelError(.invalidBundle, "\(name): invalid bundle: \(error)")
        }
        phases.end("scan")
        if let expected = configuration.expectedEnvironment, scan.header.environment != expected {
            throw SecretKernelError(
                .verificationFailed,
                "\(name): the bundle is for environment '\(scan.header.environment)', not '\(expected)' (copied or swapped?)")
        }
        guard let history = TrustedHistory(scan) else {
            throw SecretKernelError(.verificationFailed, "\(name): policy: the policy is not signed")
        }
        if let trusted {
            do throws(BundleSealError) {
                let names = scan.header.userNames
                try trusted.checkExtended(by: history, resealedByTime: true) { names[$0] ?? $0 }
            } catch {
                throw SecretKernelError(.rollback, "\(name): \(error)")
            }
        }
        let snapshot = try verifiedSnapshot(scan, name, configuration, keys, pins, &phases)
        snapshot.phases = phases.ended
        snapshot.history = history
        try refuseReservedVariables(snapshot, name)
        return snapshot
    }

    /// The fast path, else (a signer's key is not Ed25519, or it refused) the reference path.
    private static func verifiedSnapshot(
        _ scan: ScannedBundle, _ name: String, _ configuration: SecretKernel.Configuration, _ keys: SecretKernel.KeySource,
        _ pins: Set<String>, _ phases: inout Phases
    ) throws(SecretKernelError) -> Snapshot {
        do throws(BundleSealError) {
            let snapshot = try load(scan, configuration, keys, &phases) { () throws(BundleSealError) in
                guard configuration.verifiesInProcess else { return nil }
                return try ScanVerifier.checkSignatures(scan, trustedAdmins: pins)
            }
            if let snapshot { return snapshot }
            configuration.logger.debug("a signer's key is not Ed25519; verifying the bundle step by step with gpg")
        } catch {
            configuration.logger.debug("fast load refused the bundle; verifying it step by step", metadata: ["reason": "\(error)"])
        }
        // The reference path: every check one by one (gpg for keys other than
        // Ed25519), naming any problem exactly; then the same per-slot pass.
        do throws(BundleSealError) {
            let snapshot = try load(scan, configuration, keys, &phases) { () throws(BundleSealError) in
                ScanVerifier.Signatures(verifiedAs: try BundleVerifier(trustedAdmins: pins).verify(scan.materialized()))
            }
            guard let snapshot else { preconditionFailure("a verifier built on a reference verification never declines") }
            return snapshot
        } catch {
            throw SecretKernelError(error, bundle: name, recipients: scan.header.recipients)
        }
    }

    /// Every step of §6 on the scanned bytes, without materializing slots.
    /// gpg decrypts the data keys on a thread of its own (it mostly waits
    /// for gpg) while each core takes the next of: the signatures (steps
    /// 3–5), the lookup table's layout, the claim table, the bundle's digest,
    /// the slot names and metadata. Then claims, digests and AES-GCM run per
    /// slot in parallel, each value opened straight into its lookup record.
    /// nil when `verify` declines (a signer's key is not Ed25519).
    private static func load(
        _ scan: ScannedBundle, _ configuration: SecretKernel.Configuration, _ keys: SecretKernel.KeySource,
        _ phases: inout Phases,
        verify: () throws(BundleSealError) -> ScanVerifier.Signatures?
    ) throws(BundleSealError) -> Snapshot? {
        let epochs = scan.epochs
        // The epochs holding a current value (usually one): their data keys are needed.
        var needed = Set<Int>()
        var epochIndex: [EpochID: Int] = [:]
        for (index, epoch) in epochs.enumerated() { epochIndex[EpochID(epoch.id.utf8)] = index }
        for slot in scan.slots {
            guard needed.count < epochs.count else { break }
            guard let (epoch, _) = slot.valueParts else { continue }
            if let index = epochIndex[EpochID(scan.bytes[epoch])] { needed.insert(index) }
        }
        let wanted = needed.sorted()
        // Verify before decrypt: no data-key message reaches gpg before every
        // signature covering it (the policy's and its epoch's) has verified.
        let decryptDataKeys = { () -> Result<DataKeys, BundleSealError> in
            Result { () throws(BundleSealError) in try dataKeys(of: wanted, scan, keys, configuration) }
        }
        let decryptedKeys = Mutex<Result<DataKeys, BundleSealError>?>(nil)
        let now = Int((configuration.clock?() ?? Date()).timeIntervalSince1970)
        let checked = Mutex<Result<ScanVerifier.Signatures?, BundleSealError>?>(nil)
        let laidOut = Mutex<(serving: [Snapshot.Serving], table: LookupTable, slotRecords: [Int32])?>(nil)
        let indexed = Mutex<ScanVerifier.Claims?>(nil)
        let described = Mutex<(metadata: [Snapshot.Metadata], variables: [Snapshot.PluginKey: String])?>(nil)
        let digested = Mutex<String>("")
        // The layout, the claim table, the digest and the names on a thread
        // of their own, while this thread checks the signatures and then
        // (only when they pass) opens the data keys; both of those spread
        // over every core themselves, which they could not inside the pool's
        // own concurrentPerform (a nested one runs on one thread). Not on the
        // pool: a service whose threads keep the pool busy (lookups) would
        // leave the work queued and this load waiting for ever; a
        // concurrentPerform always progresses on its calling thread.
        let others = DispatchSemaphore(value: 0)
        let worker = Thread {
            defer { others.signal() }
            DispatchQueue.concurrentPerform(iterations: 4) { task in
                switch task {
                case 0:
                    var serving = servingFacts(scan, configuration, now: now)
                    var slotRecords: [Int32] = []
                    let table = LookupTable(scan, serving: &serving, slotRecords: &slotRecords)
                    laidOut.withLock { $0 = (serving, table, slotRecords) }
                case 1:
                    let claims = ScanVerifier.Claims(scan)
                    indexed.withLock { $0 = claims }
                case 2:
                    let digest = Digest.sha256Hex(scan.bytes)
                    digested.withLock { $0 = digest }
                default:
                    let metadata = scan.attributes.map {
                        Snapshot.Metadata(reserved: $0.reserved, scopes: $0.scopes, description: $0.description)
                    }
                    let variables = environmentVariables(scan)
                    described.withLock { $0 = (metadata, variables) }
                }
            }
        }
        worker.start()
        let result = Result { () throws(BundleSealError) in try verify() }
        checked.withLock { $0 = result }
        if case .success(.some) = result {
            let keys = decryptDataKeys()
            decryptedKeys.withLock { $0 = keys }
        }
        others.wait()
        let (serving, table, slotRecords) = laidOut.withLock { $0! }
        phases.end("checks")
        do throws(BundleSealError) {
            guard let signatures = try checked.withLock({ $0! }).get() else {
                table.free()
                return nil
            }
            let verifier = ScanVerifier(scan, signatures, claims: indexed.withLock { $0! })
            let opened = try decryptedKeys.withLock { $0! }.get()
            var serving = serving
            let (writers, unavailable) = try openValues(scan, verifier, opened, serving, into: table.records)
            let failures = contain(unavailable, writers, opened, &serving, table, slotRecords)
            phases.end("open")
            defer { phases.end("build") }
            let (metadata, variables) = described.withLock { $0! }
            // Writers by principal name, as the CLI shows them: a user's id, an admin's key name.
            let header = scan.header
            var names: [String: String] = [:]
            for epoch in epochs where names[epoch.writer] == nil { names[epoch.writer] = header.principalName(of: epoch.writer) }
            return Snapshot(
                environment: scan.header.environment, serving: serving, metadata: metadata,
                writers: writers, epochWriters: epochs.map { names[$0.writer] ?? $0.writer }, epochTimes: epochs.map(\.time),
                table: table, slotRecords: slotRecords, environmentVariables: variables,
                declared: declared(scan.header), failures: failures, digest: digested.withLock { $0 },
                loadedAt: Date(timeIntervalSince1970: TimeInterval(now)))
        } catch {
            table.free()
            throw error
        }
    }

    /// An epoch id's 16 bytes as two words: a slot finds its epoch by hash,
    /// not by comparing with every epoch (bundles hold thousands).
    private struct EpochID: Hashable {
        var high: UInt64 = 0
        var low: UInt64 = 0

        init(_ bytes: some Sequence<UInt8>) {
            for (position, byte) in bytes.enumerated() {
                if position < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
        }
    }

    /// Refuses a bundle whose slots would set a variable no secret may
    /// (LD_PRELOAD, PATH, …): the admin who signed its policy signed
    /// something wrong, which `check` reports in CI. The few distinct names
    /// the snapshot serves under are checked, not every slot's copy.
    private static func refuseReservedVariables(_ snapshot: Snapshot, _ name: String) throws(SecretKernelError) {
        for (slot, variable) in snapshot.environmentVariables {
            if let reason = ReservedVariable.reason(variable) {
                throw SecretKernelError(
                    .invalidBundle, "\(name): invalid bundle: the environment variable of \(slot.plugin)/\(slot.key): \(reason)")
            }
        }
    }

    /// The times between a load's steps, as they end.
    struct Phases {
        private var last = DispatchTime.now().uptimeNanoseconds
        private(set) var ended: [(name: String, milliseconds: Double)] = []

        mutating func end(_ name: String) {
            let now = DispatchTime.now().uptimeNanoseconds
            ended.append((name, Double(now - last) / 1e6))
            last = now
        }
    }

    /// What serving each slot needs, from its attributes; `offset` is set by
    /// the lookup table's layout.
    private static func servingFacts(_ scan: ScannedBundle, _ configuration: SecretKernel.Configuration, now: Int)
        -> [Snapshot.Serving]
    {
        // Attributes are read in place: copying one retains its strings.
        scan.bytes.withUnsafeBufferPointer { bytes in
            scan.slots.withUnsafeBufferPointer { slots in
                scan.attributes.withUnsafeBufferPointer { attributes in
                    slots.indices.map { index in
                        let slot = slots[index]
                        var entry = Snapshot.Serving(
                            offset: 0, length: -1, expires: attributes[index].expires ?? Int.max, hasValue: slot.hasValue,
                            inactive: attributes[index].inactive,
                            inScope: configuration.scope.map { attributes[index].scopes?.contains($0) ?? true } ?? true)
                        // Every value is opened (each must authenticate); only those served are kept.
                        if slot.hasValue, !entry.inactive, entry.inScope, entry.expires > now {
                            entry.length = Int32(ValueOpener.plaintextCount(sealedCount: slot.sealedByteCount(in: bytes)))
                        }
                        return entry
                    }
                }
            }
        }
    }

    /// Step 6 and the values, per slot on every core: each slot's latest
    /// claim must match it, and its value must authenticate (and, when
    /// served, match its declared pattern); a served value is opened into
    /// `records` at its entry's offset. Returns the epoch that last wrote
    /// each slot (-1: none), and the slots whose value a user's epoch made
    /// unusable (a value an admin signed that does not authenticate throws).
    private static func openValues(
        _ scan: ScannedBundle, _ verifier: ScanVerifier, _ dataKeys: DataKeys, _ serving: [Snapshot.Serving],
        into records: UnsafeMutableRawBufferPointer
    ) throws(BundleSealError) -> (writers: [Int32], unavailable: [(slot: Int, reason: Unusable)]) {
        var writers = [Int32](repeating: -1, count: scan.slots.count)
        let keys = dataKeys.keys
        let failure = Mutex<BundleSealError?>(nil)
        let unusable = Mutex<[(slot: Int, reason: Unusable)]>([])
        let patterns = fieldPatterns(scan.header)
        let claimed = Atomic<Int>(0)
        let environment = Array(scan.header.environment.utf8)
        let epochIDs = scan.epochs.flatMap { Array($0.id.utf8) }  // 16 bytes each
        let chunks = min(64, max(1, scan.slots.count / 512))
        // Every array the loop reads is borrowed once, here: reading them
        // inside it retained and released their storage, shared by both
        // cores, for every slot.
        nonisolated(unsafe) let target = records
        writers.withUnsafeMutableBufferPointer { writerBuffer in
            nonisolated(unsafe) let writerOf = writerBuffer
            withUnsafeBuffers(scan.bytes, environment, epochIDs) { bundleBytes, environmentBytes, idBytes in
                nonisolated(unsafe) let (bytes, environment, epochIDs) = (bundleBytes, environmentBytes, idBytes)
                scan.slots.withUnsafeBufferPointer { slotBuffer in
                    serving.withUnsafeBufferPointer { servingBuffer in
                        nonisolated(unsafe) let (slots, serving) = (slotBuffer, servingBuffer)
                        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                            var scratch = ScanVerifier.Scratch()
                            defer { claimed.add(scratch.matches, ordering: .relaxed) }
                            var aad: [UInt8] = []
                            var unserved: [UInt8] = []  // a value not served still has to authenticate
                            var openers = [ValueOpener?](repeating: nil, count: keys.count)
                            var compiled: [Snapshot.PluginKey: ValuePattern] = [:]  // NSRegularExpression per thread
                            var contained: [(slot: Int, reason: Unusable)] = []
                            defer { if !contained.isEmpty { unusable.withLock { $0 += contained } } }
                            for index in (slots.count * chunk / chunks)..<(slots.count * (chunk + 1) / chunks) {
                                do throws(BundleSealError) {
                                    guard let epoch = try verifier.checkValue(ofSlot: index, bytes: bytes, scratch: &scratch) else { continue }
                                    writerOf[index] = Int32(epoch)
                                    guard !scratch.sealed.isEmpty else { continue }
                                    let opener: ValueOpener
                                    if let existing = openers[epoch] {
                                        opener = existing
                                    } else {
                                        guard let key = keys[epoch] else {
                                            guard dataKeys.failed[epoch] != nil else {
                                                throw .inconsistent(slot: scan.slotKey(index).description, reason: "its epoch's data key is missing")
                                            }
                                            contained.append((index, .dataKey))  // a user's epoch: dataKeys(of:) threw for an admin's
                                            continue
                                        }
                                        opener = try ValueOpener(key: key)
                                        openers[epoch] = opener
                                    }
                                    let entry = serving[index]
                                    valueAAD(slots[index], bytes, environment, UnsafeBufferPointer(rebasing: epochIDs[(epoch * 16)..<(epoch * 16 + 16)]), into: &aad)
                                    let length = ValueOpener.plaintextCount(sealedCount: scratch.sealed.count)
                                    if entry.length < 0, unserved.count != length { unserved = [UInt8](repeating: 0, count: length) }
                                    let opened = scratch.sealed.withUnsafeBytes { sealed in
                                        aad.withUnsafeBytes { aad in
                                            guard entry.length < 0 else {
                                                // The record holds exactly the length the scan promised.
                                                guard length == Int(entry.length) else { return false }
                                                let start = Int(entry.offset)
                                                return opener.open(
                                                    sealed, aad: aad, into: UnsafeMutableRawBufferPointer(rebasing: target[start..<(start + length)]))
                                            }
                                            return unserved.withUnsafeMutableBytes { opener.open(sealed, aad: aad, into: $0) }
                                        }
                                    }
                                    if entry.length < 0 { unserved.withUnsafeMutableBytes { wipe($0) } }
                                    guard opened else {
                                        guard !dataKeys.byAdmin[epoch] else {
                                            throw .undecryptable("slot \(scan.slotKey(index)) does not authenticate (tampered or moved)")
                                        }
                                        contained.append((index, .authentication))
                                        continue
                                    }
                                    // No variable holds a NUL byte, and no writer writes one
                                    // (spec §6, step 7): a user's is contained, an admin's refuses.
                                    if entry.length > 0,
                                       memchr(target.baseAddress! + Int(entry.offset), 0, Int(entry.length)) != nil
                                    {
                                        guard !dataKeys.byAdmin[epoch] else {
                                            throw .undecryptable("slot \(scan.slotKey(index)) holds a NUL byte")
                                        }
                                        contained.append((index, .nul))
                                        continue
                                    }
                                    // Patterns: only what a user signed. An admin's writes (set,
                                    // compile) check them, and an admin's wrong value would
                                    // refuse the bundle, not be contained.
                                    if entry.length >= 0, !patterns.isEmpty, !dataKeys.byAdmin[epoch] {
                                        let name = Snapshot.PluginKey(
                                            plugin: String(decoding: UnsafeBufferPointer(rebasing: bytes[slots[index].plugin]), as: UTF8.self),
                                            key: String(decoding: UnsafeBufferPointer(rebasing: bytes[slots[index].key]), as: UTF8.self))
                                        if let source = patterns[name] {
                                            let pattern = compiled[name] ?? ValuePattern(source)
                                            compiled[name] = pattern
                                            let start = Int(entry.offset)
                                            // Matched as UTF-8 text: bytes that are not fail every pattern (spec §6, step 7).
                                            let value = String(
                                                validating: UnsafeRawBufferPointer(rebasing: target[start..<(start + Int(entry.length))]),
                                                as: UTF8.self)
                                            if value.map({ pattern?.matches($0) == true }) != true {
                                                contained.append((index, .pattern(source)))
                                            }
                                        }
                                    }
                                } catch {
                                    failure.withLock { $0 = $0 ?? error }
                                    return
                                }
                            }
                        }
                    }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        guard claimed.load(ordering: .relaxed) == verifier.expectedMatches else {
            throw .inconsistent(slot: "?", reason: "a claim names no slot")
        }
        return (writers, unusable.withLock { $0 }.sorted { $0.slot < $1.slot })
    }

    /// Why a signed value cannot be served.
    enum Unusable: Sendable, Equatable {
        /// Its epoch's data key does not decrypt with the runtime key.
        case dataKey
        /// It fails AES-GCM under its epoch's data key.
        case authentication
        /// It does not match its declared pattern.
        case pattern(String)
        /// It holds a NUL byte, which no environment variable can.
        case nul

        var description: String {
            switch self {
            case .dataKey: return "the epoch's data key does not decrypt"
            case .authentication: return "the value does not authenticate (AES-GCM)"
            case .pattern(let pattern): return "the value does not match its pattern \(pattern)"
            case .nul: return "the value holds a NUL byte, which no environment variable can"
            }
        }
    }

    /// The data keys of the epochs holding current values, and why any did not open.
    struct DataKeys: @unchecked Sendable {  // SymmetricKey is immutable
        /// Per epoch, in bundle order; nil when not needed or not opened.
        var keys: [SymmetricKey?]
        /// The epochs whose data key did not open, with gpg's reason.
        var failed: [Int: BundleSealError]
        /// Per epoch: signed by an admin (a failure of its values refuses the bundle).
        var byAdmin: [Bool]
    }

    /// Decrypts the data keys of the epochs in `wanted`, each on its own:
    /// one user's bad write must not refuse the others' (fail small).
    /// ``Cv25519Decryptor`` opens them on every core without gpg: with the
    /// runtime's key in the process, or with the agreement asked of the
    /// home's gpg-agent over its socket; gpg takes what that declines. Refuses the whole bundle when gpg
    /// or the runtime key is unusable (a passphrase, no recipient's secret
    /// key at all), or when an epoch an admin signed does not open.
    private static func dataKeys(
        of wanted: [Int], _ scan: ScannedBundle, _ keys: SecretKernel.KeySource, _ configuration: SecretKernel.Configuration
    ) throws(BundleSealError) -> DataKeys {
        let epochs = scan.epochs
        let admins = Set(scan.header.admins)
        let recipients = try RecipientKeys(scan.header)
        var result = DataKeys(
            keys: [SymmetricKey?](repeating: nil, count: epochs.count), failed: [:],
            byAdmin: epochs.map { admins.contains($0.writer) })
        var forGPG = wanted
        let decryptor: Cv25519Decryptor?
        switch configuration.decryptsWithoutGPG ? keys : .automatic {
        case .armoredSecretKey(let key, _): decryptor = inProcessDecryptor(key)
        case .gnupgHome(let home): decryptor = Cv25519Decryptor.agent(of: home, toOpen: wanted.count)  // gpg-agent, over its socket
        case .automatic, .fromVariables: decryptor = nil  // gpg (resolved by keySource, never seen here otherwise)
        }
        if let decryptor {
            forGPG = []
            let messages = wanted.map { (epochs[$0].dataKeyMessage, epochs[$0].id) }
            for (index, outcome) in zip(wanted, BundleOpener.dataKeys(messages, recipients: recipients, inProcess: decryptor)) {
                switch outcome {
                case .success(let key?): result.keys[index] = key
                case .success(nil): forGPG.append(index)
                case .failure(let error): result.failed[index] = error
                }
            }
        }
        var opened = wanted.count - forGPG.count - result.failed.count
        var runtimeKeyOpens: Bool?
        if !forGPG.isEmpty || (opened == 0 && !result.failed.isEmpty) {
            try withContext(keys, configuration) { context throws(BundleSealError) in
                for index in forGPG {
                    do throws(BundleSealError) {
                        result.keys[index] = try BundleOpener.dataKey(
                            epochs[index].dataKeyMessage, epoch: epochs[index].id, recipients: recipients, with: context)
                        opened += 1
                    } catch {
                        switch error {
                        case .gpg(.engineUnavailable), .gpg(.homeTooLong):
                            throw error  // the runtime's own set-up, not the epoch
                        case .gpg(.passphraseRequired), .gpg(.badPassphrase):
                            // gpg asks for a passphrase: for the runtime's key (its
                            // set-up), or for a passphrase-encrypted message a writer
                            // put inside this one. A message to the runtime's own key
                            // tells which, once per load.
                            runtimeKeyOpens = runtimeKeyOpens ?? Self.runtimeKeyOpens(context, scan.header.recipients)
                            guard runtimeKeyOpens == true else { throw error }
                            result.failed[index] = .undecryptable(
                                "epoch \(epochs[index].id)'s data key asks for a passphrase (a message inside the message)")
                        default:
                            result.failed[index] = error
                        }
                    }
                }
                // With no key opened, the runtime may simply hold no recipient's key.
                if opened == 0, !result.failed.isEmpty,
                   !scan.header.recipients.contains(where: { (try? context.key($0, secret: true)) != nil })
                {
                    throw result.failed[wanted.first { result.failed[$0] != nil }!]!
                }
            }
        }
        if let index = wanted.first(where: { result.failed[$0] != nil && result.byAdmin[$0] }) {
            throw .undecryptable("epoch \(epochs[index].id), signed by an admin: \(result.failed[index]!)")
        }
        return result
    }

    /// Whether gpg opens a message to the runtime's own key without asking
    /// for a passphrase: 32 bytes of no meaning, encrypted to each recipient
    /// whose secret key the home holds, until one opens.
    private static func runtimeKeyOpens(_ context: Context, _ recipients: [String]) -> Bool {
        let probe = [UInt8](repeating: 0x5A, count: 32)
        for recipient in recipients where (try? context.key(recipient, secret: true)) != nil {
            if let message = try? context.encrypt(probe, to: [recipient]),
               let opened = try? context.decrypt(message, limit: 32), opened.count == 32
            {
                return true
            }
        }
        return false
    }

    /// The in-process decryptor for an armored runtime key; nil when it
    /// holds no unprotected Curve25519 encryption key (gpg reads it then).
    private static func inProcessDecryptor(_ key: SecureBytes) -> Cv25519Decryptor? {
        key.withUnsafeBytes { bytes in
            var copy = Array(bytes)
            defer { copy.withUnsafeMutableBytes { wipe($0) } }
            return Cv25519Decryptor(secretKeys: copy)
        }
    }

    /// Marks the slots `unavailable` names: no value held (their bytes in
    /// the table wiped), flagged so that lookups serve nothing in their
    /// place. Returns one failure per epoch and reason, for the log.
    private static func contain(
        _ unavailable: [(slot: Int, reason: Unusable)], _ writers: [Int32], _ dataKeys: DataKeys,
        _ serving: inout [Snapshot.Serving], _ table: LookupTable, _ slotRecords: [Int32]
    ) -> [Snapshot.Failure] {
        var failures: [Snapshot.Failure] = []
        for (position, reason) in unavailable {
            let entry = serving[position]
            if entry.length > 0 {
                wipe(UnsafeMutableRawBufferPointer(rebasing: table.records[Int(entry.offset)..<(Int(entry.offset) + Int(entry.length))]))
            }
            serving[position].length = -1
            serving[position].unavailable = true
            table.markUnavailable(atRecord: slotRecords[position])
            let epoch = Int(writers[position])  // openValues recorded it before containing the slot
            if let same = failures.firstIndex(where: { $0.epoch == epoch && $0.reason == reason }) {
                failures[same].slots += 1
            } else {
                var detail = reason.description
                if reason == .dataKey, let why = dataKeys.failed[epoch] { detail += " (\(why))" }
                failures.append(Snapshot.Failure(epoch: epoch, reason: reason, detail: detail, slots: 1))
            }
        }
        return failures
    }

    /// The declared pattern of each plugin key that has one.
    private static func fieldPatterns(_ bundle: SecretBundle) -> [Snapshot.PluginKey: String] {
        var patterns: [Snapshot.PluginKey: String] = [:]
        for field in bundle.fields {
            if let pattern = field.pattern { patterns[Snapshot.PluginKey(plugin: field.plugin, key: field.key)] = pattern }
        }
        return patterns
    }

    /// The AAD of a slot's value (§5), from the bundle bytes, into `out`.
    private static func valueAAD(
        _ slot: ScannedSlot, _ bytes: UnsafeBufferPointer<UInt8>, _ environment: UnsafeBufferPointer<UInt8>,
        _ epochID: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]
    ) {
        out.removeAll(keepingCapacity: true)
        out += "secretc-value 1\n".utf8
        out += environment
        out.append(UInt8(ascii: "\n"))
        out += UnsafeBufferPointer(rebasing: bytes[slot.owner])
        out.append(UInt8(ascii: "\n"))
        out += UnsafeBufferPointer(rebasing: bytes[slot.plugin])
        out.append(UInt8(ascii: "\n"))
        out += UnsafeBufferPointer(rebasing: bytes[slot.key])
        out.append(UInt8(ascii: "\n"))
        out += epochID
    }

    /// `body` with the three arrays' bytes borrowed.
    private static func withUnsafeBuffers<T>(
        _ first: [UInt8], _ second: [UInt8], _ third: [UInt8],
        _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> T
    ) -> T {
        first.withUnsafeBufferPointer { first in
            second.withUnsafeBufferPointer { second in third.withUnsafeBufferPointer { third in body(first, second, third) } }
        }
    }

    /// Runs `body` with a context holding the runtime secret key from
    /// `keys` (as ``keySource(_:)`` resolved it): the home's pooled context,
    /// or a private temporary home holding an armored key, removed (agent
    /// stopped) before this returns.
    private static func withContext<T>(
        _ keys: SecretKernel.KeySource, _ configuration: SecretKernel.Configuration,
        _ body: (Context) throws(BundleSealError) -> T
    ) throws(BundleSealError) -> T {
        do {
            switch keys {
            case .automatic, .fromVariables:  // resolved by keySource: not seen here
                return try ContextPool.shared.withContext(home: nil, body)
            case .gnupgHome(let home):
                // A passphrase for the home's key (SECRETC_GPG_PASSPHRASE, as
                // for a key in the variables): a context of this load's own.
                if let passphrase = homePassphrase(configuration) {
                    return try body(try Context(home: home, passphrase: passphrase))
                }
                // A reload comes back to the same home: reuse its context.
                return try ContextPool.shared.withContext(home: home, body)
            case .armoredSecretKey(let key, let passphrase):
                let home = try TemporaryHome(in: configuration.temporaryDirectory)
                defer { home.remove() }
                let context = try Context(home: home.path, passphrase: passphrase)
                let secretKeys: (read: Int, held: Int)
                do {
                    secretKeys = try key.withUnsafeBytes { try context.importSecretKeys(Array($0)) }
                } catch GPGError.invalidData {
                    throw GPGError.invalidData("SECRETC_GPG_KEY holds no OpenPGP key at all")
                }
                guard secretKeys.read > 0 else {
                    throw GPGError.invalidData("SECRETC_GPG_KEY holds a public key, not a secret key")
                }
                guard secretKeys.held > 0 else {
                    throw GPGError.invalidData("gpg read the secret key in SECRETC_GPG_KEY but could not import it")
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

    /// The configured key source, `.automatic` resolved: `SECRETC_GPG_KEY`
    /// when it is set and not empty, else `GNUPGHOME` (or gpg's default).
    private static func keySource(_ configuration: SecretKernel.Configuration) -> SecretKernel.KeySource {
        guard let variables = keyVariables(configuration) else { return configuration.keys }
        if let armored = variables["SECRETC_GPG_KEY"], !armored.isEmpty {
            return .armoredSecretKey(SecureBytes(armored), passphrase: variables["SECRETC_GPG_PASSPHRASE"])
        }
        return .gnupgHome(variables["GNUPGHOME"])
    }

    /// `SECRETC_GPG_PASSPHRASE` of the variables the key source reads, for
    /// a GnuPG home's key (nil: none given, or the key source names no variables).
    private static func homePassphrase(_ configuration: SecretKernel.Configuration) -> String? {
        keyVariables(configuration)?["SECRETC_GPG_PASSPHRASE"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The variables `.automatic` and `.fromVariables` read the runtime key
    /// from; nil for a key source that names its key itself.
    private static func keyVariables(_ configuration: SecretKernel.Configuration) -> [String: String]? {
        switch configuration.keys {
        case .automatic: ProcessInfo.processInfo.environment
        case .fromVariables(let given): given
        case .gnupgHome, .armoredSecretKey: nil
        }
    }

    /// Each declared plugin key's variable, shared between its slots.
    private static func environmentVariables(_ scan: ScannedBundle) -> [Snapshot.PluginKey: String] {
        // Few distinct plugin keys repeat across many users: compare their
        // bytes with those already seen before making strings and hashing.
        var seen: [(plugin: Range<Int>, key: Range<Int>)] = []
        var names: [Snapshot.PluginKey: String] = [:]
        scan.bytes.withUnsafeBufferPointer { bytes in
            for (index, slot) in scan.slots.enumerated() {
                if seen.count < 64, seen.contains(where: {
                    bytes[$0.key].elementsEqual(bytes[slot.key]) && bytes[$0.plugin].elementsEqual(bytes[slot.plugin])
                }) { continue }
                let pluginKey = Snapshot.PluginKey(plugin: scan.text(slot.plugin), key: scan.text(slot.key))
                if names[pluginKey] == nil {
                    names[pluginKey] = scan.attributes[index].env
                    if seen.count < 64 { seen.append((slot.plugin, slot.key)) }
                }
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

