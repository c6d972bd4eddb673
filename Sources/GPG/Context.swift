internal import CGPGME
import Foundation

/// One gpgme context bound to one GnuPG home.
///
/// A context is not thread-safe: use one per thread. Each operation spawns one
/// `gpg` process, so keep a context and batch work through it.
public final class Context {
    /// The longest GnuPG home path whose agent sockets still fit `sun_path`.
    public static let maximumHomeLength = 86

    /// The GnuPG home in use (nil: gpg's default, `GNUPGHOME` or `~/.gnupg`).
    public let home: String?
    private let raw: gpgme_ctx_t
    private let passphrase: Unmanaged<PassphraseBox>
    /// Secret keys looked up so far, by the fingerprint asked for.
    private var secretKeys: [String: KeyHandle] = [:]

    /// Creates a context on `home`.
    /// - Parameters:
    ///   - home: the GnuPG home; nil uses `GNUPGHOME` or gpg's default.
    ///   - passphrase: offered in loopback mode when a secret key asks for one;
    ///     nil means a protected key fails with ``GPGError/passphraseRequired(key:)``.
    /// - Throws: ``GPGError/engineUnavailable(_:)`` or ``GPGError/homeTooLong(path:limit:)``.
    public init(home: String? = nil, passphrase: String? = nil) throws {
        try Engine.ensureReady()
        let effectiveHome = home ?? ProcessInfo.processInfo.environment["GNUPGHOME"]
        if let effectiveHome, effectiveHome.utf8.count > Self.maximumHomeLength {
            throw GPGError.homeTooLong(path: effectiveHome, limit: Self.maximumHomeLength)
        }
        var context: gpgme_ctx_t?
        try check(gpgme_new(&context), "context")
        raw = context!
        self.home = home
        self.passphrase = Unmanaged.passRetained(PassphraseBox(passphrase))
        do {
            try check(gpgme_set_protocol(raw, GPGME_PROTOCOL_OpenPGP), "context")
            if let home { try check(gpgme_ctx_set_engine_info(raw, GPGME_PROTOCOL_OpenPGP, nil, home), "context") }
            gpgme_set_offline(raw, 1)
            try check(gpgme_set_pinentry_mode(raw, GPGME_PINENTRY_MODE_LOOPBACK), "context")
            gpgme_set_passphrase_cb(raw, passphraseCallback, self.passphrase.toOpaque())
        } catch {
            gpgme_release(raw)
            self.passphrase.release()
            throw error
        }
    }

    /// Starts gpg's one-time set-up in the background (see ``Engine``); call
    /// it early in a program that will decrypt, before parsing its input.
    public static func warmUp() { Engine.warmUp() }

    deinit {
        gpgme_release(raw)
        passphrase.release()
    }

    // MARK: Keys

    /// Imports every key in `data` (armored or binary) and returns the
    /// fingerprints gpg reported, in order.
    @discardableResult
    public func importKeys(_ data: [UInt8]) throws -> [String] {
        secretKeys.removeAll()
        let input = try DataHandle.copying(data)
        try check(gpgme_op_import(raw, input.raw), "import")
        guard let result = gpgme_op_import_result(raw) else { return [] }
        var fingerprints: [String] = []
        var status = result.pointee.imports
        while let current = status {
            if gpgme_err_code(current.pointee.result) == GPG_ERR_NO_ERROR, let fpr = current.pointee.fpr {
                fingerprints.append(String(cString: fpr))
            }
            status = current.pointee.next
        }
        if fingerprints.isEmpty && result.pointee.considered == 0 {
            throw GPGError.invalidData("no OpenPGP key found")
        }
        return fingerprints
    }

    /// Imports `data` and counts its secret keys: those gpg read, and those
    /// it holds now (new or already there). Unlike listing secret keys
    /// afterwards, this needs no gpg-agent when `data` holds none.
    public func importSecretKeys(_ data: [UInt8]) throws -> (read: Int, held: Int) {
        _ = try importKeys(data)
        guard let result = gpgme_op_import_result(raw) else { return (0, 0) }
        return (Int(result.pointee.secret_read), Int(result.pointee.secret_imported + result.pointee.secret_unchanged))
    }

    /// Looks up one key in the keyring by fingerprint (of the key or a subkey).
    /// - Throws: ``GPGError/keyNotFound(_:)`` or ``GPGError/noSecretKey(_:)``.
    public func key(_ fingerprint: String, secret: Bool = false) throws -> KeyInfo {
        let key = try handle(fingerprint, secret: secret)
        return withExtendedLifetime(key) { KeyInfo(key.raw) }
    }

