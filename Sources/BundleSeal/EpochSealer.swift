import BundleFormat
import Crypto
import Foundation
import GPG

/// What encrypts an epoch's data key to the recipients' fingerprints: a
/// context holding their public keys, a ``KeyFileEncryptor``, or, for
/// Curve25519 keys, a ``Cv25519Encryptor`` (in process).
public protocol DataKeyEncryptor {
    func encrypt(_ plaintext: UnsafeRawBufferPointer, to recipients: [String]) throws -> [UInt8]
}

extension Context: DataKeyEncryptor {}
extension KeyFileEncryptor: DataKeyEncryptor {}
extension Cv25519Encryptor: DataKeyEncryptor {}

/// Seals one write batch (docs/bundle-format.md §5, §7): a fresh data key,
/// each value under AES-256-GCM with its AAD, the data key encrypted to the
/// recipients, and the writer's signature over the epoch.
public struct EpochSealer {
    /// One change: a new value for a slot, or nil to delete it.
    public struct Change {
        public var slot: SlotKey
        public var value: SecureBytes?
        public init(slot: SlotKey, value: SecureBytes?) {
            self.slot = slot
            self.value = value
        }
    }

    public var environment: String
    /// Fingerprint of the signing key (its secret half must be in `signer`'s home).
    public var writer: String
    public var recipients: [String]
    /// The policy the epoch is written under (the bundle's, as signed).
    public var policy: PolicyReference
    /// What it builds on: the bundle's heads, or what a checkpoint subsumes.
    public var parents: EpochParents

    public init(environment: String, writer: String, recipients: [String], policy: PolicyReference, parents: EpochParents) {
        self.environment = environment
        self.writer = writer
        self.recipients = recipients
        self.policy = policy
        self.parents = parents
    }

    /// A sealer of a write onto signed `bundle`: under its policy, after its heads.
    public init(onto bundle: SecretBundle, writer: String) {
        self.init(
            environment: bundle.environment, writer: writer, recipients: bundle.recipients,
            policy: bundle.policyReference ?? PolicyReference(serial: bundle.policySerial, id: ""),
            parents: .after(bundle.epochs.heads))
    }

    /// Seals `changes` into a new epoch ordered after every epoch in `existing`.
    /// - Parameters:
    ///   - encryptor: encrypts to the recipients' public keys.
    ///   - signer: a context holding the writer's secret key.
    /// - Returns: the epoch and the new value of each changed slot (nil: deleted).
    public func seal(
        _ changes: [Change], after existing: [Epoch], now: Date = Date(), encryptor: some DataKeyEncryptor, signer: Context
    ) throws(BundleSealError) -> (epoch: Epoch, values: [SlotKey: SealedValue?]) {
        try seal(
            changes, afterTime: existing.map(\.time).max() ?? 0, now: now, encryptor: encryptor, signer: signer)
    }

    /// Seals `changes` into a new epoch ordered after every epoch up to `latestTime`.
    public func seal(
        _ changes: [Change], afterTime latestTime: Int, now: Date = Date(), encryptor: some DataKeyEncryptor,
        signer: Context
    ) throws(BundleSealError) -> (epoch: Epoch, values: [SlotKey: SealedValue?]) {
        try seal(
            changes, afterTime: latestTime, now: now, dataKey: try DataKey(encryptor: encryptor, recipients: recipients),
            signer: signer)
    }

