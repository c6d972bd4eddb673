import BundleFormat
import GPG
import SecretCore

extension SecretBundle {
    /// The principal name to show for a signer: the user id a policy maps
    /// the fingerprint to, else the first word of the key's own user ID
    /// (`ops` for `ops <ops@example.org>`, as `secretc init` names keys),
    /// else the fingerprint's last 16 digits. Escaped for display.
    public func principalName(of fingerprint: String) -> String {
        if let user = userNames[fingerprint] { return user }
        if let key = keys[fingerprint], let id = KeyFile.firstUserID(key),
           let short = id.split(whereSeparator: { $0 == " " || $0 == "<" }).first
        {
            return VisibleText.escaped(String(short))
        }
        return String(fingerprint.suffix(16))
    }
}