    /// Every key in the keyring (public, or only those with a secret half).
    public func listKeys(secret: Bool = false) throws -> [KeyInfo] {
        try check(gpgme_op_keylist_start(raw, nil, secret ? 1 : 0), "key listing")
        return try collectKeyList()
    }

    /// One secret subkey (or primary) whose secret half the agent holds.
    struct SecretSubkey {
        var primary: String
        var fingerprint: String
        var keygrip: String
        /// OpenPGP's algorithm id as gpgme numbers it (18 ECDH, 1 RSA, …).
        var algorithm: Int
        var curve: String?
    }

    /// Every key of the keyring with a secret half, by subkey; listing them
    /// starts the home's agent if it is not running.
    func secretSubkeys() throws -> [SecretSubkey] {
        try check(gpgme_op_keylist_start(raw, nil, 1), "key listing")
        return try collectKeyList { key in
            let primary = key.pointee.fpr.map { String(cString: $0) } ?? ""
            var subkeys: [SecretSubkey] = []
            var subkey = key.pointee.subkeys
            while let current = subkey {
                let sub = current.pointee
                if sub.secret != 0, let fpr = sub.fpr, let grip = sub.keygrip {
                    subkeys.append(SecretSubkey(
                        primary: primary, fingerprint: String(cString: fpr), keygrip: String(cString: grip),
                        algorithm: Int(sub.pubkey_algo.rawValue), curve: sub.curve.map { String(cString: $0) }))
                }
                subkey = sub.next
            }
            return subkeys
        }
    }

    /// The keys held in `data`, read without importing them into the keyring.
    public func keys(in data: [UInt8]) throws -> [KeyInfo] {
        let input = try DataHandle.copying(data)
        try check(gpgme_op_keylist_from_data_start(raw, input.raw, 0), "key listing")
        return try withExtendedLifetime(input) { try collectKeyList() }
    }

    private func collectKeyList() throws -> [KeyInfo] {
        try collectKeyList { [KeyInfo($0)] }
    }

    /// What `read` takes from each key of the listing started, in order.
    private func collectKeyList<T>(_ read: (gpgme_key_t) -> [T]) throws -> [T] {
        var keys: [T] = []
        while true {
            var key: gpgme_key_t?
            let error = gpgme_op_keylist_next(raw, &key)
            if gpgme_err_code(error) == GPG_ERR_EOF { break }
            if gpgme_err_code(error) != GPG_ERR_NO_ERROR {
                _ = gpgme_op_keylist_end(raw)
                throw GPGError.invalidData(errorMessage(error))
            }
            guard let key else { continue }
            keys += read(key)
            gpgme_key_unref(key)
        }
        try check(gpgme_op_keylist_end(raw), "key listing")
        return keys
    }

    /// One key by fingerprint, listed through this context (gpgme_get_key
    /// would make a context of its own, which costs one more gpg process).
    /// Secret keys found are remembered for the context's lifetime: finding
    /// who may sign and then signing look the same key up.
    private func handle(_ fingerprint: String, secret: Bool) throws -> KeyHandle {
        if secret, let known = secretKeys[fingerprint] { return known }
        guard KeyHandle.isFingerprint(fingerprint) else { throw GPGError.keyNotFound("\(fingerprint) (not a fingerprint)") }
        try check(gpgme_op_keylist_start(raw, fingerprint, secret ? 1 : 0), "key look-up")
        var found: [KeyHandle] = []
        while true {
            var key: gpgme_key_t?
            let error = gpgme_op_keylist_next(raw, &key)
            if gpgme_err_code(error) == GPG_ERR_EOF { break }
            guard gpgme_err_code(error) == GPG_ERR_NO_ERROR else {
                _ = gpgme_op_keylist_end(raw)
                throw GPGError.operationFailed(
                    operation: "key look-up", code: gpgme_err_code(error).rawValue, message: errorMessage(error))
            }
            if let key { found.append(KeyHandle(key)) }
        }
        try check(gpgme_op_keylist_end(raw), "key look-up")
        guard let only = found.first else {
            throw secret ? GPGError.noSecretKey(fingerprint) : GPGError.keyNotFound(fingerprint)
        }
        guard found.count == 1 else { throw GPGError.keyNotFound("\(fingerprint) (ambiguous)") }
        if secret { secretKeys[fingerprint] = only }
        return only
    }

    /// The public key, ASCII-armored.
    public func exportPublicKey(_ fingerprint: String) throws -> String {
        try export(fingerprint, mode: 0)
    }

