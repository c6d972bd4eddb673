import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretModel

extension Compiler {
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
