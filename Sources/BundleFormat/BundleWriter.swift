import Foundation

extension SecretBundle {
    /// The canonical text of the bundle (docs/bundle-format.md §3).
    public func serialized() -> [UInt8] {
        var out = ""
        out.reserveCapacity(slots.count * 160 + epochs.count * 600 + 4096)
        out += "secretc-bundle \(Self.version)\n"
        appendPolicyLines(to: &out)
        if let policy {
            out += "policy \(policy.signer) \(Base64.encode(policy.signature))\n"
        }
        for epoch in epochs.sorted(by: Epoch.canonicalOrder) {
            out += "epoch \(epoch.time) \(epoch.id) \(epoch.writer) \(Base64.encode(epoch.dataKeyMessage)) "
            out += "\(Base64.encode(epoch.signature)) \(Claim.sortedTexts(epoch.claims).joined(separator: ";"))\n"
        }
        for slot in slots.sorted(by: { $0.slot < $1.slot }) {
            out += slot.line(maskingValue: false)
        }
        return Array(out.utf8)
    }

    /// What the admin signs: who may decrypt and write, every key, and every
    /// slot with its value masked (§4).
    public func policyPayload() -> [UInt8] {
        var out = "secretc-policy 1\n"
        appendPolicyLines(to: &out)
        for slot in slots.sorted(by: { $0.slot < $1.slot }) {
            out += slot.line(maskingValue: true)
        }
        return Array(out.utf8)
    }

    private func appendPolicyLines(to out: inout String) {
        out += "environment \(environment)\n"
        for fingerprint in recipients.sorted() { out += "recipient \(fingerprint)\n" }
        for fingerprint in admins.sorted() { out += "admin \(fingerprint)\n" }
        for (user, fingerprint) in users.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            out += "user \(user) \(fingerprint)\n"
        }
        for (fingerprint, key) in keys.sorted(by: { $0.key < $1.key }) { out += "key \(fingerprint) \(Base64.encode(key))\n" }
        for field in FieldLine.canonical(fields) { out += field.line }
    }

    /// The additional authenticated data binding a value to its place and write (§5).
    public static func valueAAD(environment: String, slot: SlotKey, epoch: String) -> [UInt8] {
        Array("secretc-value 1\n\(environment)\n\(slot.owner ?? "-")\n\(slot.plugin)\n\(slot.key)\n\(epoch)".utf8)
    }
}

extension Epoch {
    /// Canonical order: time, then id.
    public static func canonicalOrder(_ lhs: Epoch, _ rhs: Epoch) -> Bool { (lhs.time, lhs.id) < (rhs.time, rhs.id) }

    /// What the writer signs (§4).
    /// - Parameter dataKeyDigest: lower-case hex SHA-256 of ``dataKeyMessage``.
    public func payload(environment: String, dataKeyDigest: String) -> [UInt8] {
        var out = "secretc-epoch 1\nenvironment \(environment)\nepoch \(id)\ntime \(time)\nwriter \(writer)\n"
        out += "data-key \(dataKeyDigest)\n"
        // The same order as the epoch line's claims, each text computed once.
        for claim in Claim.sorted(claims) {
            out += "claim \(claim.slot.owner ?? "-") \(claim.slot.plugin) \(claim.slot.key) "
            out += "\(claim.digest.map(Base64.encode) ?? "-")\n"
        }
        return Array(out.utf8)
    }
}

extension Claim {
    /// Claims in canonical order (their `owner/plugin/KEY=digest` texts, bytewise), each text computed once.
    public static func sorted(_ claims: [Claim]) -> [Claim] {
        claims.map { ($0.text, $0) }.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }.map(\.1)
    }

    static func sortedTexts(_ claims: [Claim]) -> [String] {
        claims.map(\.text).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}

extension FieldLine {
    /// Grouped by plugin (bytewise), keeping each plugin's manifest order.
    static func canonical(_ fields: [FieldLine]) -> [FieldLine] {
        fields.enumerated().sorted {
            $0.element.plugin == $1.element.plugin
                ? $0.offset < $1.offset : $0.element.plugin.utf8.lexicographicallyPrecedes($1.element.plugin.utf8)
        }.map(\.element)
    }

    /// `field shopify STORE_DOMAIN label=Store%20domain;placeholder=...;help=...`
    var line: String {
        var out = "field \(plugin) \(key) label=\(PercentEncoding.encode(label))"
        if let placeholder { out += ";placeholder=\(PercentEncoding.encode(placeholder))" }
        if let help { out += ";help=\(PercentEncoding.encode(help))" }
        return out + "\n"
    }
}

extension SlotLine {
    func line(maskingValue: Bool) -> String {
        let value: String
        if maskingValue {
            value = "*"
        } else if let sealed = self.value {
            value = "\(sealed.epoch).\(Base64.encode(sealed.bytes))"
        } else {
            value = "-"
        }
        return "slot \(slot.owner ?? "-") \(slot.plugin) \(slot.key) \(value) \(attributes.text)\n"
    }
}

extension SlotAttributes {
    /// `env=X;expires=T;reserved;inactive;scopes=a,b;description=...`
    var text: String {
        var parts = ["env=\(env)"]
        if let expires { parts.append("expires=\(expires)") }
        if reserved { parts.append("reserved") }
        if inactive { parts.append("inactive") }
        if let scopes { parts.append("scopes=\(scopes.joined(separator: ","))") }
        if let description { parts.append("description=\(PercentEncoding.encode(description))") }
        return parts.joined(separator: ";")
    }
}

/// Percent-encoding for free text: every byte outside `A-Z a-z 0-9 - . _ ~`.
enum PercentEncoding {
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { return nil }
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        guard let decoded = String(validating: bytes, as: UTF8.self), encode(decoded) == text else { return nil }
        return decoded
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
