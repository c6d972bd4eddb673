import BundleFormat
import Crypto
import Foundation
import GPG

/// Checks a bundle's signatures, authorizations and claims with public keys
/// only (docs/bundle-format.md §6, steps 3–6). Needs no secret key.
public struct BundleVerifier {
    /// Fingerprints trusted to sign the policy (a loader's pins, or the
    /// declared admins for `check`).
    public var trustedAdmins: Set<String>
    /// Also verifies a version-1 bundle, by version 1's rules: only for
    /// `compile`, which upgrades it.
    public var upgrading: Bool

    public init(trustedAdmins: Set<String>, upgrading: Bool = false) {
        self.trustedAdmins = trustedAdmins
        self.upgrading = upgrading
    }

    /// What a verified bundle says about each slot's value.
    public struct Verified: Sendable {
        public var bundle: SecretBundle
        /// Epochs by id.
        public var epochs: [String: Epoch]
        /// Slot → the epoch holding its latest claim (for who wrote it, and when).
        public var latestWriter: LatestWriters
        /// When the policy was signed: its signature's own creation time (seconds since 1970).
        public var policySignedAt: Int = 0
    }

    /// Slot → the epoch holding its latest claim, kept as indexes so that a
    /// 100,000-slot bundle costs no epoch copies.
    public struct LatestWriters: Sendable {
        let epochs: [Epoch]
        /// The bundle's slots (canonical, so sorted) and, per slot, its epoch's index or -1.
        let slots: [SlotKey]
        let epochIndexes: [Int32]

        public subscript(slot: SlotKey) -> Epoch? {
            var low = 0
            var high = slots.count
            while low < high {
                let middle = (low + high) / 2
                if slots[middle] < slot { low = middle + 1 } else { high = middle }
            }
            guard low < slots.count, slots[low] == slot, epochIndexes[low] >= 0 else { return nil }
            return epochs[Int(epochIndexes[low])]
        }
    }

    /// Verifies everything but decryption. Signatures by Ed25519 keys are
    /// checked in process; any other key is imported into a private GnuPG
    /// home and checked by gpg.
    /// - Throws: ``BundleSealError`` naming the first problem.
    public func verify(_ bundle: SecretBundle) throws(BundleSealError) -> Verified {
        if !(upgrading && bundle.formatVersion == 1) { try History.requireCurrentVersion(bundle) }
        let checker = try SignatureChecker(bundle)
        defer { checker.close() }
        let policy = try verifyPolicy(bundle, payload: SignedData(bundle.policyPayload()), checker)
        let (epochs, signedAt) = try verifyEpochs(bundle, checker)
        if bundle.formatVersion != 1 {
            try History.check(bundle, bundle.epochs, admins: Set(bundle.admins), signedAt: signedAt)
        }
        let latest = try checkClaims(bundle)
        return Verified(bundle: bundle, epochs: epochs, latestWriter: latest, policySignedAt: policy.timestamp)
    }

    /// Step 4: the policy is signed by a pinned admin listed in the bundle.
    /// - Parameter bundle: its header lines are what is read.
    @discardableResult
    func verifyPolicy(_ bundle: SecretBundle, payload: @autoclosure () -> SignedData, _ checker: SignatureChecker)
        throws(BundleSealError) -> SignatureCheck
    {
        guard let policy = bundle.policy else { throw .untrustedPolicy("the policy is not signed") }
        guard trustedAdmins.contains(policy.signer) else {
            throw .untrustedPolicy("signed by \(policy.signer), which is not a trusted admin")
        }
        guard bundle.admins.contains(policy.signer) else {
            throw .untrustedPolicy("signed by \(policy.signer), which the policy does not list as an admin")
        }
        if bundle.formatVersion != 1 { _ = try RecipientKeys(bundle) }
        return try requireGood(signature: policy.signature, over: payload(), by: policy.signer, checker) {
            .untrustedPolicy($0)
        }
    }

