/// The outcome of checking one signature, copied out of gpgme.
public struct SignatureCheck: Sendable, Hashable {
    /// How the signature fared.
    public enum Status: Sendable, Hashable {
        /// Cryptographically valid, made by a key that is neither expired nor revoked.
        case good
        /// The signature does not match the data.
        case bad
        /// The signer's public key is not in the keyring.
        case missingKey
        /// Made by a key that has since expired.
        case keyExpired
        /// Made by a key that has been revoked.
        case keyRevoked
        /// The signature itself has expired.
        case signatureExpired
        /// Anything else gpg reported, in its words.
        case error(String)
    }

    public var status: Status
    /// The primary fingerprint of the signing key when it is known, else what
    /// gpg reported (a subkey fingerprint or a key id).
    public var signer: String
    /// When the signature was made, in seconds since 1970 (0 when unknown).
    public var timestamp: Int
    /// For ``Status/keyExpired``: when the signing key (the earlier of its
    /// primary key's and the signing subkey's expiry) stopped being valid,
    /// so a caller can tell a signature made before that (still valid, as
    /// OpenPGP defines) from one made after.
    public var keyExpired: Int?
    /// When the signing key (the earlier of its primary key's and the
    /// signing subkey's expiry) expires or expired, whatever the status;
    /// nil when it does not expire or is not known.
    public var keyExpires: Int?

    public init(status: Status, signer: String, timestamp: Int) {
        self.status = status
        self.signer = signer
        self.timestamp = timestamp
    }
}
