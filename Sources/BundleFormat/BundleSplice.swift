import Glibc
import SecretCore

/// A verified bundle as a writer edits it (docs/bundle-format.md §7): one
/// new epoch line after the others, and the value field of each changed
/// slot line replaced; every other byte is kept as it is.
///
/// It finds lines without checking them against the grammar: the bytes must
/// already be verified (by ``ScannedBundle`` and a verifier, or a record
/// that these exact bytes were). A writer of one slot in a 100,000-slot
/// bundle then costs one pass over the header and epoch lines, a binary
/// search among the slot lines, and one copy of the bytes.
public struct BundleSplice: Sendable {
    /// The bundle's bytes.
    public let bytes: [UInt8]
    /// Where the first slot line starts (`bytes.count` when there is none).
    public let slotsStart: Int
    /// The latest epoch's time; 0 when there is no epoch.
    public let latestEpochTime: Int
    /// The epochs no other epoch builds on, sorted: what the next write names.
    public let heads: [String]
    /// The policy line's serial and signature bytes.
    public let policySerial: Int
    public let policySignature: [UInt8]

    /// One slot line's positions, and its attributes.
    public struct Slot: Sendable {
        public let slot: SlotKey
        /// The value field: `-`, or `epoch-id.base64`.
        public let valueStart: Int
        public let valueEnd: Int
        public let attributes: SlotAttributes

        public var hasValue: Bool { valueEnd - valueStart != 1 }
    }

    /// Finds the epoch and slot sections of verified `bytes`.
    /// - Throws: ``BundleFormatError`` when they are not laid out like a bundle.
    public init(_ bytes: [UInt8]) throws(BundleFormatError) {
        var latest = 0
        var start = 0
        var line = 0
        var ids: [String] = []
        var named = Set<String>()
        var serial = 0
        var signature: [UInt8] = []
        let slotTag = Array("slot ".utf8), epochTag = Array("epoch ".utf8), policyTag = Array("policy ".utf8)
        while start < bytes.count {
            line += 1
            let end = Self.lineEnd(bytes, from: start)
            guard end < bytes.count else { throw .malformed(line: line, reason: "the last line is not ended (truncated?)") }
            if bytes[start..<end].starts(with: slotTag) { break }
            if bytes[start..<end].starts(with: policyTag) {
                // `policy SERIAL PREVIOUS SIGNER SIGNATURE`
                let fields = bytes[start..<end].split(separator: UInt8(ascii: " "))
                guard fields.count == 5, let number = Int(String(decoding: fields[1], as: UTF8.self)),
                      let decoded = Base64.decode(fields[4])
                else { throw .malformed(line: line, reason: "the policy line is not a version \(SecretBundle.version) policy") }
                serial = number
                signature = decoded
            }
            if bytes[start..<end].starts(with: epochTag) {
                // `epoch TIME ID WRITER POLICY PARENTS …`: when, which, and what it builds on.
                let fields = bytes[start..<end].split(separator: UInt8(ascii: " "), maxSplits: 6)
                guard fields.count == 7 else { throw .malformed(line: line, reason: "an epoch line is too short") }
                guard let time = Int(String(decoding: fields[1], as: UTF8.self)) else {
                    throw .malformed(line: line, reason: "an epoch's time is not a number")
                }
                latest = max(latest, time)
                ids.append(String(decoding: fields[2], as: UTF8.self))
                let parents = String(decoding: fields[5], as: UTF8.self)
                if parents.hasPrefix("after="), parents != "after=-" {
                    for parent in parents.dropFirst(6).split(separator: ",") { named.insert(String(parent)) }
                }
            }
            start = end + 1
        }
        self.bytes = bytes
        self.slotsStart = start
        self.latestEpochTime = latest
        self.heads = ids.filter { !named.contains($0) }.sorted()
        self.policySerial = serial
        self.policySignature = signature
    }

    /// The slot line of `slot`, if the bundle has one (a binary search: slot
    /// lines are in canonical order).
    public func slot(_ slot: SlotKey) throws(BundleFormatError) -> Slot? {
        let wanted = Self.names(slot)
        var low = slotsStart  // always a line start
        var high = bytes.count  // a line start or the end
        while low < high {
            let middle = lineStart(containing: low + (high - low) / 2)
            let line = try parse(at: middle)
            let order = Self.order(line.names, wanted, in: bytes)
            if order == 0 { return try resolve(line) }
            if order < 0 { low = line.end + 1 } else { high = middle }
        }
        return nil
    }

    /// Every slot line of `owner` (nil: deployment-wide) and `plugin`, in order.
    public func slots(owner: String?, plugin: String) throws(BundleFormatError) -> [Slot] {
        let wanted = Self.names(SlotKey(owner: owner, plugin: plugin, key: ""))
        // The first line at or after (owner, plugin, ""): every key sorts after "".
        var low = slotsStart
        var high = bytes.count
        while low < high {
            let middle = lineStart(containing: low + (high - low) / 2)
            let line = try parse(at: middle)
            if Self.order(line.names, wanted, in: bytes) < 0 { low = line.end + 1 } else { high = middle }
        }
        var found: [Slot] = []
        var start = low
        while start < bytes.count {
            let line = try parse(at: start)
            guard bytes[line.names[0]].elementsEqual(wanted[0]), bytes[line.names[1]].elementsEqual(wanted[1]) else { break }
            found.append(try resolve(line))
            start = line.end + 1
        }
        return found
    }