    /// Seals `changes` under `dataKey`, made for this sealer's recipients,
    /// as an epoch of a fresh random id (`id`: a given one, for tests that
    /// play a writer choosing its own).
    public func seal(
        _ changes: [Change], afterTime latestTime: Int, now: Date = Date(), dataKey: DataKey, signer: Context,
        id chosen: String? = nil
    ) throws(BundleSealError) -> (epoch: Epoch, values: [SlotKey: SealedValue?]) {
        let id = chosen ?? Self.randomEpochID()
        // Writes are ordered by their chain (each after the bundle's heads),
        // not by the clock: any number in one second share its time. After
        // an epoch dated ahead of this clock the write takes that epoch's
        // time, which readers accept as inherited from its parents.
        let time = max(Int(now.timeIntervalSince1970), latestTime)
        guard time <= SecretBundle.latestTime else {
            throw .history(epoch: id, reason: "no time is left after the latest epoch's (\(latestTime))")
        }
        var claims: [Claim] = []
        var values: [SlotKey: SealedValue?] = [:]
        for change in changes {
            guard let value = change.value else {
                claims.append(Claim(slot: change.slot, digest: nil))
                values[change.slot] = .some(nil)
                continue
            }
            let aad = SecretBundle.valueAAD(environment: environment, slot: change.slot, epoch: id)
            let sealed: AES.GCM.SealedBox
            do {
                sealed = try value.withUnsafeBytes { plaintext in
                    try AES.GCM.seal(plaintext, using: dataKey.key, nonce: AES.GCM.Nonce(), authenticating: aad)
                }
            } catch {
                throw .undecryptable("AES-GCM sealing failed: \(error)")
            }
            guard let combined = sealed.combined else { throw .undecryptable("AES-GCM produced no combined box") }
            let bytes = Array(combined)
            claims.append(Claim(slot: change.slot, digest: Digest.sha256(bytes)))
            values[change.slot] = SealedValue(epoch: id, bytes: bytes)
        }
        claims = Claim.sorted(claims)
        let message = dataKey.message
        var epoch = Epoch(
            time: time, id: id, writer: writer, policy: policy, parents: parents, dataKeyMessage: message, signature: [],
            claims: claims)
        let payload = epoch.payload(environment: environment, dataKeyDigest: Digest.sha256Hex(message))
        do {
            epoch.signature = try signer.signDetached(payload, as: writer)
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw .gpg(.operationFailed(operation: "seal", code: 0, message: "\(error)"))
        }
        return (epoch, values)
    }