    /// The secret key, ASCII-armored (for handing a runtime key to a service).
    public func exportSecretKey(_ fingerprint: String) throws -> String {
        try export(fingerprint, mode: gpgme_export_mode_t(GPGME_EXPORT_MODE_SECRET))
    }

    private func export(_ fingerprint: String, mode: gpgme_export_mode_t) throws -> String {
        let output = try DataHandle()
        gpgme_set_armor(raw, 1)
        defer { gpgme_set_armor(raw, 0) }
        try mapSecretKeyErrors(fingerprint) {
            try check(gpgme_op_export(raw, fingerprint, mode, output.raw), "export")
        }
        let armored = output.take(wiping: mode != 0)
        guard !armored.isEmpty else { throw GPGError.keyNotFound(fingerprint) }
        return String(decoding: armored, as: UTF8.self)
    }

    /// Generates a key pair without a passphrase: an Ed25519 signing primary and
    /// a Curve25519 encryption subkey (gpg's `future-default`).
    /// - Parameters:
    ///   - userID: e.g. `runtime-production <secretc@localhost>`.
    ///   - expires: seconds from now; nil for never.
    public func generateKey(userID: String, expires: Int? = nil) throws -> KeyInfo {
        var flags = UInt32(GPGME_CREATE_NOPASSWD) | UInt32(GPGME_CREATE_FORCE)
        if expires == nil { flags |= UInt32(GPGME_CREATE_NOEXPIRE) }
        try check(
            gpgme_op_createkey(raw, userID, "future-default", 0, UInt(expires ?? 0), nil, flags), "key generation")
        guard let result = gpgme_op_genkey_result(raw), let fpr = result.pointee.fpr else {
            throw GPGError.operationFailed(operation: "key generation", code: 0, message: "no key was created")
        }
        return try key(String(cString: fpr), secret: true)
    }

    // MARK: Encryption

    /// Encrypts `plaintext` to every recipient (binary OpenPGP message).
    /// - Parameter recipients: primary or subkey fingerprints; each must be able to encrypt.
    public func encrypt(_ plaintext: UnsafeRawBufferPointer, to recipients: [String]) throws -> [UInt8] {
        precondition(!recipients.isEmpty, "encrypt needs at least one recipient")
        let keys = try recipients.map { fingerprint -> KeyHandle in
            let key = try handle(fingerprint, secret: false)
            let info = withExtendedLifetime(key) { KeyInfo(key.raw) }
            guard info.canEncrypt else {
                throw GPGError.unusableKey(fingerprint: info.fingerprint, reason: unusableReason(info, need: "encrypt"))
            }
            return key
        }
        var array: [gpgme_key_t?] = keys.map { $0.raw } + [nil]
        let input = try DataHandle(copying: plaintext)
        let output = try DataHandle()
        let error = array.withUnsafeMutableBufferPointer { buffer in
            gpgme_op_encrypt(raw, buffer.baseAddress, GPGME_ENCRYPT_ALWAYS_TRUST, input.raw, output.raw)
        }
        try check(error, "encrypt")
        return withExtendedLifetime(keys) { output.take() }
    }

    /// Encrypts `plaintext` to the public key in each file (gpg's
    /// `--recipient-file`): nothing is imported or looked up first, so this
    /// is one gpg process. gpg refuses a key that cannot encrypt.
    public func encrypt(_ plaintext: UnsafeRawBufferPointer, toKeyFiles paths: [String]) throws -> [UInt8] {
        precondition(!paths.isEmpty, "encrypt needs at least one recipient")
        guard !paths.contains(where: { $0.contains("\n") }) else { throw GPGError.invalidData("a key file path holds a line break") }
        let recipients = paths.map { "--file\n\($0)" }.joined(separator: "\n")
        let input = try DataHandle(copying: plaintext)
        let output = try DataHandle()
        try check(gpgme_op_encrypt_ext(raw, nil, recipients, GPGME_ENCRYPT_ALWAYS_TRUST, input.raw, output.raw), "encrypt")
        return output.take()
    }

    /// Encrypts a byte array; see ``encrypt(_:to:)-(UnsafeRawBufferPointer,_)``.
    public func encrypt(_ plaintext: [UInt8], to recipients: [String]) throws -> [UInt8] {
        try plaintext.withUnsafeBytes { try encrypt($0, to: recipients) }
    }