    /// The policy's recipients, each with the bytes of its `key` line
    /// (binary OpenPGP; nil when the bundle lists no key for it). Read from
    /// the header lines, which come before any epoch.
    public func recipientKeys() -> [(fingerprint: String, key: [UInt8]?)] {
        var recipients: [String] = []
        var keys: [String: [UInt8]] = [:]
        var start = 0
        let recipientTag = Array("recipient ".utf8), keyTag = Array("key ".utf8), policyTag = Array("policy ".utf8)
        while start < slotsStart {
            let end = Self.lineEnd(bytes, from: start)
            defer { start = end + 1 }
            let line = bytes[start..<end]
            if line.starts(with: recipientTag) {
                recipients.append(String(decoding: line.dropFirst(recipientTag.count), as: UTF8.self))
            } else if line.starts(with: keyTag) {
                // Recipient lines come first: only their keys are decoded, not
                // every writer's (thousands of user keys in a large team).
                let fields = line.split(separator: UInt8(ascii: " "))
                if fields.count == 3, case let fingerprint = String(decoding: fields[1], as: UTF8.self),
                   recipients.contains(fingerprint), let key = Base64.decode(fields[2])
                {
                    keys[fingerprint] = key
                }
            } else if line.starts(with: policyTag) {
                break  // the policy line ends the header's keys
            }
        }
        return recipients.map { ($0, keys[$0]) }
    }

    /// The bundle with `epochLine` (one full line, LF included) added after
    /// the last epoch and each slot's value field replaced by its new text,
    /// as pieces to write one after the other (the unchanged runs are slices
    /// of ``bytes``, not copies).
    public func spliced(epochLine: [UInt8], values: [(slot: Slot, field: [UInt8])]) -> [ArraySlice<UInt8>] {
        var pieces = [bytes[..<slotsStart], epochLine[...]]
        var copied = slotsStart
        for change in values.sorted(by: { $0.slot.valueStart < $1.slot.valueStart }) {
            pieces += [bytes[copied..<change.slot.valueStart], change.field[...]]
            copied = change.slot.valueEnd
        }
        pieces.append(bytes[copied...])
        return pieces
    }

    // MARK: Lines

    private struct Line {
        var start: Int
        var end: Int  // the LF
        var names: [Range<Int>]  // owner, plugin, key
        var value: Range<Int>
        var attributes: Range<Int>
    }

    /// The start of the line holding byte `index` (at or after `slotsStart`).
    private func lineStart(containing index: Int) -> Int {
        bytes.withUnsafeBufferPointer { buffer in
            var start = index
            while start > slotsStart, buffer[start - 1] != UInt8(ascii: "\n") { start -= 1 }
            return start
        }
    }

    /// `slot OWNER PLUGIN KEY VALUE ATTRIBUTES` at `start`.
    private func parse(at start: Int) throws(BundleFormatError) -> Line {
        let end = Self.lineEnd(bytes, from: start)
        var fields: [Range<Int>] = []
        var fieldStart = start
        for index in start..<end where bytes[index] == UInt8(ascii: " ") {
            fields.append(fieldStart..<index)
            fieldStart = index + 1
        }
        fields.append(fieldStart..<end)
        guard end < bytes.count, fields.count == 6, bytes[fields[0]].elementsEqual("slot".utf8) else {
            throw .malformed(line: lineNumber(of: start), reason: "expected a slot line")
        }
        return Line(start: start, end: end, names: Array(fields[1...3]), value: fields[4], attributes: fields[5])
    }

    private func resolve(_ line: Line) throws(BundleFormatError) -> Slot {
        let attributes: SlotAttributes
        do {
            attributes = try bytes.withUnsafeBufferPointer { (buffer) throws(BundleFormatError) in
                try BundleParser().attributes(buffer[line.attributes])
            }
        } catch {
            // Counted only now: counting lines costs a pass over the bytes before this one.
            guard case .malformed(_, let reason) = error else { throw error }
            throw .malformed(line: lineNumber(of: line.start), reason: reason)
        }
        let owner = bytes[line.names[0]]
        return Slot(
            slot: SlotKey(
                owner: owner.elementsEqual("-".utf8) ? nil : String(decoding: owner, as: UTF8.self),
                plugin: String(decoding: bytes[line.names[1]], as: UTF8.self),
                key: String(decoding: bytes[line.names[2]], as: UTF8.self)),
            valueStart: line.value.lowerBound, valueEnd: line.value.upperBound,
            attributes: attributes)
    }

    /// For messages about a line (counted only when one is needed).
    private func lineNumber(of start: Int) -> Int { bytes[..<start].count(where: { $0 == UInt8(ascii: "\n") }) + 1 }

    /// The LF ending the line at `start`, or `bytes.count` when there is none.
    private static func lineEnd(_ bytes: [UInt8], from start: Int) -> Int {
        bytes.withUnsafeBufferPointer { buffer in
            guard start < buffer.count, let base = buffer.baseAddress,
                  let found = memchr(base + start, Int32(UInt8(ascii: "\n")), buffer.count - start)
            else { return buffer.count }
            return base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// A slot's owner (`-` when deployment-wide), plugin and key, as bytes.
    static func names(_ slot: SlotKey) -> [[UInt8]] {
        [Array((slot.owner ?? "-").utf8), Array(slot.plugin.utf8), Array(slot.key.utf8)]
    }

    /// Canonical order (§3) of the slot line whose names are at `names`
    /// against `wanted`: owner, plugin, key, each bytewise.
    static func order(_ names: [Range<Int>], _ wanted: [[UInt8]], in bytes: [UInt8]) -> Int {
        for (range, name) in zip(names, wanted) {
            let field = bytes[range]
            if field.elementsEqual(name) { continue }
            return field.lexicographicallyPrecedes(name) ? -1 : 1
        }
        return 0
    }
}
