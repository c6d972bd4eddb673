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
        let values = try open(
            verified, with: try userContext(), only: [slot], purpose: "reading needs a recipient's secret key")
        guard let value = values[slot] else { throw CompilerError(.notFound, "slot \(environmentName)/\(slot) has no value") }
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
                    .forbidden, purpose,
                    hints: ["recipients: \((environment.recipients ?? []).map(\.value).joined(separator: ", "))"])
            }
            throw .seal(error, bundle: file.displayPath)
        }
    }
}