    static func randomEpochID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Digest.hex((0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}

/// A fresh 256-bit data key and its encryption to an epoch's recipients
/// (the epoch line's first field). Making it needs nothing of the bundle, so
/// a writer can have gpg encrypt it while it reads and checks the bundle.
public struct DataKey: Sendable {
    public let key: SymmetricKey
    /// The binary OpenPGP message holding the key.
    public let message: [UInt8]

    public init(encryptor: some DataKeyEncryptor, recipients: [String]) throws(BundleSealError) {
        let key = SymmetricKey(size: .bits256)
        do {
            message = try key.withUnsafeBytes { try encryptor.encrypt($0, to: recipients) }
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw .gpg(.operationFailed(operation: "encrypt", code: 0, message: "\(error)"))
        }
        self.key = key
    }
}

/// Signs a bundle's policy as an admin.
public enum PolicySigner {
    /// Signs the bundle's edited policy as a new one: the next serial, naming
    /// the policy it replaces (the first policy when there is none), so that
    /// the epochs written under the old one stay valid.
    public static func signAnew(_ bundle: inout SecretBundle, as admin: String, with context: Context)
        throws(BundleSealError)
    {
        if let current = bundle.policyReference {
            bundle.previousPolicy = current.id
            bundle.policySerial = current.serial + 1
        }
        try sign(&bundle, as: admin, with: context)
    }

    public static func sign(_ bundle: inout SecretBundle, as admin: String, with context: Context)
        throws(BundleSealError)
    {
        do {
            let signature = try context.signDetached(bundle.policyPayload(), as: admin)
            bundle.policy = PolicySignature(signer: admin, signature: signature)
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw .gpg(.operationFailed(operation: "sign", code: 0, message: "\(error)"))
        }
    }
}

/// Decrypts the values of a verified bundle (docs/bundle-format.md §6, step 7).
public enum BundleOpener {
    /// Data keys by epoch id.
    public typealias DataKeys = [String: SymmetricKey]

    /// Every current value (or those of `only`), decrypted. One gpg operation
    /// per epoch that holds one.
    /// - Parameter context: a context holding a recipient's secret key.
    public static func open(_ verified: BundleVerifier.Verified, with context: Context, only: Set<SlotKey>? = nil)
        throws(BundleSealError) -> [SlotKey: SecureBytes]
    {
        let keys = try dataKeys(verified, with: context, only: only)
        var values: [SlotKey: SecureBytes] = [:]
        for slot in verified.bundle.slots {
            guard let sealed = slot.value, let key = keys[sealed.epoch] else { continue }
            if let only, !only.contains(slot.slot) { continue }
            try open(sealed, of: slot.slot, environment: verified.bundle.environment, key: key) { plaintext in
                values[slot.slot] = SecureBytes(Array(plaintext))
            }
        }
        return values
    }

    /// The data key of every epoch holding a current value (of `only`, if
    /// given): on every core through the home's gpg-agent when it holds a
    /// Curve25519 key (``Cv25519Decryptor/agent(of:)``), else one gpg
    /// operation each.
    public static func dataKeys(_ verified: BundleVerifier.Verified, with context: Context, only: Set<SlotKey>? = nil)
        throws(BundleSealError) -> [String: SymmetricKey]
    {
        var needed: [Epoch] = []
        var seen = Set<String>()
        for slot in verified.bundle.slots {
            guard let sealed = slot.value, !seen.contains(sealed.epoch) else { continue }
            if let only, !only.contains(slot.slot) { continue }
            guard let epoch = verified.epochs[sealed.epoch] else {
                throw .inconsistent(slot: slot.slot.description, reason: "its epoch is missing")
            }
            seen.insert(epoch.id)
            needed.append(epoch)
        }
        let decryptor = Cv25519Decryptor.agent(of: context.home, toOpen: needed.count)
        let recipients = try RecipientKeys(verified.bundle)
        let opened = decryptor.map {
            dataKeys(needed.map { ($0.dataKeyMessage, $0.id) }, recipients: recipients, inProcess: $0)
        }
            ?? Array(repeating: .success(nil), count: needed.count)
        var keys: [String: SymmetricKey] = [:]
        for (epoch, result) in zip(needed, opened) {
            if let key = try result.get() {
                keys[epoch.id] = key
            } else {
                keys[epoch.id] = try dataKey(epoch.dataKeyMessage, epoch: epoch.id, recipients: recipients, with: context)
            }
        }
        return keys
    }

    /// The data keys of `messages` opened by `decryptor` on every core, in
    /// order: a key, nil where gpg must decide, or why it does not decrypt.
    public static func dataKeys(
        _ messages: [(message: [UInt8], epoch: String)], recipients: RecipientKeys, inProcess decryptor: Cv25519Decryptor
    ) -> [Result<SymmetricKey?, BundleSealError>]
    {
        var outcomes = [Result<SymmetricKey?, BundleSealError>](repeating: .success(nil), count: messages.count)
        let chunks = min(messages.count, ProcessInfo.processInfo.activeProcessorCount * 4)
        outcomes.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let results = buffer
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                for index in stride(from: chunk, to: messages.count, by: chunks) {
                    results[index] = Result { () throws(BundleSealError) in
                        try dataKey(
                            messages[index].message, epoch: messages[index].epoch, recipients: recipients, inProcess: decryptor)
                    }
                }
            }
        }
        return outcomes
    }

    /// The longest data-key message a reader hands to gpg: a session key
    /// packet per recipient (about 600 bytes for RSA-4096) and the 32-byte key.
    public static let maximumDataKeyMessage = 64 << 10

