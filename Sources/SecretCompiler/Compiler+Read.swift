import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretModel

extension Compiler {
    /// Reads one value, for holders of a recipient key, after verifying the
    /// whole bundle against `trustedAdmins`. Refuses values that would not be
    /// served (not set, inactive, expired), saying why.
    public func read(plugin: String, key: String, user: String?, trustedAdmins: Set<String>, now: Date = Date())
        throws(CompilerError) -> SecureBytes
    {
        try Self.read(
            file, plugin: plugin, key: key, user: user, trustedAdmins: trustedAdmins, home: home, passphrase: passphrase,
            recipientNames: (environment.recipients ?? []).map(\.value), now: now)
    }

    /// ``read(plugin:key:user:trustedAdmins:now:)`` of any bundle file, without
    /// declarations: for operators holding only the bundle and the admins' pins.
    public static func read(
        _ file: BundleFile, plugin: String, key: String, user: String?, trustedAdmins: Set<String>, home: String? = nil,
        passphrase: String? = nil, recipientNames: [String]? = nil, now: Date = Date()
    ) throws(CompilerError) -> SecureBytes {
        Context.warmUp()  // gpgme's start-up overlaps parsing
        guard let bytes = try file.read() else { throw CompilerError(.notFound, "\(file.displayPath) does not exist yet") }
        let scan = try file.formatted { () throws(BundleFormatError) in try ScannedBundle(scanning: bytes) }
        let slot = SlotKey(owner: user, plugin: plugin, key: key)
        let name = "\(scan.header.environment)/\(slot)"
        let displayPath = file.displayPath
        let position = scan.position(of: slot)
        let sealed = position.flatMap(scan.sealedValue)
        // gpg decrypts the value's data key while every signature, claim and
        // digest is checked; the key is used only once they pass.
        let (keys, _) = try concurrently({ () -> Result<BundleOpener.DataKeys, CompilerError> in
            guard let sealed, let epoch = scan.epochs.first(where: { $0.id == sealed.epoch }) else { return .success([:]) }
            return Result { () throws(CompilerError) in
                let context = try Self.context(home: home, passphrase: passphrase)
                do throws(BundleSealError) {
                    return [epoch.id: try BundleOpener.dataKey(epoch.dataKeyMessage, epoch: epoch.id, with: context)]
                } catch {
                    throw Self.openingFailure(
                        error, purpose: "reading needs a recipient's secret key",
                        recipients: recipientNames ?? scan.header.recipients, bundle: displayPath)
                }
            }
        }) { () throws(CompilerError) in try verify(scan, trustedAdmins: trustedAdmins, displayPath: displayPath) }
        guard let position else { throw CompilerError(.notFound, "slot \(name) is not in \(file.displayPath)") }
        guard let sealed else { throw CompilerError(.notFound, "slot \(name) has no value") }
        let attributes = scan.attributes[position]
        if attributes.inactive { throw CompilerError(.forbidden, "slot \(name) is inactive") }
        if let expires = attributes.expires, expires <= Int(now.timeIntervalSince1970) {
            throw CompilerError(
                .forbidden, "slot \(name) expired on \(ExpiryDate.format(Date(timeIntervalSince1970: TimeInterval(expires))))")
        }
        guard let key = try keys.get()[sealed.epoch] else { throw CompilerError(.notFound, "slot \(name) has no value") }
        var value = SecureBytes([UInt8]())
        do throws(BundleSealError) {
            try BundleOpener.open(sealed, of: slot, environment: scan.header.environment, key: key) { value = SecureBytes(Array($0)) }
        } catch {
            throw .seal(error, bundle: file.displayPath)
        }
        return value
    }

    /// Steps 3–6 of §6 for every slot: in process when the signers' keys allow,
    /// else (and to name any problem exactly) step by step with ``BundleVerifier``.
    static func verify(_ scan: ScannedBundle, trustedAdmins: Set<String>, displayPath: String) throws(CompilerError) {
        do throws(BundleSealError) {
            if let verifier = try ScanVerifier(scan, trustedAdmins: trustedAdmins) {
                try verifier.checkAllValues()
                return
            }
        } catch {}
        do throws(BundleSealError) {
            _ = try BundleVerifier(trustedAdmins: trustedAdmins).verify(scan.materialized())
        } catch {
            throw .seal(error, bundle: displayPath)
        }
    }

    /// Decrypts values; without a recipient's secret key, says so and names the recipients.
    func open(
        _ verified: BundleVerifier.Verified, with context: Context, only: Set<SlotKey>? = nil, purpose: String
    ) throws(CompilerError) -> [SlotKey: SecureBytes] {
        do throws(BundleSealError) {
            return try BundleOpener.open(verified, with: context, only: only)
        } catch {
            throw Self.openingFailure(
                error, purpose: purpose, recipients: (environment.recipients ?? []).map(\.value), bundle: file.displayPath)
        }
    }

    /// Why values could not be opened: without a recipient's secret key,
    /// `purpose` and the recipients; anything else as a seal error.
    static func openingFailure(_ error: BundleSealError, purpose: String, recipients: [String], bundle: String) -> CompilerError {
        if case .gpg(.noSecretKey) = error {
            return CompilerError(.forbidden, purpose, hints: ["recipients: \(recipients.joined(separator: ", "))"])
        }
        return .seal(error, bundle: bundle)
    }
}
