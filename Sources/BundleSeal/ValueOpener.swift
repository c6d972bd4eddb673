import CGcrypt
import Crypto
import GPG

/// Opens values sealed under one data key (AES-256-GCM, docs/bundle-format.md
/// §5) with one key schedule for all of them.
///
/// A loader opens 100,000 values under a single data key; swift-crypto's
/// `AES.GCM.open` expands the key, sets up GHASH and allocates its box and
/// result for each one, which cost 2–3 µs a value. This keeps a libgcrypt
/// cipher handle (libgcrypt is what gpg itself encrypts with) and decrypts
/// straight into the caller's memory: about 0.2 µs a value.
///
/// Not safe to share between threads: make one per thread.
public final class ValueOpener {
    private var handle: gcry_cipher_hd_t?

    /// - Throws: ``BundleSealError/undecryptable(_:)`` when libgcrypt is
    ///   unusable (too old, or refuses the key).
    public init(key: SymmetricKey) throws(BundleSealError) {
        guard Self.libraryReady else {
            throw .undecryptable("libgcrypt 1.8 or later is required to open values")
        }
        var handle: gcry_cipher_hd_t?
        guard gcry_cipher_open(&handle, Int32(GCRY_CIPHER_AES256.rawValue), Int32(GCRY_CIPHER_MODE_GCM.rawValue), 0) == 0,
            let handle
        else {
            throw .undecryptable("libgcrypt cannot open an AES-256-GCM cipher")
        }
        self.handle = handle
        let status = key.withUnsafeBytes { gcry_cipher_setkey(handle, $0.baseAddress, $0.count) }
        guard status == 0 else { throw .undecryptable("libgcrypt refuses the data key") }
    }

    /// libgcrypt's initialisation, once per process (a static `let` runs
    /// once, whichever thread gets there first: libgcrypt must not be
    /// initialised from two threads at once).
    private static let libraryReady = secretc_gcrypt_initialize("1.8.0") != 0

    deinit {
        gcry_cipher_close(handle)  // wipes the key schedule
    }

    /// How many plaintext bytes `sealedCount` bytes of nonce ‖ ciphertext ‖ tag hold.
    public static func plaintextCount(sealedCount: Int) -> Int { max(sealedCount - 28, 0) }

    /// Opens nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes) under `aad` into
    /// `plaintext`, which must hold exactly the ciphertext's length. Returns
    /// false, with `plaintext` zeroed, when the value does not authenticate.
    public func open(
        _ sealed: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer, into plaintext: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard sealed.count >= 28, plaintext.count == sealed.count - 28, let base = sealed.baseAddress else { return false }
        let ciphertext = base + 12
        let tag = base + sealed.count - 16
        let authentic =
            secretc_gcrypt_cipher_reset(handle) == 0
            && gcry_cipher_setiv(handle, base, 12) == 0
            && gcry_cipher_authenticate(handle, aad.baseAddress, aad.count) == 0
            && gcry_cipher_decrypt(handle, plaintext.baseAddress, plaintext.count, ciphertext, plaintext.count) == 0
            && gcry_cipher_checktag(handle, tag, 16) == 0
        if !authentic, plaintext.count > 0 { wipe(plaintext) }
        return authentic
    }
}