    /// Decrypts one epoch's data-key message: one gpg operation, bounded in
    /// what it reads and in what it may write (a data key is 32 bytes).
    public static func dataKey(_ message: [UInt8], epoch: String, recipients: RecipientKeys, with context: Context)
        throws(BundleSealError) -> SymmetricKey
    {
        try checkEnvelope(message, epoch: epoch, recipients: recipients)
        let plaintext: SecureBytes
        do {
            plaintext = try context.decrypt(message, limit: 32)
        } catch GPGError.plaintextTooLong {
            throw .undecryptable("epoch \(epoch)'s data key is not 32 bytes")
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw .undecryptable("\(error)")
        }
        return try dataKey(plaintext, epoch: epoch)
    }

    /// Decrypts one epoch's data-key message in process, under the same
    /// rules as gpg's route; nil when the message is gpg's to decrypt
    /// (``Cv25519Decryptor/Outcome/declined(_:)``).
    public static func dataKey(
        _ message: [UInt8], epoch: String, recipients: RecipientKeys, inProcess decryptor: Cv25519Decryptor
    ) throws(BundleSealError) -> SymmetricKey? {
        try checkEnvelope(message, epoch: epoch, recipients: recipients)
        switch decryptor.decrypt(message, limit: 32) {
        case .plaintext(let plaintext):
            return try dataKey(plaintext, epoch: epoch)
        case .refused(let reason):
            throw .undecryptable("epoch \(epoch)'s data key does not decrypt: \(reason)")
        case .declined:
            return nil
        }
    }

    /// The rules every route applies before decrypting, as `check` does:
    /// the size cap; only public-key session keys and one encrypted packet
    /// (a passphrase-encrypted one would make gpg ask the runtime for one);
    /// and session keys to exactly the policy's recipients.
    private static func checkEnvelope(_ message: [UInt8], epoch: String, recipients: RecipientKeys) throws(BundleSealError) {
        guard message.count <= maximumDataKeyMessage else {
            throw .undecryptable("epoch \(epoch)'s data-key message is larger than \(maximumDataKeyMessage) bytes")
        }
        if let problem = recipients.problem(message: message) { throw .undecryptable("epoch \(epoch): \(problem)") }
    }

    private static func dataKey(_ plaintext: SecureBytes, epoch: String) throws(BundleSealError) -> SymmetricKey {
        guard plaintext.count == 32 else { throw .undecryptable("epoch \(epoch)'s data key is not 32 bytes") }
        return plaintext.withUnsafeBytes { SymmetricKey(data: $0) }
    }

    /// Opens one value and lends its plaintext to `body`; the plaintext is
    /// zeroed when `body` returns. Safe to call from several threads.
    public static func open(
        _ sealed: SealedValue, of slot: SlotKey, environment: String, key: SymmetricKey,
        _ body: (UnsafeRawBufferPointer) -> Void
    ) throws(BundleSealError) {
        let aad = SecretBundle.valueAAD(environment: environment, slot: slot, epoch: sealed.epoch)
        guard open(sealed.bytes, aad: aad, key: key, body) else {
            throw .undecryptable("slot \(slot) does not authenticate (tampered or moved)")
        }
    }

    /// Opens nonce ‖ ciphertext ‖ tag under `key` and `aad`, lends the
    /// plaintext to `body` and zeroes it; false when it does not authenticate.
    public static func open(_ sealed: [UInt8], aad: [UInt8], key: SymmetricKey, _ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard let opener = try? ValueOpener(key: key) else { return false }
        var plaintext = [UInt8](repeating: 0, count: ValueOpener.plaintextCount(sealedCount: sealed.count))
        return plaintext.withUnsafeMutableBytes { opened in
            let authentic = sealed.withUnsafeBytes { sealed in
                aad.withUnsafeBytes { aad in opener.open(sealed, aad: aad, into: opened) }
            }
            guard authentic else { return false }
            body(UnsafeRawBufferPointer(opened))
            wipe(opened)
            return true
        }
    }
}