    /// Decrypts an OpenPGP message with whatever secret key the home holds.
    /// - Throws: ``GPGError/noSecretKey(_:)`` when no recipient key is here,
    ///   ``GPGError/decryptionFailed(_:)`` when the message is damaged.
    public func decrypt(_ ciphertext: [UInt8]) throws -> SecureBytes {
        let input = try DataHandle.copying(ciphertext)
        let output = try DataHandle()
        return try decrypt(input, into: output) { SecureBytes(output.take(wiping: true)) }
    }

    /// Decrypts `ciphertext` whose plaintext is at most `limit` bytes: gpg's
    /// output goes to a sink that refuses byte `limit + 1`, which ends gpg,
    /// so a message that decompresses to gigabytes costs neither the time
    /// nor the memory to produce them.
    /// - Throws: ``GPGError/plaintextTooLong(limit:)`` when the plaintext is longer.
    public func decrypt(_ ciphertext: [UInt8], limit: Int) throws -> SecureBytes {
        let input = try DataHandle.copying(ciphertext)
        let sink = BoundedSink(limit: limit)
        defer { sink.wipe() }
        let output = try DataHandle(writingTo: sink)
        do {
            return try decrypt(input, into: output) { SecureBytes(sink.bytes) }
        } catch where sink.overflowed {
            throw GPGError.plaintextTooLong(limit: limit)
        }
    }

    private func decrypt(_ input: DataHandle, into output: DataHandle, _ result: () -> SecureBytes) throws -> SecureBytes {
        let error = gpgme_op_decrypt(raw, input.raw, output.raw)
        let code = gpgme_err_code(error)
        if code != GPG_ERR_NO_ERROR {
            _ = output.take(wiping: true)
            switch code {
            case GPG_ERR_NO_SECKEY: throw GPGError.noSecretKey("any recipient of the message")
            case GPG_ERR_NO_DATA: throw GPGError.invalidData("no encrypted OpenPGP message found")
            case GPG_ERR_CANCELED: throw GPGError.passphraseRequired(key: "for the message")
            case GPG_ERR_BAD_PASSPHRASE: throw GPGError.badPassphrase(key: "for the message")
            default: throw GPGError.decryptionFailed(errorMessage(error))
            }
        }
        return result()
    }

    // MARK: Signatures

    /// A detached binary signature over `data` made with the secret key of
    /// `signer` (a primary key's fingerprint).
    ///
    /// gpg is handed the fingerprint as it is, with no key look-up first:
    /// one gpg process, in which gpg picks the key's signing (sub)key as it
    /// always does. Only when gpg refuses the key is it looked up, to say why.
    /// - Throws: ``GPGError/noSecretKey(_:)`` when the home does not hold its
    ///   secret half, ``GPGError/unusableKey(fingerprint:reason:)`` when it
    ///   may not sign (expired, revoked, no signing subkey).
    public func signDetached(_ data: [UInt8], as signer: String) throws -> [UInt8] {
        let key = try secretKeys[signer] ?? KeyHandle(naming: signer)
        gpgme_signers_clear(raw)
        defer { gpgme_signers_clear(raw) }
        try withExtendedLifetime(key) { try check(gpgme_signers_add(raw, key.raw), "sign") }
        let input = try DataHandle.copying(data)
        let output = try DataHandle()
        do {
            try mapSecretKeyErrors(signer) {
                try check(gpgme_op_sign(raw, input.raw, output.raw, GPGME_SIG_MODE_DETACH), "sign")
            }
        } catch GPGError.operationFailed(_, let code, _) where code == GPG_ERR_UNUSABLE_SECKEY.rawValue {
            throw refusedSigner(signer)
        }
        return output.take()
    }

    /// Why gpg refused to sign with `signer` (it reports an expired key as
    /// missing, too): the key is looked up to say.
    private func refusedSigner(_ signer: String) -> GPGError {
        secretKeys[signer] = nil
        do {
            let info = try key(signer, secret: true)
            guard !info.canSign else {
                // The key itself is fine: gpg-agent could not use its secret
                // part (the agent died or cannot start, or the secret part is a stub).
                return .operationFailed(
                    operation: "sign", code: GPG_ERR_UNUSABLE_SECKEY.rawValue,
                    message: "gpg-agent could not use the secret part of \(info.fingerprint); "
                        + "check that gpg-agent runs for this GNUPGHOME (gpgconf --launch gpg-agent) "
                        + "and that the home holds the secret key, not only a stub")
            }
            return .unusableKey(fingerprint: info.fingerprint, reason: unusableReason(info, need: "sign"))
        } catch let error as GPGError {
            return error
        } catch {
            return .noSecretKey(signer)
        }
    }

