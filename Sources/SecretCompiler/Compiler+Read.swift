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
        guard let bundle = try file.load() else { throw CompilerError(.notFound, "\(file.displayPath) does not exist yet") }
        let slot = SlotKey(owner: user, plugin: plugin, key: key)
        let name = "\(bundle.environment)/\(slot)"
        let displayPath = file.displayPath
        // gpg decrypts the data key while the signatures are checked; the key
        // is used only once they pass.
        let (keys, verified) = try concurrently({ () -> Result<BundleOpener.DataKeys, CompilerError> in
            do {
                let context = try Context(home: home, passphrase: passphrase)
                return .success(try BundleOpener.dataKeys(ofUnverified: bundle, with: context, only: [slot]))
            } catch let error as BundleSealError {
                if case .gpg(.noSecretKey) = error {
                    return .failure(CompilerError(
                        .forbidden, "reading needs a recipient's secret key",
                        hints: ["recipients: \((recipientNames ?? bundle.recipients).joined(separator: ", "))"]))
                }
                return .failure(.seal(error, bundle: displayPath))
            } catch let error as GPGError {
                return .failure(.gpg(error))
            } catch {
                return .failure(CompilerError(.unavailable, "\(error)"))
            }
        }) { () throws(CompilerError) -> BundleVerifier.Verified in
            do throws(BundleSealError) {
                return try BundleVerifier(trustedAdmins: trustedAdmins).verify(bundle)
            } catch {
                throw .seal(error, bundle: file.displayPath)
            }
        }
        guard let line = verified.bundle.slots.first(where: { $0.slot == slot }) else {
            throw CompilerError(.notFound, "slot \(name) is not in \(file.displayPath)")
        }
        guard let sealed = line.value else { throw CompilerError(.notFound, "slot \(name) has no value") }
        if line.attributes.inactive { throw CompilerError(.forbidden, "slot \(name) is inactive") }
        if let expires = line.attributes.expires, expires <= Int(now.timeIntervalSince1970) {
            throw CompilerError(
                .forbidden, "slot \(name) expired on \(ExpiryDate.format(Date(timeIntervalSince1970: TimeInterval(expires))))")
        }
        guard let key = try keys.get()[sealed.epoch] else { throw CompilerError(.notFound, "slot \(name) has no value") }
        var value = SecureBytes([UInt8]())
        do throws(BundleSealError) {
            try BundleOpener.open(sealed, of: slot, environment: bundle.environment, key: key) { value = SecureBytes(Array($0)) }
        } catch {
            throw .seal(error, bundle: file.displayPath)
        }
        return value
    }

    /// Decrypts values; without a recipient's secret key, says so and names the recipients.
    func open(
        _ verified: BundleVerifier.Verified, with context: Context, only: Set<SlotKey>? = nil, purpose: String
    ) throws(CompilerError) -> [SlotKey: SecureBytes] {
        do throws(BundleSealError) {
            return try BundleOpener.open(verified, with: context, only: only)
        } catch {
            if case .gpg(.noSecretKey) = error {
                throw CompilerError(
                    .forbidden, purpose, hints: ["recipients: \((environment.recipients ?? []).map(\.value).joined(separator: ", "))"])
            }
            throw .seal(error, bundle: file.displayPath)
        }
    }
}
