import Foundation

extension SecretBundle {
    /// The canonical text of the bundle (docs/bundle-format.md §3).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(slots.count * 160 + epochs.reduce(0) { $0 + 600 + $1.claims.count * 80 } + 4096)
        out += "secretc-bundle \(Self.version)\n".utf8
        appendPolicyLines(to: &out)
        if let policy {
            out += "policy \(policySerial) \(previousPolicy ?? "-") \(policy.signer) ".utf8
            Base64.append(policy.signature, to: &out)
            out.append(UInt8(ascii: "\n"))
        }
        for epoch in EpochOrder.sorted(epochs) { epoch.appendLine(to: &out) }
        for slot in slots.isSorted ? slots : slots.sorted(by: { $0.slot < $1.slot }) {
            slot.append(to: &out, maskingValue: false)
        }
        return out
    }

    /// What the admin signs: the policy's serial and predecessor, who may
    /// decrypt and write, every key, the plugins' schema, and every slot
    /// with its value masked (§4). A version-1 bundle's payload is version 1's.
    public func policyPayload() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(slots.count * 100 + 4096)
        if formatVersion == 1 {
            out += "secretc-policy 1\n".utf8
        } else {
            out += "secretc-policy 2\nserial \(policySerial)\nprevious \(previousPolicy ?? "-")\n".utf8
        }
        appendPolicyLines(to: &out)
        for slot in slots.isSorted ? slots : slots.sorted(by: { $0.slot < $1.slot }) {
            slot.append(to: &out, maskingValue: true)
        }
        return out
    }

    private func appendPolicyLines(to out: inout [UInt8]) {
        out += "environment \(environment)\n".utf8
        for fingerprint in recipients.sorted() { out += "recipient \(fingerprint)\n".utf8 }
        for fingerprint in admins.sorted() { out += "admin \(fingerprint)\n".utf8 }
        for (user, fingerprint) in users.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            out += "user \(user) \(fingerprint)\n".utf8
        }
        for (fingerprint, key) in keys.sorted(by: { $0.key < $1.key }) {
            out += "key \(fingerprint) ".utf8
            Base64.append(key, to: &out)
            out.append(UInt8(ascii: "\n"))
        }
        for field in FieldLine.canonical(fields) { out += field.line.utf8 }
    }

    /// The additional authenticated data binding a value to its place and write (§5).
    public static func valueAAD(environment: String, slot: SlotKey, epoch: String) -> [UInt8] {
        Array("secretc-value 1\n\(environment)\n\(slot.owner ?? "-")\n\(slot.plugin)\n\(slot.key)\n\(epoch)".utf8)
    }
}

extension Epoch {
    /// What the writer signs (§4).
    /// - Parameters:
    ///   - dataKeyDigest: lower-case hex SHA-256 of ``dataKeyMessage``.
    ///   - formatVersion: 1 only to verify a version-1 bundle before upgrading it.
    public func payload(environment: String, dataKeyDigest: String, formatVersion: Int = SecretBundle.version) -> [UInt8] {
        var out = Array(Self.payloadHeader(
            environment: environment, id: id, time: time, writer: writer, policy: policy, parents: parents,
            dataKeyDigest: dataKeyDigest, formatVersion: formatVersion).utf8)
        // The same order as the epoch line's claims: `owner/plugin/KEY=digest`
        // becomes `claim owner plugin KEY digest`.
        let claims = Claim.canonicalTexts(claims)
        out.reserveCapacity(out.count + claims.bytes.count + claims.ranges.count * 7)
        for range in claims.ranges {
            out += "claim ".utf8
            // Only the first two '/' and the first '=' separate fields (base64 holds both).
            var separators = 3
            for byte in claims.bytes[range] {
                if separators > 0, byte == UInt8(ascii: "/") || byte == UInt8(ascii: "=") {
                    out.append(UInt8(ascii: " "))
                    separators -= 1
                } else {
                    out.append(byte)
                }
            }
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }
}

extension Epoch {
    /// The lines of an epoch's payload before its claims.
    public static func payloadHeader(
        environment: String, id: String, time: Int, writer: String, policy: PolicyReference, parents: EpochParents,
        dataKeyDigest: String, formatVersion: Int
    ) -> String {
        guard formatVersion != 1 else {
            return "secretc-epoch 1\nenvironment \(environment)\nepoch \(id)\ntime \(time)\nwriter \(writer)\n"
                + "data-key \(dataKeyDigest)\n"
        }
        return "secretc-epoch 2\nenvironment \(environment)\nepoch \(id)\ntime \(time)\nwriter \(writer)\n"
            + "policy \(policy.serial) \(policy.id)\nparents \(parents.field)\ndata-key \(dataKeyDigest)\n"
    }
}

extension Claim {
    /// Claims in canonical order (their `owner/plugin/KEY=digest` texts, bytewise), each text computed once.
    public static func sorted(_ claims: [Claim]) -> [Claim] {
        let texts = canonicalTexts(claims)
        return texts.order.map { claims[$0] }
    }