    /// Checks a detached signature; one entry per signature found.
    /// - Throws: ``GPGError/invalidData(_:)`` when `signature` holds no signature.
    public func verifyDetached(signature: [UInt8], data: [UInt8]) throws -> [SignatureCheck] {
        let signatureData = try DataHandle.copying(signature)
        let signedData = try DataHandle.copying(data)
        let error = gpgme_op_verify(raw, signatureData.raw, signedData.raw, nil)
        switch gpgme_err_code(error) {
        case GPG_ERR_NO_ERROR: break
        case GPG_ERR_NO_DATA, GPG_ERR_BAD_DATA, GPG_ERR_INV_PACKET:
            throw GPGError.invalidData("no valid OpenPGP signature found")
        default: try check(error, "verify")
        }
        var checks: [SignatureCheck] = []
        var signature = gpgme_op_verify_result(raw)?.pointee.signatures
        while let current = signature {
            let sig = current.pointee
            checks.append(SignatureCheck(
                status: Self.status(sig.status),
                signer: sig.fpr.map { String(cString: $0) } ?? "",
                timestamp: Int(sig.timestamp)))
            signature = sig.next
        }
        if checks.isEmpty { throw GPGError.invalidData("no valid OpenPGP signature found") }
        // The result pointers are gone now; resolve subkey fingerprints to primaries.
        for index in checks.indices where !checks[index].signer.isEmpty {
            guard let info = try? key(checks[index].signer) else { continue }
            let expiries = [info.expires, info.subkeyExpiries[checks[index].signer]].compactMap { $0 }
            checks[index].keyExpires = expiries.min().map { Int($0.timeIntervalSince1970) }
            if checks[index].status == .keyExpired { checks[index].keyExpired = checks[index].keyExpires }
            checks[index].signer = info.fingerprint
        }
        return checks
    }

    private static func status(_ error: gpgme_error_t) -> SignatureCheck.Status {
        switch gpgme_err_code(error) {
        case GPG_ERR_NO_ERROR: return .good
        case GPG_ERR_BAD_SIGNATURE: return .bad
        case GPG_ERR_NO_PUBKEY: return .missingKey
        case GPG_ERR_KEY_EXPIRED: return .keyExpired
        case GPG_ERR_CERT_REVOKED: return .keyRevoked
        case GPG_ERR_SIG_EXPIRED: return .signatureExpired
        default: return .error(errorMessage(error))
        }
    }

    // MARK: Helpers

    private func mapSecretKeyErrors(_ key: String, _ body: () throws -> Void) throws {
        let box = passphrase.takeUnretainedValue()
        box.wasRequested = false
        do {
            try body()
        } catch GPGError.operationFailed(_, let code, _) where code == GPG_ERR_NO_SECKEY.rawValue {
            throw GPGError.noSecretKey(key)
        } catch GPGError.operationFailed(_, let code, _) where code == GPG_ERR_BAD_PASSPHRASE.rawValue {
            throw box.value == nil ? GPGError.passphraseRequired(key: key) : GPGError.badPassphrase(key: key)
        } catch GPGError.operationFailed(_, let code, _) where code == GPG_ERR_CANCELED.rawValue && box.wasRequested {
            throw GPGError.passphraseRequired(key: key)
        }
    }

    private func unusableReason(_ info: KeyInfo, need: String) -> String {
        if info.isRevoked { return "it is revoked" }
        if info.isExpired { return "it expired" }
        if info.isDisabled { return "it is disabled" }
        return "it has no valid subkey that can \(need)"
    }
}

/// The passphrase offered in loopback mode, shared with gpgme's C callback.
final class PassphraseBox {
    let value: SecureBytes?
    var wasRequested = false
    init(_ value: String?) { self.value = value.map(SecureBytes.init) }
}

private let passphraseCallback: gpgme_passphrase_cb_t = { hook, _, _, previousWasBad, fd in
    guard let hook else { return gpgme_error(GPG_ERR_CANCELED) }
    let box = Unmanaged<PassphraseBox>.fromOpaque(hook).takeUnretainedValue()
    box.wasRequested = true
    guard let value = box.value, previousWasBad == 0 else {
        return gpgme_error(previousWasBad != 0 ? GPG_ERR_BAD_PASSPHRASE : GPG_ERR_CANCELED)
    }
    value.withUnsafeBytes { bytes in
        if let base = bytes.baseAddress { _ = gpgme_io_writen(fd, base, bytes.count) }
    }
    _ = gpgme_io_writen(fd, "\n", 1)
    return 0
}
