internal import CGPGME
import Foundation

/// What secretc needs to know about an OpenPGP key, copied out of gpgme.
public struct KeyInfo: Sendable, Hashable {
    /// The primary key's fingerprint, upper-case hex.
    public var fingerprint: String
    /// User ids, in the key's order, revoked ones left out.
    public var userIDs: [String]
    /// Fingerprints of every subkey, the primary first.
    public var subkeyFingerprints: [String]
    /// True when a valid (unexpired, unrevoked) subkey can encrypt.
    public var canEncrypt: Bool
    /// True when a valid (unexpired, unrevoked) subkey can sign.
    public var canSign: Bool
    /// True when the secret half is available (only for keyring look-ups).
    public var hasSecret: Bool
    public var isRevoked: Bool
    public var isExpired: Bool
    public var isDisabled: Bool
    /// When the primary key expires, nil for never.
    public var expires: Date?
    /// When the primary key was created.
    public var created: Date?
    /// The earliest expiry of the primary key or a subkey that has not
    /// expired yet: until then, what gpg says of the key stays the same.
    public var nextExpiry: Date?
    /// The subkey gpg encrypts to: the newest valid one that can encrypt
    /// (nil when none can, or the key as a whole is unusable).
    public var encryptionSubkey: String?
    /// When each subkey (by fingerprint, the primary's included) expires,
    /// for those that do.
    public var subkeyExpiries: [String: Date] = [:]

    public init(
        fingerprint: String, userIDs: [String], subkeyFingerprints: [String] = [],
        canEncrypt: Bool, canSign: Bool, hasSecret: Bool = false, isRevoked: Bool = false,
        isExpired: Bool = false, isDisabled: Bool = false, expires: Date? = nil, created: Date? = nil,
        nextExpiry: Date? = nil, encryptionSubkey: String? = nil
    ) {
        self.fingerprint = fingerprint
        self.userIDs = userIDs
        self.subkeyFingerprints = subkeyFingerprints
        self.canEncrypt = canEncrypt
        self.canSign = canSign
        self.hasSecret = hasSecret
        self.isRevoked = isRevoked
        self.isExpired = isExpired
        self.isDisabled = isDisabled
        self.expires = expires
        self.created = created
        self.nextExpiry = nextExpiry ?? expires
        self.encryptionSubkey = encryptionSubkey
    }

    /// The first user id, or the fingerprint when the key has none.
    public var displayName: String { userIDs.first ?? fingerprint }
}

extension KeyInfo {
    /// Copies a gpgme key; the caller still owns (and unrefs) `key`.
    init(_ key: gpgme_key_t) {
        var uids: [String] = []
        var uid = key.pointee.uids
        while let current = uid {
            if current.pointee.revoked == 0, current.pointee.invalid == 0, let text = current.pointee.uid {
                uids.append(String(cString: text))
            }
            uid = current.pointee.next
        }
        var fingerprints: [String] = []
        var canEncrypt = false
        var canSign = false
        var subkey = key.pointee.subkeys
        var primaryExpires: Date?
        var primaryCreated: Date?
        var nextExpiry: Int?
        var first = true
        var newestEncrypting: (fingerprint: String, created: Int)?
        var expiries: [String: Date] = [:]
        while let current = subkey {
            let sub = current.pointee
            if let fpr = sub.fpr {
                fingerprints.append(String(cString: fpr))
                if sub.expires > 0 { expiries[String(cString: fpr)] = Date(timeIntervalSince1970: TimeInterval(sub.expires)) }
            }
            if first {
                primaryExpires = sub.expires > 0 ? Date(timeIntervalSince1970: TimeInterval(sub.expires)) : nil
                primaryCreated = sub.timestamp > 0 ? Date(timeIntervalSince1970: TimeInterval(sub.timestamp)) : nil
                first = false
            }
            if sub.expires > 0, sub.expired == 0 { nextExpiry = min(nextExpiry ?? Int(sub.expires), Int(sub.expires)) }
            let usable = sub.revoked == 0 && sub.expired == 0 && sub.disabled == 0 && sub.invalid == 0
            if usable && sub.can_encrypt != 0 {
                canEncrypt = true
                // gpg takes the newest (the first of equally new ones).
                if let fpr = sub.fpr, Int(sub.timestamp) > newestEncrypting?.created ?? -1 {
                    newestEncrypting = (String(cString: fpr), Int(sub.timestamp))
                }
            }
            if usable && sub.can_sign != 0 { canSign = true }
            subkey = sub.next
        }
        let keyUsable = key.pointee.revoked == 0 && key.pointee.expired == 0 && key.pointee.disabled == 0
        self.init(
            fingerprint: key.pointee.fpr.map { String(cString: $0) } ?? fingerprints.first ?? "",
            userIDs: uids,
            subkeyFingerprints: fingerprints,
            canEncrypt: keyUsable && canEncrypt,
            canSign: keyUsable && canSign,
            hasSecret: key.pointee.secret != 0,
            isRevoked: key.pointee.revoked != 0,
            isExpired: key.pointee.expired != 0,
            isDisabled: key.pointee.disabled != 0,
            expires: primaryExpires,
            created: primaryCreated,
            nextExpiry: nextExpiry.map { Date(timeIntervalSince1970: TimeInterval($0)) },
            encryptionSubkey: keyUsable && canEncrypt ? newestEncrypting?.fingerprint : nil)
        subkeyExpiries = expiries
    }
}

/// Owns one `gpgme_key_t` reference.
final class KeyHandle {
    let raw: gpgme_key_t
    init(_ raw: gpgme_key_t) { self.raw = raw }
    deinit { gpgme_key_unref(raw) }

    /// True when `text` has the shape of a v4 or v5 fingerprint (40 or 64 hex digits).
    static func isFingerprint(_ text: String) -> Bool {
        [40, 64].contains(text.utf8.count)
            && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }
    }

    /// A key object that only names a primary key by its fingerprint, made
    /// without asking gpg: all a signer needs, since gpgme hands gpg the
    /// first subkey's `keyid` field as `-u`, here the whole fingerprint.
    /// Allocated as gpgme allocates keys, so `gpgme_key_unref` frees it.
    convenience init(naming fingerprint: String) throws {
        guard Self.isFingerprint(fingerprint), let key = calloc(1, MemoryLayout<_gpgme_key>.size)?.assumingMemoryBound(to: _gpgme_key.self)
        else { throw GPGError.keyNotFound("\(fingerprint) (not a fingerprint)") }
        guard let subkey = calloc(1, MemoryLayout<_gpgme_subkey>.size)?.assumingMemoryBound(to: _gpgme_subkey.self) else {
            free(key)
            throw GPGError.keyNotFound(fingerprint)
        }
        // The subkey's `fpr` is freed with it; `keyid` shares its string.
        subkey.pointee.fpr = strdup(fingerprint)
        subkey.pointee.keyid = subkey.pointee.fpr
        key.pointee._refs = 1
        key.pointee.protocol = GPGME_PROTOCOL_OpenPGP
        key.pointee.subkeys = subkey
        key.pointee._last_subkey = subkey
        key.pointee.fpr = strdup(fingerprint)
        self.init(key)
    }
}
