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
    static func load(_ bytes: [UInt8], name: String, _ configuration: SecretKernel.Configuration)
        throws(SecretKernelError) -> Snapshot
    {
        let pins = Set(configuration.trustedAdmins.map { $0.uppercased() })
        guard !pins.isEmpty else {
            throw SecretKernelError(.misconfigured, "no trusted admin fingerprint is configured (SECRETC_TRUSTED_ADMINS)")
        }
        let keys = keySource(configuration)
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
        do throws(BundleSealError) {
            let snapshot = try load(scan, configuration, keys, &phases) { () throws(BundleSealError) in
                try ScanVerifier.checkSignatures(scan, trustedAdmins: pins)
            }
            if let snapshot {
                snapshot.phases = phases.ended
                return snapshot
            }
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
            snapshot.phases = phases.ended
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
        for slot in scan.slots {
            guard needed.count < epochs.count else { break }
            guard let (epoch, _) = slot.valueParts else { continue }
            if let index = epochs.firstIndex(where: { scan.bytes[epoch].elementsEqual($0.id.utf8) }) { needed.insert(index) }
        }
        let wanted = needed.sorted()
        // Verify before decrypt: no data-key message reaches gpg before every
        // signature covering it (the policy's and its epoch's) has verified.
        let decryptDataKeys = { () -> Result<[SymmetricKey], BundleSealError> in
            Result { () throws(BundleSealError) in
                try withContext(keys, configuration) { context throws(BundleSealError) in
                    try wanted.map { index throws(BundleSealError) in
                        try BundleOpener.dataKey(epochs[index].dataKeyMessage, epoch: epochs[index].id, with: context)
                    }
                }
            }
        }
        let decryptedKeys = Mutex<Result<[SymmetricKey], BundleSealError>?>(nil)
        let now = Int((configuration.clock?() ?? Date()).timeIntervalSince1970)
        let checked = Mutex<Result<ScanVerifier.Signatures?, BundleSealError>?>(nil)
        let laidOut = Mutex<(serving: [Snapshot.Serving], table: LookupTable, slotRecords: [Int32])?>(nil)
        let indexed = Mutex<ScanVerifier.Claims?>(nil)
        let described = Mutex<(metadata: [Snapshot.Metadata], variables: [Snapshot.PluginKey: String])?>(nil)
        let digested = Mutex<String>("")
        withoutActuallyEscaping(verify) { verify in
            nonisolated(unsafe) let verify = verify  // called once, on one thread, before this returns
            nonisolated(unsafe) let decryptDataKeys = decryptDataKeys  // likewise
            // The longest tasks first: each core takes the next as it is free.
            DispatchQueue.concurrentPerform(iterations: 5) { task in
                switch task {
                case 0:
                    // The signatures, then (only when they pass) gpg for the data keys;
                    // the other core lays out the table meanwhile.
                    let result = Result { () throws(BundleSealError) in try verify() }
                    checked.withLock { $0 = result }
                    if case .success(.some) = result {
                        let keys = decryptDataKeys()
                        decryptedKeys.withLock { $0 = keys }
                    }
                case 1:
                    var serving = servingFacts(scan, configuration, now: now)
                    var slotRecords: [Int32] = []
                    let table = LookupTable(scan, serving: &serving, slotRecords: &slotRecords)
                    laidOut.withLock { $0 = (serving, table, slotRecords) }
                case 2:
                    let claims = ScanVerifier.Claims(scan)
                    indexed.withLock { $0 = claims }
                case 3:
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
        let (serving, table, slotRecords) = laidOut.withLock { $0! }
        phases.end("checks")
        do throws(BundleSealError) {
            guard let signatures = try checked.withLock({ $0! }).get() else {
                table.free()
                return nil
            }
            let verifier = ScanVerifier(scan, signatures, claims: indexed.withLock { $0! })
            let opened = try decryptedKeys.withLock { $0! }.get()
            var keys = [SymmetricKey?](repeating: nil, count: epochs.count)
            for (index, key) in zip(wanted, opened) { keys[index] = key }
            let writers = try openValues(scan, verifier, keys, serving, into: table.records)
            phases.end("open")
            defer { phases.end("build") }
            let (metadata, variables) = described.withLock { $0! }
            var names: [String: String] = [:]
            for (user, fingerprint) in scan.header.users { names[fingerprint] = user }
            return Snapshot(
                environment: scan.header.environment, serving: serving, metadata: metadata,
                writers: writers, epochWriters: epochs.map { names[$0.writer] ?? $0.writer }, epochTimes: epochs.map(\.time),
                table: table, slotRecords: slotRecords, environmentVariables: variables,
                declared: declared(scan.header), digest: digested.withLock { $0 },
                loadedAt: Date(timeIntervalSince1970: TimeInterval(now)))
        } catch {
            table.free()
            throw error
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
    /// claim must match it, and its value must authenticate; a served value
    /// is opened into `records` at its entry's offset. Returns the epoch
    /// that last wrote each slot (-1: none).
    private static func openValues(
        _ scan: ScannedBundle, _ verifier: ScanVerifier, _ keys: [SymmetricKey?], _ serving: [Snapshot.Serving],
        into records: UnsafeMutableRawBufferPointer
    ) throws(BundleSealError) -> [Int32] {
        var writers = [Int32](repeating: -1, count: scan.slots.count)
        let failure = Mutex<BundleSealError?>(nil)
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
                                            throw .inconsistent(slot: scan.slotKey(index).description, reason: "its epoch's data key is missing")
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
                                        throw .undecryptable("slot \(scan.slotKey(index)) does not authenticate (tampered or moved)")
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
        return writers
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
            case .automatic:  // resolved by keySource: not seen here
                return try ContextPool.shared.withContext(home: nil, body)
            case .gnupgHome(let home):
                // A reload comes back to the same home: reuse its context.
                return try ContextPool.shared.withContext(home: home, body)
            case .armoredSecretKey(let key, let passphrase):
                let home = try TemporaryHome(in: configuration.temporaryDirectory)
                defer { home.remove() }
                let context = try Context(home: home.path, passphrase: passphrase)
                let secretKeys = try key.withUnsafeBytes { try context.importSecretKeys(Array($0)) }
                guard secretKeys.read > 0 else {
                    throw GPGError.invalidData("SECRETC_GPG_KEY holds no OpenPGP secret key")
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
        guard case .automatic = configuration.keys else { return configuration.keys }
        if let armored = configuration.environment["SECRETC_GPG_KEY"], !armored.isEmpty {
            return .armoredSecretKey(SecureBytes(armored), passphrase: configuration.environment["SECRETC_GPG_PASSPHRASE"])
        }
        return .gnupgHome(configuration.environment["GNUPGHOME"])
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

