import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import SecretCore
import Synchronization

extension SecretBundle {
    /// Parses a bundle, refusing anything that is not in canonical form.
    /// - Throws: ``BundleFormatError`` naming the first offending line.
    public init(parsing bytes: [UInt8]) throws(BundleFormatError) {
        self = try ScannedBundle(scanning: bytes).materialized()
    }
}

/// The grammar of docs/bundle-format.md §3, line by line.
struct BundleParser {
    /// Sections in the order they must appear.
    enum Section: Int, Comparable {
        case version, environment, recipient, admin, user, key, field, policy, epoch, slot
        static func < (lhs: Section, rhs: Section) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    var lineNumber = 0

    func fail(_ reason: String) -> BundleFormatError { .malformed(line: lineNumber, reason: reason) }

    mutating func scan(_ bytes: [UInt8]) throws(BundleFormatError) -> ScannedBundle {
        guard !bytes.isEmpty else { throw .malformed(line: 1, reason: "the bundle is empty") }
        guard bytes.last == UInt8(ascii: "\n") else {
            throw .malformed(line: bytes.count(where: { $0 == UInt8(ascii: "\n") }) + 1, reason: "the last line is not ended (truncated?)")
        }
        return try bytes.withUnsafeBufferPointer { (buffer) throws(BundleFormatError) in
            try scan(buffer, bytes)
        }
    }

    /// The header and epoch lines on one thread while the slot lines, the
    /// bulk of a large bundle, are scanned in chunks on the others, each
    /// chunk straight into its place in the bundle's slot arrays (a survey
    /// first counts every chunk's lines). Errors are reported as a serial
    /// scan would: the first offending line.
    private mutating func scan(_ buffer: UnsafeBufferPointer<UInt8>, _ bytes: [UInt8]) throws(BundleFormatError) -> ScannedBundle {
        let (slotStart, headerLines) = Self.slotSection(buffer)
        let chunks = Self.chunks(buffer, slotStart..<buffer.count)
        let (lines, ascii) = Self.survey(buffer, header: 0..<slotStart, chunks: chunks)
        // A canonical bundle is ASCII; only other bytes need UTF-8 validation.
        guard ascii || String(validating: bytes, as: UTF8.self) != nil else {
            throw .malformed(line: 1, reason: "not UTF-8 text")
        }
        nonisolated(unsafe) let buffer = buffer  // outlives the parallel scan below
        var firstSlots = [0]  // each chunk's first slot, among all slots
        for count in lines { firstSlots.append(firstSlots.last! + count) }
        let total = firstSlots.last!
        var header: Result<(SecretBundle, [ScannedEpoch], Int?), BundleFormatError>?
        var outcomes: [Result<[String: (env: String, line: Int)], BundleFormatError>] = []
        var ends: [(first: ScannedSlot?, last: ScannedSlot?)] = []  // each chunk's, for the order across chunks
        var attributes: [SlotAttributes] = []
        let slots = [ScannedSlot](unsafeUninitializedCapacity: total) { slotBuffer, slotCount in
            attributes = [SlotAttributes](unsafeUninitializedCapacity: total) { attributeBuffer, attributeCount in
                // Both arrays are written once, right after this: whole pages of them fault in at once.
                adviseHugePages(UnsafeMutableRawBufferPointer(slotBuffer))
                adviseHugePages(UnsafeMutableRawBufferPointer(attributeBuffer))
                let sinks = chunks.indices.map { index in
                    SlotSink(slotBuffer.baseAddress! + firstSlots[index], attributeBuffer.baseAddress! + firstSlots[index], capacity: lines[index])
                }
                let results = Mutex<[Result<[String: (env: String, line: Int)], BundleFormatError>?]>(chunks.map { _ in nil })
                let headerResult = Mutex<Result<(SecretBundle, [ScannedEpoch], Int?), BundleFormatError>?>(nil)
                DispatchQueue.concurrentPerform(iterations: chunks.count + 1) { task in
                    var parser = BundleParser()
                    guard task > 0 else {
                        let result = Result { () throws(BundleFormatError) in try parser.scanLines(buffer) }
                        headerResult.withLock { $0 = result }
                        return
                    }
                    let result = Result { () throws(BundleFormatError) in
                        try parser.scanSlots(buffer, chunks[task - 1], into: sinks[task - 1])
                    }
                    results.withLock { $0[task - 1] = result }
                }
                header = headerResult.withLock { $0 }
                outcomes = results.withLock { $0.map { $0! } }
                ends = sinks.map { ($0.first, $0.last) }
                if sinks.allSatisfy(\.isFull) {
                    attributeCount = total
                } else {
                    for sink in sinks { sink.discard() }  // a failed scan keeps nothing
                    attributeCount = 0
                }
            }
            slotCount = attributes.count  // plain values: nothing to release when 0
        }
        let (bundle, epochs, found) = try header!.get()
        guard let found else { return ScannedBundle(bytes: bytes, header: bundle, epochs: epochs, slots: [], attributes: []) }
        guard found == slotStart else {
            // Not reached (both stop at the first line tagged `slot`); kept correct anyway.
            var parser = BundleParser(lineNumber: Self.lineCount(buffer, before: found))
            let (slots, attributes) = try parser.scanSlots(buffer, found..<buffer.count)
            return ScannedBundle(bytes: bytes, header: bundle, epochs: epochs, slots: slots, attributes: attributes)
        }
        lineNumber = headerLines
        var variables: [String: String] = [:]
        for (index, outcome) in outcomes.enumerated() {
            let chunkVariables: [String: (env: String, line: Int)]
            switch outcome {
            case .failure(let error):
                guard case .malformed(let line, let reason) = error else { throw error }
                throw .malformed(line: lineNumber + line, reason: reason)
            case .success(let found): chunkVariables = found
            }
            // One variable per plugin key across the chunks too.
            for (pluginKey, found) in chunkVariables.sorted(by: { $0.value.line < $1.value.line }) {
                if let known = variables[pluginKey], known != found.env {
                    throw .malformed(
                        line: lineNumber + found.line,
                        reason: "a slot of \(pluginKey) has env=\(found.env), but other slots of it have env=\(known) "
                            + "(one variable per plugin key)")
                }
                variables[pluginKey] = found.env
            }
            // The order across the boundary: this chunk's first line after the last one's.
            if index > 0, let last = ends[..<index].lazy.compactMap(\.last).last, let first = ends[index].first {
                lineNumber += 1
                let order = Self.compare(
                    last, [buffer[first.lineStart..<first.lineStart], buffer[first.owner], buffer[first.plugin], buffer[first.key]],
                    in: buffer)
                guard order < 0 else {
                    throw fail(order == 0 ? "a second line for slot \(text(buffer[first.owner]))/\(text(buffer[first.plugin]))/\(text(buffer[first.key]))"
                        : "slot lines must be sorted")
                }
                lineNumber -= 1
            }
            lineNumber += lines[index]
        }
        return ScannedBundle(bytes: bytes, header: bundle, epochs: epochs, slots: slots, attributes: attributes)
    }

