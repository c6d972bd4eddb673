/// Standard base64 with padding (RFC 4648 §4), strictly decoded. Hand-written
/// over bytes: a large bundle holds hundreds of thousands of fields.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        append(bytes, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the base64 text of `bytes` to `out`.
    static func append(_ bytes: [UInt8], to out: inout [UInt8]) {
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        alphabet.withUnsafeBufferPointer { alphabet in
            var index = 0
            while index + 3 <= bytes.count {
                let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
                out.append(alphabet[Int(chunk >> 18 & 63)])
                out.append(alphabet[Int(chunk >> 12 & 63)])
                out.append(alphabet[Int(chunk >> 6 & 63)])
                out.append(alphabet[Int(chunk & 63)])
                index += 3
            }
            let rest = bytes.count - index
            guard rest > 0 else { return }
            let chunk = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
    }

    /// The number of bytes `field` decodes to, or nil unless it is canonical
    /// base64 (the rules of ``decode(_:)``); checks without allocating.
    static func decodedCount<Bytes: RandomAccessCollection<UInt8>>(_ field: Bytes) -> Int? where Bytes.Index == Int {
        guard !field.isEmpty, field.count % 4 == 0 else { return nil }
        var padding = 0
        if field.last == UInt8(ascii: "=") { padding += 1 }
        if field.count >= 2, field[field.endIndex - 2] == UInt8(ascii: "=") { padding += 1 }
        return values.withUnsafeBufferPointer { table -> Int? in
            let body = field.endIndex - 4
            var index = field.startIndex
            while index < body {  // every group but the last: four alphabet characters
                guard table[Int(field[index])] | table[Int(field[index + 1])] | table[Int(field[index + 2])]
                    | table[Int(field[index + 3])] < 64 else { return nil }
                index += 4
            }
            let a = table[Int(field[index])], b = table[Int(field[index + 1])]
            let c = padding == 2 ? 0 : table[Int(field[index + 2])]
            let d = padding >= 1 ? 0 : table[Int(field[index + 3])]
            guard a | b | c | d < 64 else { return nil }
            // Unused bits must be zero, as decode requires.
            if padding == 2, b & 0x0F != 0 { return nil }
            if padding == 1, c & 0x03 != 0 { return nil }
            return field.count / 4 * 3 - padding
        }
    }

    /// nil unless `field` is canonical base64: the alphabet, padding only at
    /// the end, and unused bits zero (so re-encoding gives the same text).
    static func decode(_ field: ArraySlice<UInt8>) -> [UInt8]? {
        var out = [UInt8]()
        let valid = field.withUnsafeBufferPointer { decode($0, into: &out) }
        return valid ? out : nil
    }

    /// ``decode(_:)-(ArraySlice<UInt8>)`` of a borrowed slice.
    static func decode(_ field: Slice<UnsafeBufferPointer<UInt8>>) -> [UInt8]? {
        var out = [UInt8]()
        return decode(UnsafeBufferPointer(rebasing: field), into: &out) ? out : nil
    }

    /// Decodes canonical base64 into `out` (its storage reused, so a loop can
    /// keep one buffer); false unless `field` is canonical.
    static func decode(_ field: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) -> Bool {
        guard !field.isEmpty, field.count % 4 == 0 else {
            out.removeAll(keepingCapacity: true)
            return false
        }
        var padding = 0
        if field[field.count - 1] == UInt8(ascii: "=") { padding += 1 }
        if field.count >= 2, field[field.count - 2] == UInt8(ascii: "=") { padding += 1 }
        let count = field.count / 4 * 3 - padding
        if out.count != count {
            out.removeAll(keepingCapacity: true)
            out.append(contentsOf: repeatElement(0, count: count))
        }
        return out.withUnsafeMutableBufferPointer { decode(field, padding: padding, into: $0) }
    }

    /// The decoding loop, on raw buffers: no bounds or exclusivity checks per byte.
    private static func decode(_ field: UnsafeBufferPointer<UInt8>, padding: Int, into out: UnsafeMutableBufferPointer<UInt8>)
        -> Bool
    {
        let table = lookup
        var index = 0
        var written = 0
        let body = field.count - 4
        while index < body {  // every group but the last: three whole bytes
            let a = table[Int(field[index])], b = table[Int(field[index + 1])]
            let c = table[Int(field[index + 2])], d = table[Int(field[index + 3])]
            guard a | b | c | d < 64 else { return false }
            let chunk = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
            out[written] = UInt8(chunk >> 16)
            out[written + 1] = UInt8(chunk >> 8 & 0xFF)
            out[written + 2] = UInt8(chunk & 0xFF)
            written += 3
            index += 4
        }
        let a = table[Int(field[index])], b = table[Int(field[index + 1])]
        let c = padding == 2 ? 0 : table[Int(field[index + 2])]
        let d = padding >= 1 ? 0 : table[Int(field[index + 3])]
        guard a | b | c | d < 64 else { return false }
        let chunk = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
        out[written] = UInt8(chunk >> 16)
        switch padding {
        case 2:
            return chunk & 0xFFFF == 0  // unused bits must be zero
        case 1:
            out[written + 1] = UInt8(chunk >> 8 & 0xFF)
            return chunk & 0xFF == 0
        default:
            out[written + 1] = UInt8(chunk >> 8 & 0xFF)
            out[written + 2] = UInt8(chunk & 0xFF)
            return true
        }
    }

    /// ``values`` as an immortal pointer: reading it needs no retain (never written after it is built).
    nonisolated(unsafe) private static let lookup: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 256)
        for index in 0..<256 { table[index] = values[index] }
        return UnsafePointer(table)
    }()
}