    /// Every claim's text in one buffer, and the ranges of those texts in
    /// canonical order (already sorted claims, as parsed or sealed, cost no sort).
    static func canonicalTexts(_ claims: [Claim]) -> (bytes: [UInt8], ranges: [Range<Int>], order: [Int]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(claims.count * 80)
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(claims.count)
        var sorted = true
        for claim in claims {
            let start = bytes.count
            claim.append(to: &bytes)
            ranges.append(start..<bytes.count)
            if sorted, ranges.count > 1 {
                let previous = ranges[ranges.count - 2]
                sorted = bytes[previous].lexicographicallyPrecedes(bytes[start..<bytes.count])
            }
        }
        guard !sorted else { return (bytes, ranges, Array(claims.indices)) }
        let order = claims.indices.sorted { bytes[ranges[$0]].lexicographicallyPrecedes(bytes[ranges[$1]]) }
        return (bytes, order.map { ranges[$0] }, order)
    }

    /// `owner/plugin/KEY=digest` or `owner/plugin/KEY=-`, as in the epoch line.
    func append(to out: inout [UInt8]) {
        slot.append(to: &out, separator: UInt8(ascii: "/"))
        out.append(UInt8(ascii: "="))
        if let digest { Base64.append(digest, to: &out) } else { out.append(UInt8(ascii: "-")) }
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
        if let pattern { out += ";pattern=\(PercentEncoding.encode(pattern))" }
        return out + "\n"
    }
}

extension SlotKey {
    /// `owner SEP plugin SEP key`, the owner of a deployment-wide slot written `-`.
    func append(to out: inout [UInt8], separator: UInt8) {
        out += (owner ?? "-").utf8
        out.append(separator)
        out += plugin.utf8
        out.append(separator)
        out += key.utf8
    }
}

extension Epoch {
    /// The epoch's line in the bundle, LF included.
    public func appendLine(to out: inout [UInt8]) {
        out += "epoch \(time) \(id) \(writer) \(policy.field) \(parents.field) ".utf8
        Base64.append(dataKeyMessage, to: &out)
        out.append(UInt8(ascii: " "))
        Base64.append(signature, to: &out)
        out.append(UInt8(ascii: " "))
        let claims = Claim.canonicalTexts(claims)
        for (index, range) in claims.ranges.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ";")) }
            out += claims.bytes[range]
        }
        out.append(UInt8(ascii: "\n"))
    }
}

extension SealedValue {
    /// A slot line's value field for `value`: `epoch-id.base64`, or `-` for none.
    public static func field(_ value: SealedValue?) -> [UInt8] {
        var out: [UInt8] = []
        append(value, to: &out)
        return out
    }

    static func append(_ value: SealedValue?, to out: inout [UInt8]) {
        guard let value else { return out.append(UInt8(ascii: "-")) }
        out += value.epoch.utf8
        out.append(UInt8(ascii: "."))
        Base64.append(value.bytes, to: &out)
    }
}

extension SlotLine {
    func append(to out: inout [UInt8], maskingValue: Bool) {
        out += "slot ".utf8
        slot.append(to: &out, separator: UInt8(ascii: " "))
        out.append(UInt8(ascii: " "))
        if maskingValue {
            out.append(UInt8(ascii: "*"))
        } else {
            SealedValue.append(value, to: &out)
        }
        out.append(UInt8(ascii: " "))
        attributes.append(to: &out)
        out.append(UInt8(ascii: "\n"))
    }
}

extension Array where Element == SlotLine {
    /// True when already in canonical slot order (as parsed or kept by writers).
    var isSorted: Bool { indices.dropFirst().allSatisfy { self[$0 - 1].slot < self[$0].slot } }
}

extension SlotAttributes {
    func append(to out: inout [UInt8]) {
        out += "env=".utf8
        out += env.utf8
        if expires == nil, !reserved, !inactive, scopes == nil, description == nil { return }
        out += text.utf8.dropFirst(4 + env.utf8.count)
    }

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