    /// Each chunk's line count, and whether the header and the chunks are
    /// all ASCII: one pass over the bytes, a word at a time, on every core.
    static func survey(_ bytes: UnsafeBufferPointer<UInt8>, header: Range<Int>, chunks: [Range<Int>]) -> (lines: [Int], ascii: Bool) {
        let counts = Mutex<[(lines: Int, ascii: Bool)]>(Array(repeating: (0, true), count: chunks.count + 1))
        nonisolated(unsafe) let bytes = bytes
        DispatchQueue.concurrentPerform(iterations: chunks.count + 1) { task in
            let range = task == 0 ? header : chunks[task - 1]
            let counted = lineFeeds(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[range]))
            counts.withLock { $0[task] = counted }
        }
        let found = counts.withLock { $0 }
        return (found.dropFirst().map(\.lines), found.allSatisfy(\.ascii))
    }

    /// How many LF bytes `bytes` holds, and whether all its bytes are below 0x80.
    static func lineFeeds(_ bytes: UnsafeRawBufferPointer) -> (lines: Int, ascii: Bool) {
        guard let base = bytes.baseAddress else { return (0, true) }
        // Line feeds by memchr (lines are long: a call finds one), ASCII a word at a time.
        var lines = 0
        var start = 0
        while start < bytes.count, let found = memchr(base + start, 0x0A, bytes.count - start) {
            lines += 1
            start = base.distance(to: UnsafeRawPointer(found)) + 1
        }
        var seen: UInt64 = 0
        var index = 0
        while index + 8 <= bytes.count {
            seen |= bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < bytes.count {
            seen |= UInt64(bytes[index])
            index += 1
        }
        return (lines, seen & 0x8080_8080_8080_8080 == 0)
    }

    /// Where the slot lines start (the first line tagged `slot`, or the end)
    /// and how many lines come before it: a walk from line end to line end.
    static func slotSection(_ bytes: UnsafeBufferPointer<UInt8>) -> (start: Int, lines: Int) {
        var start = 0
        var lines = 0
        let raw = UnsafeRawBufferPointer(bytes)
        while start < bytes.count {
            if bytes.count - start >= 5, bytes[start] == UInt8(ascii: "s"), bytes[start + 1] == UInt8(ascii: "l"),
               bytes[start + 2] == UInt8(ascii: "o"), bytes[start + 3] == UInt8(ascii: "t"),
               bytes[start + 4] == UInt8(ascii: " ") || bytes[start + 4] == UInt8(ascii: "\n")
            {
                return (start, lines)
            }
            // The bytes end with LF, so one is found.
            let end = memchr(raw.baseAddress! + start, 0x0A, bytes.count - start)!
            start = raw.baseAddress!.distance(to: UnsafeRawPointer(end)) + 1
            lines += 1
        }
        return (start, lines)
    }

    /// How many lines start before `offset`.
    static func lineCount(_ bytes: UnsafeBufferPointer<UInt8>, before offset: Int) -> Int {
        bytes[..<offset].count(where: { $0 == UInt8(ascii: "\n") })
    }

    /// `range` (whole lines) cut at line boundaries into pieces of at least
    /// 256 KiB, at most 16: few enough to be cheap, enough to keep every
    /// core busy beside the header's scan.
    static func chunks(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [Range<Int>] {
        guard !range.isEmpty else { return [] }
        let count = min(16, max(1, range.count >> 18))
        var pieces: [Range<Int>] = []
        var start = range.lowerBound
        for piece in 1...count {
            var end = piece == count ? range.upperBound : range.lowerBound + range.count * piece / count
            while end < range.upperBound, bytes[end - 1] != UInt8(ascii: "\n") { end += 1 }
            if end > start { pieces.append(start..<end) }
            start = end
        }
        return pieces
    }

    /// The header and epoch lines of a bundle checked for its ending and
    /// encoding, read through a buffer pointer (slices of it are not
    /// reference-counted); stops at the first slot line and returns where it
    /// starts (nil when there is none).
    private mutating func scanLines(_ bytes: UnsafeBufferPointer<UInt8>) throws(BundleFormatError)
        -> (SecretBundle, [ScannedEpoch], Int?)
    {
        var bundle = SecretBundle(environment: "")
        var epochs: [ScannedEpoch] = []
        var slotStart: Int?
        var section: Section?
        var previousKey: String?
        var fieldKeys = Set<String>()
        var epochIDs = Set<String>()
        var firstEpochLine = 0
        // Bytes throughout: every name is ASCII by its grammar, and an epoch
        // line can hold 100,000 claims, too long for Character-wise splitting.
        // One pass per line that finds its fields, reusing one array: this
        // loop runs once per slot.
        var fields: [Field] = []
        var spaces: [Int] = []
        var lineStart = 0
        while lineStart < bytes.count {
            lineStart = try nextLine(bytes, from: lineStart, fields: &fields, spaces: &spaces)
            let tag = fields[0]

            if lineNumber == 1 {
                guard tag.elementsEqual("secretc-bundle".utf8), fields.count == 2 else {
                    throw fail("not a secretc bundle (expected 'secretc-bundle \(SecretBundle.version)')")
                }
                // Version 1 is parsed for `compile`'s upgrade; verifiers refuse it.
                switch text(fields[1]) {
                case "1": bundle.formatVersion = 1
                case "\(SecretBundle.version)": bundle.formatVersion = SecretBundle.version
                default: throw .unsupportedVersion(found: text(fields[1].prefix(24)))
                }
                section = .version
                continue
            }
            guard let current = Self.section(tag) else { throw fail("unknown line type '\(text(tag.prefix(32)))'") }
            guard let last = section, current >= last, current != .version else {
                throw fail("'\(text(tag))' line out of order")
            }
            if current == last, current == .environment || current == .policy { throw fail("a second '\(text(tag))' line") }
            if current != last { previousKey = nil }
            if current > .environment, bundle.environment.isEmpty { throw fail("missing 'environment' line") }
            if current > .policy, bundle.policy == nil { throw fail("missing 'policy' line") }
            section = current

            if current == .slot {
                slotStart = fields[0].startIndex  // scanned by the caller
                break
            }
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
            case .field:
                try expect(fields, 4)
                let field = try self.field(fields, version: bundle.formatVersion)
                if let previous = bundle.fields.last, previous.plugin != field.plugin {
                    guard previous.plugin.utf8.lexicographicallyPrecedes(field.plugin.utf8) else {
                        throw fail("field lines must be grouped by plugin, plugins sorted")
                    }
                    fieldKeys = []
                }
                guard fieldKeys.insert(field.key).inserted else { throw fail("a second field '\(field.plugin) \(field.key)'") }
                bundle.fields.append(field)
            case .policy where bundle.formatVersion == 1:
                try expect(fields, 3)
                bundle.policySerial = 0
                bundle.policy = PolicySignature(signer: try fingerprint(fields[1]), signature: try base64(fields[2], "signature"))
            case .policy:
                try expect(fields, 5)
                bundle.policySerial = try serial(fields[1])
                bundle.previousPolicy = isDash(fields[2]) ? nil : try policyID(fields[2])
                bundle.policy = PolicySignature(signer: try fingerprint(fields[3]), signature: try base64(fields[4], "signature"))
            case .epoch:
                let version2 = bundle.formatVersion != 1
                try expect(fields, version2 ? 9 : 7)
                let shift = version2 ? 2 : 0
                let epoch = ScannedEpoch(
                    time: try time(fields[1]), id: try epochID(fields[2]), writer: try fingerprint(fields[3]),
                    policy: version2 ? try policyReference(fields[4]) : PolicyReference(serial: 0, id: ""),
                    parents: version2 ? try parents(fields[5]) : .after([]),
                    dataKeyMessage: try base64(fields[4 + shift], "data key"),
                    signature: try base64(fields[5 + shift], "signature"), claims: try claims(fields[6 + shift]))
                if let previous = epochs.last, previous.time > epoch.time {
                    throw fail("epoch lines must be sorted by time")
                }
                guard epochIDs.insert(epoch.id).inserted else { throw fail("a second epoch '\(epoch.id)'") }
                if epochs.isEmpty { firstEpochLine = lineNumber }
                epochs.append(epoch)
            case .slot:
                break  // handled above
            }
        }
        guard bundle.policy != nil else { throw .malformed(line: lineNumber, reason: "missing 'policy' line (truncated?)") }
        if let misplaced = zip(EpochOrder.canonicalIndices(epochs), epochs.indices).first(where: { $0 != $1 })?.1 {
            throw .malformed(
                line: firstEpochLine + misplaced,
                reason: "epoch lines must be sorted by time, then each after the epochs it names in after=, then id")
        }
        return (bundle, epochs, slotStart)
    }

    /// The slot lines in `range`, which starts and ends at line boundaries, as arrays.
    mutating func scanSlots(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(BundleFormatError)
        -> ([ScannedSlot], [SlotAttributes])
    {
        let count = Self.lineFeeds(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[range])).lines
        var failure: BundleFormatError?
        var attributes: [SlotAttributes] = []
        let slots = [ScannedSlot](unsafeUninitializedCapacity: count) { slotBuffer, slotCount in
            attributes = [SlotAttributes](unsafeUninitializedCapacity: count) { attributeBuffer, attributeCount in
                let sink = SlotSink(slotBuffer.baseAddress!, attributeBuffer.baseAddress!, capacity: count)
                do throws(BundleFormatError) {
                    try scanSlots(bytes, range, into: sink)
                    attributeCount = count
                } catch {
                    sink.discard()
                    attributeCount = 0
                    failure = error
                }
            }
            slotCount = attributes.count
        }
        if let failure { throw failure }
        return (slots, attributes)
    }

    /// Where one chunk's slot lines go: its places in the bundle's two
    /// arrays, exactly as many as the chunk has lines.
    final class SlotSink: @unchecked Sendable {  // each used by one thread
        private let slots: UnsafeMutablePointer<ScannedSlot>
        private let attributes: UnsafeMutablePointer<SlotAttributes>
        private let capacity: Int
        private(set) var count = 0

        init(_ slots: UnsafeMutablePointer<ScannedSlot>, _ attributes: UnsafeMutablePointer<SlotAttributes>, capacity: Int) {
            self.slots = slots
            self.attributes = attributes
            self.capacity = capacity
        }

        var isFull: Bool { count == capacity }
        var first: ScannedSlot? { count > 0 ? slots[0] : nil }
        var last: ScannedSlot? { count > 0 ? slots[count - 1] : nil }

        func append(_ slot: ScannedSlot, _ attributes: SlotAttributes) {
            precondition(count < capacity, "a chunk holds more slot lines than line feeds")
            (slots + count).initialize(to: slot)
            (self.attributes + count).initialize(to: attributes)
            count += 1
        }

        /// Releases the attributes appended so far.
        func discard() {
            attributes.deinitialize(count: count)
            count = 0
        }
    }

    /// The slot lines in `range`, which starts and ends at line boundaries, into `sink`.
    /// - Returns: each plugin key's variable, with the line (counted from
    ///   this scan's start) of its first slot, for the scans of other chunks
    ///   to be compared with.
    @discardableResult
    mutating func scanSlots(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into sink: SlotSink)
        throws(BundleFormatError) -> [String: (env: String, line: Int)]
    {
        var fields: [Field] = []
        var spaces: [Int] = []
        var variables: [KnownName] = []
        // One variable per plugin key (§3): its slots of every owner carry the same env=.
        var pluginKeys: [(plugin: Field, key: Field, env: String, line: Int)] = []
        var morePluginKeys: [String: (env: String, line: Int)] = [:]
        var nextPluginKey = 0
        var lineStart = range.lowerBound
        while lineStart < range.upperBound {
            lineStart = try nextLine(bytes, from: lineStart, fields: &fields, spaces: &spaces)
            let tag = fields[0]
            guard tag.elementsEqual("slot".utf8) else {
                guard Self.section(tag) != nil else { throw fail("unknown line type '\(text(tag.prefix(32)))'") }
                throw fail("'\(text(tag))' line out of order")
            }
            try expect(fields, 6)
            if !isDash(fields[1]) { try check(fields[1], .user) }
            try check(fields[2], .plugin)
            try check(fields[3], .secretKey)
            if let previous = sink.last {
                let order = Self.compare(previous, fields, in: bytes)
                guard order < 0 else {
                    throw fail(order == 0 ? "a second line for slot \(text(fields[1]))/\(text(fields[2]))/\(text(fields[3]))"
                        : "slot lines must be sorted")
                }
            }
            try value(fields[4])
            let attributes = try attributes(fields[5], known: &variables)
            let known: String?
            // Slots come sorted by owner: each owner's plugin keys in the same
            // order, so the entry after the last one found is usually next.
            var found: Int?
            for offset in 0..<pluginKeys.count {
                let index = (nextPluginKey + offset) % pluginKeys.count
                if Self.same(pluginKeys[index].key, fields[3]), Self.same(pluginKeys[index].plugin, fields[2]) {
                    found = index
                    break
                }
            }
            if let found {
                known = pluginKeys[found].env
                nextPluginKey = found + 1
            } else if pluginKeys.count < 64 {
                pluginKeys.append((fields[2], fields[3], attributes.env, lineNumber))
                known = nil
            } else {
                let name = text(fields[2]) + " " + text(fields[3])
                known = morePluginKeys[name]?.env
                if known == nil { morePluginKeys[name] = (attributes.env, lineNumber) }
            }
            if let known, known != attributes.env {
                throw fail("a slot of \(text(fields[2])) \(text(fields[3])) has env=\(attributes.env), "
                    + "but other slots of it have env=\(known) (one variable per plugin key)")
            }
            sink.append(
                ScannedSlot(
                    lineStart: fields[0].startIndex, lineEnd: fields[5].endIndex,
                    owner: fields[1].startIndex..<fields[1].endIndex, plugin: fields[2].startIndex..<fields[2].endIndex,
                    key: fields[3].startIndex..<fields[3].endIndex, valueStart: fields[4].startIndex,
                    valueEnd: fields[4].endIndex),
                attributes)
        }
        for entry in pluginKeys { morePluginKeys[text(entry.plugin) + " " + text(entry.key)] = (entry.env, entry.line) }
        return morePluginKeys
    }

    /// Reads the line at `lineStart` into `fields` (slices of `bytes`;
    /// `spaces` is scratch) and returns where the next line starts. Counts
    /// the line and refuses empty lines, empty fields, CR and tab.
    mutating func nextLine(
        _ bytes: UnsafeBufferPointer<UInt8>, from lineStart: Int, fields: inout [Field], spaces: inout [Int]
    )
        throws(BundleFormatError) -> Int
    {
        lineNumber += 1
        fields.removeAll(keepingCapacity: true)
        // The bytes were checked to end with LF, so this stops.
        let (index, bad) = Self.lineEnd(bytes, from: lineStart, spaces: &spaces)
        guard !bad else { throw fail("carriage return or tab") }
        guard index > lineStart else { throw fail("empty line") }
        var fieldStart = lineStart
        for space in spaces {
            fields.append(bytes[fieldStart..<space])
            fieldStart = space + 1
        }
        fields.append(bytes[fieldStart..<index])
        guard !fields.contains(where: { $0.isEmpty }) else { throw fail("fields must be separated by single spaces") }
        return index + 1
    }

    /// The LF ending the line at `start`, with the positions of its spaces;
    /// `bad` when it holds a carriage return or a tab.
    @inline(__always)
    static func lineEnd(_ buffer: UnsafeBufferPointer<UInt8>, from start: Int, spaces: inout [Int]) -> (Int, bad: Bool) {
        spaces.removeAll(keepingCapacity: true)
        var index = start
        var bad = false
        let raw = UnsafeRawPointer(buffer.baseAddress!)
        while true {
            // Eight bytes at a time while none of them is at most 0x20 (LF,
            // space, CR, tab and the other control bytes): base64 runs and
            // the claims of a 100,000-claim epoch line go by in words.
            while index + 8 <= buffer.count {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if (word &- 0x2121_2121_2121_2121) & ~word & 0x8080_8080_8080_8080 != 0 { break }
                index += 8
            }
            let byte = buffer[index]
            if byte > UInt8(ascii: " ") {
                index += 1
                continue
            }
            if byte == UInt8(ascii: "\n") { return (index, bad) }
            if byte == UInt8(ascii: " ") { spaces.append(index) } else if byte == 13 || byte == 9 { bad = true }
            index += 1
        }
    }

    /// Canonical order of a slot line against the previous one: owner (`-`
    /// first), plugin, key, each bytewise. Negative when `previous` sorts first.
    static func compare(_ previous: ScannedSlot, _ fields: [Field], in bytes: UnsafeBufferPointer<UInt8>) -> Int {
        func order(_ range: Range<Int>, _ field: Field) -> Int {
            let before = bytes[range]
            if before.elementsEqual(field) { return 0 }
            return before.lexicographicallyPrecedes(field) ? -1 : 1
        }
        let owner = order(previous.owner, fields[1])
        if owner != 0 { return owner }
        let plugin = order(previous.plugin, fields[2])
        return plugin != 0 ? plugin : order(previous.key, fields[3])
    }

    /// The section a line's tag names; bytes, not a String, as it runs once per line.
    static func section(_ tag: Field) -> Section? {
        // The most frequent tags first.
        if tag.elementsEqual("slot".utf8) { return .slot }
        if tag.elementsEqual("epoch".utf8) { return .epoch }
        for (name, section) in tags where tag.elementsEqual(name.utf8) { return section }
        return nil
    }

    private static let tags: [(String, Section)] = [
        ("environment", .environment), ("recipient", .recipient), ("admin", .admin), ("user", .user), ("key", .key),
        ("field", .field), ("policy", .policy), ("secretc-bundle", .version),
    ]

    // MARK: Fields

    /// A field of a line: a slice of the bundle's bytes, borrowed.
    typealias Field = Slice<UnsafeBufferPointer<UInt8>>

    /// Byte equality of two fields, without iterating generically.
    @inline(__always)
    static func same(_ a: Field, _ b: Field) -> Bool {
        a.count == b.count && memcmp(a.base.baseAddress! + a.startIndex, b.base.baseAddress! + b.startIndex, a.count) == 0
    }

    func text(_ field: Field) -> String { String(decoding: field, as: UTF8.self) }
    func isDash(_ field: Field) -> Bool { field.count == 1 && field.first == UInt8(ascii: "-") }

    func expect(_ fields: [Field], _ count: Int) throws(BundleFormatError) {
        guard fields.count == count else {
            throw fail("'\(text(fields[0]))' takes \(count - 1) fields, not \(fields.count - 1)")
        }
    }

    func increasing(_ previous: inout String?, _ next: String) throws(BundleFormatError) {
        if let previous {
            guard previous.utf8.lexicographicallyPrecedes(next.utf8) else {
                throw fail(previous == next ? "duplicate '\(next)'" : "lines must be sorted")
            }
        }
        previous = next
    }

    func name(_ field: Field, _ kind: NameKind) throws(BundleFormatError) -> String {
        try check(field, kind)
        return text(field)
    }

    /// Checks a name without making a string of it (slot lines and claims
    /// hold 300,000 names each in a large bundle).
    func check(_ field: Field, _ kind: NameKind) throws(BundleFormatError) {
        guard kind.accepts(utf8: field) else { throw fail("invalid \(kind.rawValue) '\(text(field.prefix(64)))'") }
    }

    func fingerprint(_ field: Field) throws(BundleFormatError) -> String {
        guard field.count == 40, field.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 70) }) else {
            throw fail("'\(text(field.prefix(48)))' is not a fingerprint (40 upper-case hex digits)")
        }
        return text(field)
    }

    func epochID(_ field: Field) throws(BundleFormatError) -> String {
        try checkEpochID(field)
        return text(field)
    }

    func checkEpochID(_ field: Field) throws(BundleFormatError) {
        guard field.count == 16, field.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw fail("'\(text(field.prefix(24)))' is not an epoch id (16 lower-case hex digits)")
        }
    }

    /// Whole seconds since 1970, up to the end of year 9999.
    func time(_ field: Field) throws(BundleFormatError) -> Int {
        guard let value = decimal(field, digits: 12), value <= SecretBundle.latestTime else {
            throw fail("'\(text(field.prefix(24)))' is not a time (seconds since 1970, at most \(SecretBundle.latestTime))")
        }
        return value
    }

    /// A policy serial: 1 to 999999999.
    func serial(_ field: Field) throws(BundleFormatError) -> Int {
        guard let value = decimal(field, digits: 9), value > 0 else {
            throw fail("'\(text(field.prefix(24)))' is not a policy serial (1 to 999999999)")
        }
        return value
    }

    /// A decimal number of at most `digits` digits without leading zeros.
    func decimal(_ field: Field, digits: Int) -> Int? {
        guard !field.isEmpty, field.count <= digits, field.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              field.count == 1 || field.first != 48 else { return nil }
        return field.reduce(0) { $0 * 10 + Int($1 - 48) }
    }

    /// A policy id: 64 lower-case hex digits.
    func policyID(_ field: Field) throws(BundleFormatError) -> String {
        guard field.count == 64, field.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            throw fail("'\(text(field.prefix(24)))' is not a policy id (64 lower-case hex digits)")
        }
        return text(field)
    }

    /// `serial.policy-id`.
    func policyReference(_ field: Field) throws(BundleFormatError) -> PolicyReference {
        guard let dot = field.firstIndex(of: UInt8(ascii: ".")) else {
            throw fail("an epoch's policy must be SERIAL.POLICY-ID")
        }
        return PolicyReference(serial: try serial(field[..<dot]), id: try policyID(field[(dot + 1)...]))
    }

    /// `after=-`, `after=ID,ID…`, `subsumes=-` or `subsumes=ID,ID…`, ids sorted, each once.
    func parents(_ field: Field) throws(BundleFormatError) -> EpochParents {
        guard let equals = field.firstIndex(of: UInt8(ascii: "=")) else {
            throw fail("an epoch's parents must be 'after=…' or 'subsumes=…'")
        }
        let kind = text(field[..<equals])
        guard kind == "after" || kind == "subsumes" else { throw fail("an epoch's parents must be 'after=…' or 'subsumes=…'") }
        let list = field[(equals + 1)...]
        var ids: [String] = []
        if !isDash(list) {
            for part in list.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                let id = try epochID(part)
                if let last = ids.last, !last.utf8.lexicographicallyPrecedes(id.utf8) {
                    throw fail("an epoch's parents must be sorted, each once")
                }
                ids.append(id)
            }
        }
        return kind == "after" ? .after(ids) : .subsumes(ids)
    }

    func base64(_ field: Field, _ what: String) throws(BundleFormatError) -> [UInt8] {
        guard let bytes = Base64.decode(field) else { throw fail("the \(what) is not valid base64") }
        return bytes
    }

    func claims(_ field: Field) throws(BundleFormatError) -> [ScannedClaim] {
        var claims: [ScannedClaim] = []
        var previous: Field?
        var previousPath: Field?
        var start = field.startIndex
        while start <= field.endIndex {
            let end = field[start...].firstIndex(of: UInt8(ascii: ";")) ?? field.endIndex
            let part = field[start..<end]
            guard let equals = part.firstIndex(of: UInt8(ascii: "=")) else {
                throw fail("claim '\(text(part.prefix(64)))' has no '='")
            }
            let whole = part[..<equals]
            guard let first = whole.firstIndex(of: UInt8(ascii: "/")),
                  let second = whole[(first + 1)...].firstIndex(of: UInt8(ascii: "/")),
                  !whole[(second + 1)...].contains(UInt8(ascii: "/"))
            else { throw fail("claim '\(text(part.prefix(64)))' is not owner/plugin/KEY") }
            let digestText = part[(equals + 1)...]
            if !isDash(digestText) {
                guard let count = Base64.decodedCount(digestText) else { throw fail("the claim digest is not valid base64") }
                guard count == 32 else { throw fail("a claim digest is not 32 bytes") }
            }
            if !isDash(whole[..<first]) { try check(whole[..<first], .user) }
            try check(whole[(first + 1)..<second], .plugin)
            try check(whole[(second + 1)...], .secretKey)
            if let previous {
                guard previous.lexicographicallyPrecedes(part) else { throw fail("claims must be sorted, each once") }
            }
            previous = part
            // Sorted claims of one slot share the prefix "owner/plugin/KEY=", so they are adjacent.
            guard previousPath.map({ !$0.elementsEqual(whole) }) ?? true else { throw fail("a slot is claimed twice") }
            previousPath = whole
            claims.append(ScannedClaim(start: start, firstSlash: first, secondSlash: second, equals: equals, end: end))
            start = end + 1
        }
        return claims
    }

    /// Checks a value field: `-` or `EPOCH.BASE64` of at least a nonce and a tag.
    func value(_ field: Field) throws(BundleFormatError) {
        if isDash(field) { return }
        guard let dot = field.firstIndex(of: UInt8(ascii: ".")) else { throw fail("a value must be '-' or EPOCH.BASE64") }
        guard let count = Base64.decodedCount(field[(dot + 1)...]) else { throw fail("the value is not valid base64") }
        guard count >= 12 + 16 else { throw fail("a value is shorter than a nonce and a tag") }
        try checkEpochID(field[..<dot])
    }

    func field(_ fields: [Field], version: Int) throws(BundleFormatError) -> FieldLine {
        let plugin = try name(fields[1], .plugin)
        let key = try name(fields[2], .secretKey)
        var label: String?
        var placeholder: String?
        var help: String?
        var pattern: String?
        var rank = 0
        let order = version == 1 ? ["label", "placeholder", "help"] : ["label", "placeholder", "help", "pattern"]
        for part in fields[3].split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false) {
            guard let equals = part.firstIndex(of: UInt8(ascii: "=")), let index = order.firstIndex(of: text(part[..<equals]))
            else { throw fail("unknown field attribute '\(text(part.prefix(32)))'") }
            guard index + 1 > rank, index == 0 || rank > 0 else { throw fail("field attributes out of order (label first)") }
            rank = index + 1
            guard let decoded = PercentEncoding.decode(Substring(text(part[(equals + 1)...]))) else {
                throw fail("the field's \(order[index]) is not percent-encoded")
            }
            switch index {
            case 0: label = decoded
            case 1: placeholder = decoded
            case 2: help = decoded
            default: pattern = decoded
            }
        }
        guard let label else { throw fail("a field line needs 'label='") }
        return FieldLine(plugin: plugin, key: key, label: label, placeholder: placeholder, help: help, pattern: pattern)
    }

    /// A variable name, the same string as an equal one in `known` (a few
    /// names repeat across 100,000 slots), else checked, new and remembered.
    func environmentVariable(_ field: Field, known: inout [KnownName]) throws(BundleFormatError) -> String {
        let start = field.startIndex
        for entry in known where entry.bytes.count == field.count {
            let same = entry.bytes.withUnsafeBufferPointer { bytes in
                for offset in 0..<bytes.count where bytes[offset] != field.base[start + offset] { return false }
                return true
            }
            if same { return entry.name }
        }
        let name = try self.name(field, .environmentVariable)
        if known.count < 16 { known.append(KnownName(bytes: Array(field), name: name)) }
        return name
    }

    /// Whether an attributes field starts with `env=` (byte by byte: a
    /// generic `starts(with:)` over a string's UTF-8 view costs more).
    static func startsWithEnv(_ field: Field) -> Bool {
        guard field.count >= 4 else { return false }
        let start = field.startIndex
        return field.base[start] == UInt8(ascii: "e") && field.base[start + 1] == UInt8(ascii: "n")
            && field.base[start + 2] == UInt8(ascii: "v") && field.base[start + 3] == UInt8(ascii: "=")
    }

    static let attributeOrder = ["expires", "reserved", "inactive", "scopes", "description"]

    /// The rank of an attribute name in ``attributeOrder``, found by its
    /// first byte and length before one comparison (this runs per slot).
    static func attributeIndex(_ name: Field) -> Int? {
        let index: Int
        switch (name.first, name.count) {
        case (UInt8(ascii: "e"), 7): index = 0
        case (UInt8(ascii: "r"), 8): index = 1
        case (UInt8(ascii: "i"), 8): index = 2
        case (UInt8(ascii: "s"), 6): index = 3
        case (UInt8(ascii: "d"), 11): index = 4
        default: return nil
        }
        return attributeOrder[index].utf8.elementsEqual(name) ? index : nil
    }

    func attributes(_ field: Field) throws(BundleFormatError) -> SlotAttributes {
        var known: [KnownName] = []
        return try attributes(field, known: &known)
    }

    /// A name already read, as bytes to compare and as the string to share.
    struct KnownName {
        var bytes: [UInt8]
        var name: String
    }

    /// The attributes of a slot line; `known` holds variable names already
    /// read, so that the slots of one plugin key share one string.
    func attributes(_ field: Field, known: inout [KnownName]) throws(BundleFormatError) -> SlotAttributes {
        if Self.startsWithEnv(field), !field.contains(UInt8(ascii: ";")) {  // most slots: nothing but the variable
            return SlotAttributes(env: try environmentVariable(field.dropFirst(4), known: &known))
        }
        let firstEnd = field.firstIndex(of: UInt8(ascii: ";")) ?? field.endIndex
        let first = field[..<firstEnd]
        guard Self.startsWithEnv(first) else { throw fail("attributes must start with 'env='") }
        var attributes = SlotAttributes(env: try environmentVariable(first.dropFirst(4), known: &known))
        var rank = 0
        var start = firstEnd
        while start < field.endIndex {
            start += 1  // past the ';'
            let end = field[start...].firstIndex(of: UInt8(ascii: ";")) ?? field.endIndex
            let part = field[start..<end]
            start = end
            let equals = part.firstIndex(of: UInt8(ascii: "="))
            let keyBytes = equals.map { part[..<$0] } ?? part
            let value = equals.map { part[($0 + 1)...] }
            guard let index = Self.attributeIndex(keyBytes) else {
                throw fail("unknown attribute '\(text(keyBytes.prefix(32)))'")
            }
            guard index + 1 > rank else { throw fail("attributes out of order") }
            rank = index + 1
            switch index {
            case 0 where value != nil: attributes.expires = try time(value!)
            case 1 where value == nil: attributes.reserved = true
            case 2 where value == nil: attributes.inactive = true
            case 3 where value != nil:
                var scopes: [String] = []
                var start = value!.startIndex
                while true {
                    let end = value![start...].firstIndex(of: UInt8(ascii: ",")) ?? value!.endIndex
                    let scope = try name(value![start..<end], .scope)
                    guard !scopes.contains(scope) else { throw fail("scope '\(scope)' is listed twice") }
                    scopes.append(scope)
                    guard end < value!.endIndex else { break }
                    start = end + 1
                }
                attributes.scopes = scopes
            case 4 where value != nil:
                guard let decoded = PercentEncoding.decode(Substring(text(value!))) else {
                    throw fail("the description is not percent-encoded")
                }
                attributes.description = decoded
            default:
                throw fail("malformed attribute '\(text(part.prefix(64)))'")
            }
        }
        return attributes
    }
}