    /// Step 5: each epoch is signed by its writer, who may make every claim.
    private func verifyEpochs(_ bundle: SecretBundle, _ checker: SignatureChecker) throws(BundleSealError)
        -> (epochs: [String: Epoch], signedAt: [SignatureCheck])
    {
        let admins = Set(bundle.admins)
        var epochs: [String: Epoch] = [:]
        var signedAt: [SignatureCheck] = []
        let inherited = inheritedTimes(bundle.epochs)
        for (index, epoch) in bundle.epochs.enumerated() {
            guard bundle.keys[epoch.writer] != nil else {
                throw .badEpochSignature(epoch: epoch.id, reason: "writer \(epoch.writer) has no key in the bundle")
            }
            let payload = epoch.payload(
                environment: bundle.environment, dataKeyDigest: Digest.sha256Hex(epoch.dataKeyMessage),
                formatVersion: bundle.formatVersion)
            let check = try requireGood(signature: epoch.signature, over: SignedData(payload), by: epoch.writer, checker) {
                .badEpochSignature(epoch: epoch.id, reason: $0)
            }
            if bundle.formatVersion != 1 { try History.checkTime(epoch, signedAt: check.timestamp, inherited: inherited[index]) }
            signedAt.append(check)
            // An admin may make any claim; a user only claims for its own slots.
            // (That every claim names a declared slot is checked with the claims, step 6.)
            if !admins.contains(epoch.writer) {
                for claim in epoch.claims {
                    let owner = claim.slot.owner.flatMap { bundle.users[$0] }
                    guard owner != nil && owner == epoch.writer else {
                        throw .unauthorizedWriter(epoch: epoch.id, writer: epoch.writer, slot: claim.slot.description)
                    }
                }
            }
            epochs[epoch.id] = epoch
        }
        return (epochs, signedAt)
    }

    /// Step 6: every value is the one its latest claim names.
    private func checkClaims(_ bundle: SecretBundle) throws(BundleSealError) -> LatestWriters {
        // Canonical order: later epochs overwrite. Indexes, not copies.
        var latest: [SlotKey: (epoch: Int, claim: Int)] = [:]
        latest.reserveCapacity(bundle.slots.count)
        for (epochIndex, epoch) in bundle.epochs.enumerated() {
            for (claimIndex, claim) in epoch.claims.enumerated() { latest[claim.slot] = (epochIndex, claimIndex) }
        }
        var matched = 0
        var epochIndexes = [Int32](repeating: -1, count: bundle.slots.count)
        for (position, slot) in bundle.slots.enumerated() {
            let name = { slot.slot.description }
            let entry = latest[slot.slot]
            if let entry {
                matched += 1
                epochIndexes[position] = Int32(entry.epoch)
            }
            let epoch = entry.map { bundle.epochs[$0.epoch] }
            let digest = entry.flatMap { bundle.epochs[$0.epoch].claims[$0.claim].digest }
            switch (slot.value, epoch) {
            case (nil, nil):
                continue
            case (nil, let epoch?):
                guard digest == nil else {
                    throw .inconsistent(slot: name(), reason: "epoch \(epoch.id) set a value that is missing (dropped?)")
                }
            case (_?, nil):
                throw .inconsistent(slot: name(), reason: "holds a value that no epoch claims")
            case (let value?, let epoch?):
                guard value.epoch == epoch.id else {
                    throw .inconsistent(
                        slot: name(), reason: "holds a value from epoch \(value.epoch), but epoch \(epoch.id) wrote it later")
                }
                guard let digest else {
                    throw .inconsistent(slot: name(), reason: "epoch \(epoch.id) deleted it, yet it holds a value")
                }
                guard SHA256.hash(data: value.bytes).elementsEqual(digest) else {
                    throw .inconsistent(slot: name(), reason: "its value does not match what epoch \(epoch.id) signed")
                }
            }
        }
        if matched < latest.count {  // some claim names no slot: find it for the message
            let declared = Set(bundle.slots.map(\.slot))
            for epoch in bundle.epochs {
                for claim in epoch.claims where !declared.contains(claim.slot) {
                    throw .inconsistent(slot: claim.slot.description, reason: "claimed by epoch \(epoch.id) but not declared")
                }
            }
        }
        return LatestWriters(epochs: bundle.epochs, slots: bundle.slots.map(\.slot), epochIndexes: epochIndexes)
    }

