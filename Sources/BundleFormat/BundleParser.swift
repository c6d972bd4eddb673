import SecretCore

extension SecretBundle {
    /// Parses a bundle, refusing anything that is not in canonical form.
    /// - Throws: ``BundleFormatError`` naming the first offending line.
    public init(parsing bytes: [UInt8]) throws(BundleFormatError) {
        var parser = BundleParser()
        self = try parser.parse(bytes)
    }
}

/// The grammar of docs/bundle-format.md §3, line by line.
private struct BundleParser {
    /// Sections in the order they must appear.
    enum Section: Int, Comparable {
        case version, environment, recipient, admin, user, key, policy, epoch, slot
        static func < (lhs: Section, rhs: Section) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    var lineNumber = 0

    func fail(_ reason: String) -> BundleFormatError { .malformed(line: lineNumber, reason: reason) }

    mutating func parse(_ bytes: [UInt8]) throws(BundleFormatError) -> SecretBundle {
        guard !bytes.isEmpty else { throw .malformed(line: 1, reason: "the bundle is empty") }
        guard bytes.last == UInt8(ascii: "\n") else {
            throw .malformed(line: bytes.count(where: { $0 == UInt8(ascii: "\n") }) + 1, reason: "the last line is not ended (truncated?)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .malformed(line: 1, reason: "not UTF-8 text")
        }
        var bundle = SecretBundle(environment: "")
        var section: Section?
        var previousKey: String?
        var previousSlot: SlotKey?
        var previousEpoch: Epoch?
        var epochIDs = Set<String>()
        var lines = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        lines.removeLast()  // after the final LF
        for raw in lines {
            lineNumber += 1
            let line = Substring(raw)
            guard !line.isEmpty else { throw fail("empty line") }
            guard !line.contains("\r"), !line.contains("\t") else { throw fail("carriage return or tab") }
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard !fields.contains(where: \.isEmpty) else { throw fail("fields must be separated by single spaces") }
            let tag = fields[0]

            if lineNumber == 1 {
                guard tag == "secretc-bundle", fields.count == 2 else { throw fail("not a secretc bundle (expected 'secretc-bundle 1')") }
                guard fields[1] == "\(SecretBundle.version)" else { throw .unsupportedVersion(found: String(fields[1])) }
                section = .version
                continue
            }
            guard let current = Self.section(tag) else { throw fail("unknown line type '\(tag)'") }
            guard let last = section, current >= last, current != .version else {
                throw fail("'\(tag)' line out of order")
            }
            if current == last, [.environment, .policy].contains(current) { throw fail("a second '\(tag)' line") }
            if current != last { previousKey = nil }
            if current > .environment, bundle.environment.isEmpty { throw fail("missing 'environment' line") }
            if current > .policy, bundle.policy == nil { throw fail("missing 'policy' line") }
            section = current

            switch current {
            case .version:
                throw fail("a second version line")
            case .environment:
                try expect(fields, 2)
                bundle.environment = try name(fields[1], .environment)
            case .recipient, .admin:
                try expect(fields, 2)
                let fingerprint = try self.fingerprint(fields[1])
                try increasing(&previousKey, fingerprint)
                if current == .recipient { bundle.recipients.append(fingerprint) } else { bundle.admins.append(fingerprint) }
            case .user:
                try expect(fields, 3)
                let user = try name(fields[1], .user)
                try increasing(&previousKey, user)
                bundle.users[user] = try fingerprint(fields[2])
            case .key:
                try expect(fields, 3)
                let fingerprint = try self.fingerprint(fields[1])
                try increasing(&previousKey, fingerprint)
                bundle.keys[fingerprint] = try base64(fields[2], "key")
            case .policy:
                try expect(fields, 3)
                bundle.policy = PolicySignature(signer: try fingerprint(fields[1]), signature: try base64(fields[2], "signature"))
            case .epoch:
                try expect(fields, 7)
                let epoch = Epoch(
                    time: try time(fields[1]), id: try epochID(fields[2]), writer: try fingerprint(fields[3]),
                    dataKeyMessage: try base64(fields[4], "data key"), signature: try base64(fields[5], "signature"),
                    claims: try claims(fields[6]))
                if let previous = previousEpoch, !Epoch.canonicalOrder(previous, epoch) {
                    throw fail("epoch lines must be sorted by time, then id")
                }
                guard epochIDs.insert(epoch.id).inserted else { throw fail("a second epoch '\(epoch.id)'") }
                previousEpoch = epoch
                bundle.epochs.append(epoch)
            case .slot:
                try expect(fields, 6)
                let slot = SlotKey(
                    owner: fields[1] == "-" ? nil : try name(fields[1], .user), plugin: try name(fields[2], .plugin),
                    key: try name(fields[3], .secretKey))
                if let previous = previousSlot {
                    guard previous < slot else {
                        throw fail(previous == slot ? "a second line for slot \(slot)" : "slot lines must be sorted")
                    }
                }
                previousSlot = slot
                bundle.slots.append(SlotLine(slot: slot, value: try value(fields[4]), attributes: try attributes(fields[5])))
            }
        }
        guard bundle.policy != nil else { throw .malformed(line: lineNumber, reason: "missing 'policy' line (truncated?)") }
        return bundle
    }

    static func section(_ tag: Substring) -> Section? {
        switch tag {
        case "environment": return .environment
        case "recipient": return .recipient
        case "admin": return .admin
        case "user": return .user
        case "key": return .key
        case "policy": return .policy
        case "epoch": return .epoch
        case "slot": return .slot
        case "secretc-bundle": return .version
        default: return nil
        }
    }

    // MARK: Fields

    func expect(_ fields: [Substring], _ count: Int) throws(BundleFormatError) {
        guard fields.count == count else {
            throw fail("'\(fields[0])' takes \(count - 1) fields, not \(fields.count - 1)")
        }
    }

    func increasing(_ previous: inout String?, _ next: String) throws(BundleFormatError) {
        if let previous {
            guard Array(previous.utf8).lexicographicallyPrecedes(Array(next.utf8)) else {
                throw fail(previous == next ? "duplicate '\(next)'" : "lines must be sorted")
            }
        }
        previous = next
    }

    func name(_ field: Substring, _ kind: NameKind) throws(BundleFormatError) -> String {
        let text = String(field)
        guard kind.accepts(text) else { throw fail("invalid \(kind.rawValue) '\(text)'") }
        return text
    }

    func fingerprint(_ field: Substring) throws(BundleFormatError) -> String {
        guard field.utf8.count == 40, field.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 70) }) else {
            throw fail("'\(field.prefix(48))' is not a fingerprint (40 upper-case hex digits)")
        }
        return String(field)
    }

    func epochID(_ field: Substring) throws(BundleFormatError) -> String {
        guard field.utf8.count == 16, field.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw fail("'\(field.prefix(24))' is not an epoch id (16 lower-case hex digits)")
        }
        return String(field)
    }

    func time(_ field: Substring) throws(BundleFormatError) -> Int {
        guard field.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), field == "0" || !field.hasPrefix("0"),
              let value = Int(field) else { throw fail("'\(field.prefix(24))' is not a time") }
        return value
    }

    func base64(_ field: Substring, _ what: String) throws(BundleFormatError) -> [UInt8] {
        guard let bytes = Base64.decode(field) else { throw fail("the \(what) is not valid base64") }
        return bytes
    }

    func claims(_ field: Substring) throws(BundleFormatError) -> [Claim] {
        var claims: [Claim] = []
        var previous: String?
        for part in field.split(separator: ";", omittingEmptySubsequences: false) {
            guard let equals = part.firstIndex(of: "=") else { throw fail("claim '\(part.prefix(64))' has no '='") }
            let path = part[..<equals].split(separator: "/", omittingEmptySubsequences: false)
            guard path.count == 3 else { throw fail("claim '\(part.prefix(64))' is not owner/plugin/KEY") }
            let digestText = part[part.index(after: equals)...]
            var digest: [UInt8]?
            if digestText != "-" {
                digest = try base64(digestText, "claim digest")
                guard digest?.count == 32 else { throw fail("a claim digest is not 32 bytes") }
            }
            let slot = SlotKey(
                owner: path[0] == "-" ? nil : try name(path[0], .user), plugin: try name(path[1], .plugin),
                key: try name(path[2], .secretKey))
            let text = String(part)
            if let previous {
                guard Array(previous.utf8).lexicographicallyPrecedes(Array(text.utf8)) else {
                    throw fail("claims must be sorted, each once")
                }
            }
            previous = text
            claims.append(Claim(slot: slot, digest: digest))
        }
        // The same slot twice with different digests would sort apart; refuse it too.
        guard Set(claims.map(\.slot)).count == claims.count else { throw fail("a slot is claimed twice") }
        return claims
    }

    func value(_ field: Substring) throws(BundleFormatError) -> SealedValue? {
        if field == "-" { return nil }
        guard let dot = field.firstIndex(of: ".") else { throw fail("a value must be '-' or EPOCH.BASE64") }
        let bytes = try base64(field[field.index(after: dot)...], "value")
        guard bytes.count >= 12 + 16 else { throw fail("a value is shorter than a nonce and a tag") }
        return SealedValue(epoch: try epochID(field[..<dot]), bytes: bytes)
    }

    func attributes(_ field: Substring) throws(BundleFormatError) -> SlotAttributes {
        let parts = field.split(separator: ";", omittingEmptySubsequences: false)
        guard let first = parts.first, first.hasPrefix("env=") else { throw fail("attributes must start with 'env='") }
        var attributes = SlotAttributes(env: try name(first.dropFirst(4), .environmentVariable))
        var rank = 0
        for part in parts.dropFirst() {
            let (key, value) = part.firstIndex(of: "=").map { (part[..<$0], part[part.index(after: $0)...]) } ?? (part, nil)
            let order = ["expires", "reserved", "inactive", "scopes", "description"]
            guard let index = order.firstIndex(of: String(key)) else { throw fail("unknown attribute '\(key)'") }
            guard index + 1 > rank else { throw fail("attributes out of order") }
            rank = index + 1
            switch (key, value) {
            case ("expires", let value?): attributes.expires = try time(value)
            case ("reserved", nil): attributes.reserved = true
            case ("inactive", nil): attributes.inactive = true
            case ("scopes", let value?):
                attributes.scopes = try value.split(separator: ",", omittingEmptySubsequences: false).map {
                    (scope) throws(BundleFormatError) -> String in try name(scope, .scope)
                }
            case ("description", let value?):
                guard let text = PercentEncoding.decode(value) else { throw fail("the description is not percent-encoded") }
                attributes.description = text
            default:
                throw fail("malformed attribute '\(part.prefix(64))'")
            }
        }
        return attributes
    }
}
