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
        guard let verified = try verifiedBundle(trusting: trustedAdmins) else {
            throw CompilerError(.notFound, "\(file.displayPath) does not exist yet")
        }
        let slot = SlotKey(owner: user, plugin: plugin, key: key)
        guard let line = verified.bundle.slots.first(where: { $0.slot == slot }) else {
            throw CompilerError(.notFound, "slot \(environmentName)/\(slot) is not in \(file.displayPath)")
        }
        guard line.value != nil else { throw CompilerError(.notFound, "slot \(environmentName)/\(slot) has no value") }
        if line.attributes.inactive { throw CompilerError(.forbidden, "slot \(environmentName)/\(slot) is inactive") }
        if let expires = line.attributes.expires, expires <= Int(now.timeIntervalSince1970) {
            throw CompilerError(
                .forbidden,
                "slot \(environmentName)/\(slot) expired on \(ExpiryDate.format(Date(timeIntervalSince1970: TimeInterval(expires))))")
        }
        let context = try userContext()
        let values: [SlotKey: SecureBytes]
        do throws(BundleSealError) {
            values = try BundleOpener.open(verified, with: context, only: [slot])
        } catch {
            if case .gpg(.noSecretKey) = error {
                throw CompilerError(
                    .forbidden, "reading needs a recipient's secret key",
                    hints: ["recipients: \((environment.recipients ?? []).map(\.value).joined(separator: ", "))"])
            }
            throw .seal(error, bundle: file.displayPath)
        }
        guard let value = values[slot] else { throw CompilerError(.notFound, "slot \(environmentName)/\(slot) has no value") }
        return value
    }
}