    @discardableResult
    func requireGood(
        signature: [UInt8], over payload: SignedData, by signer: String, _ checker: SignatureChecker,
        _ failure: (String) -> BundleSealError
    ) throws(BundleSealError) -> SignatureCheck {
        let checks: [SignatureCheck]
        let inProcess: Bool
        do {
            (checks, inProcess) = try checker.check(signature, over: payload, by: signer)
        } catch let error as BundleSealError {
            throw error
        } catch {
            throw failure("the signature is not a valid OpenPGP signature")
        }
        guard checks.count == 1, let check = checks.first else { throw failure("expected exactly one signature") }
        // A signature made while its key was valid stays valid after the key
        // expires (OpenPGP; expiry stops new signatures only).
        let madeBeforeExpiry = check.status == .keyExpired && check.keyExpired.map { check.timestamp > 0 && check.timestamp < $0 } == true
        switch madeBeforeExpiry ? .good : check.status {
        case .good:
            guard check.signer == signer else { throw failure("signed by \(check.signer), not \(signer)") }
            // gpg accepts some altered bytes (see SignatureForm); a good signature must also be canonical.
            // (An in-process check already compared the quick-check bytes with the hash.)
            guard inProcess ? SignatureForm.isCanonicalForm(ofCheckedSignature: signature)
                : SignatureForm.isCanonical(signature, over: payload)
            else {
                throw failure("the signature is not in canonical form (altered bytes?)")
            }
            return check
        case .bad: throw failure("bad signature (the signed content was changed)")
        case .missingKey: throw failure("signed by a key that is not in the bundle")
        case .keyExpired: throw failure("signed by an expired key")
        case .keyRevoked: throw failure("signed by a revoked key")
        case .signatureExpired: throw failure("the signature has expired")
        case .error(let message): throw failure(message)
        }
    }
}

/// Checks detached signatures by the bundle's keys: in process for Ed25519
/// keys (step 3's check that each key line holds its fingerprint still
/// applies), through gpg in a private home, created on first need, for others.
final class SignatureChecker {
    private let bundle: SecretBundle
    private var ed25519: [String: Ed25519SigningKey] = [:]
    private var gpg: (home: TemporaryHome, context: Context)?

    /// Step 3: every `key` line holds exactly the key it is listed under.
    init(_ bundle: SecretBundle) throws(BundleSealError) {
        self.bundle = bundle
        for (fingerprint, key) in bundle.keys {
            guard let scan = try? KeyFile(scanning: key), scan.kind == .publicKey, scan.holdsOnlyKeyPackets,
                  scan.fingerprints == [fingerprint]
            else {
                throw .badKey(fingerprint: fingerprint)
            }
        }
    }

    /// The checks, and whether they were made in process.
    func check(_ signature: [UInt8], over payload: SignedData, by signer: String) throws -> ([SignatureCheck], Bool) {
        if let key = try inProcessKey(signer) {
            let check = key.check(signature: signature, over: payload)
            // Not made by the primary key itself: by a signing subkey (gpg
            // signs with the newest one), which only gpg reads.
            if check.status != .missingKey { return ([check], true) }
        }
        // gpgme contexts are not shared between threads: one check at a time
        // (the scan verifier checks epochs on every core).
        return try gpgLock.withLock { (try gpgContext().verifyDetached(signature: signature, data: payload.bytes), false) }
    }

    private let gpgLock = NSLock()

    func close() { gpg?.home.remove() }

    /// True when `fingerprint`'s signatures are checked in process (no gpg).
    func checksInProcess(_ fingerprint: String) -> Bool { (try? inProcessKey(fingerprint)) != nil }

    private func inProcessKey(_ fingerprint: String) throws -> Ed25519SigningKey? {
        if let key = ed25519[fingerprint] { return key }
        guard let bytes = bundle.keys[fingerprint], let key = Ed25519SigningKey(transferable: bytes),
              key.fingerprint == fingerprint
        else { return nil }
        ed25519[fingerprint] = key
        return key
    }

    /// All the bundle's keys in a private home, imported once.
    private func gpgContext() throws(BundleSealError) -> Context {
        if let gpg { return gpg.context }
        do {
            let home = try TemporaryHome(publicKeysOnly: true)
            let context = try Context(home: home.path)
            gpg = (home, context)
            var joined: [UInt8] = []
            for (_, key) in bundle.keys { joined += key }
            if !joined.isEmpty { try context.importKeys(joined) }
            return context
        } catch let error as GPGError {
            throw .gpg(error)
        } catch {
            throw .gpg(.engineUnavailable("\(error)"))
        }
    }
}
