/// The OpenPGP packet structure of an epoch's data-key message, read
/// without any key (RFC 4880 §4): one public-key encrypted session key
/// packet (tag 1) per recipient, then one symmetrically encrypted,
/// integrity-protected data packet (tag 18, or 20 for OCB) and nothing
/// else. `check` compares the key ids with the declared recipients' keys,
/// so a write its readers could not open is found in CI, not at boot.
public struct DataKeyEnvelope: Sendable, Equatable {
    /// The key id each session key is encrypted to (16 upper-case hex digits).
    public var recipientKeyIDs: [String]

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        case malformed(String)
        case unexpectedPacket(tag: Int)

        public var description: String {
            switch self {
            case .malformed(let why): return "the data-key message is not an OpenPGP message: \(why)"
            case .unexpectedPacket(let tag):
                return "the data-key message holds an OpenPGP packet of type \(tag), not only session keys and one encrypted packet"
            }
        }
    }

    public init(parsing message: [UInt8]) throws(Problem) {
        var keyIDs: [String] = []
        var offset = 0
        var sawData = false
        while offset < message.count {
            guard !sawData else { throw .malformed("bytes follow the encrypted packet") }
            let (tag, body, next) = try Self.packet(message, at: offset)
            switch tag {
            case 1:
                guard body.count >= 10, message[body.lowerBound] == 3 else {
                    throw .malformed("a session-key packet is not version 3")
                }
                let id = message[(body.lowerBound + 1)..<(body.lowerBound + 9)]
                keyIDs.append(id.map { byte in
                    let digits = Array("0123456789ABCDEF".utf8)
                    return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 15)]], as: UTF8.self)
                }.joined())
            case 18, 20:
                sawData = true
            default:
                throw .unexpectedPacket(tag: tag)
            }
            offset = next
        }
        guard sawData else { throw .malformed("it has no encrypted packet") }
        guard !keyIDs.isEmpty else { throw .malformed("it has no session-key packet") }
        recipientKeyIDs = keyIDs
    }

    /// The packet at `offset`: its tag, its body (for a body in partial
    /// lengths, only the first part, which is all a session-key packet
    /// needs) and where the next packet starts.
    private static func packet(_ bytes: [UInt8], at offset: Int) throws(Problem) -> (tag: Int, body: Range<Int>, next: Int) {
        let header = bytes[offset]
        guard header & 0x80 != 0 else { throw .malformed("byte \(offset) is not a packet header") }
        var cursor = offset + 1
        func take(_ count: Int) throws(Problem) -> Int {
            guard cursor + count <= bytes.count else { throw .malformed("a packet is cut short") }
            var value = 0
            for index in 0..<count { value = value << 8 | Int(bytes[cursor + index]) }
            cursor += count
            return value
        }
        if header & 0x40 == 0 {  // the old format
            let tag = Int(header >> 2 & 0x0F)
            let length: Int
            switch header & 3 {
            case 0: length = try take(1)
            case 1: length = try take(2)
            case 2: length = try take(4)
            default: throw .malformed("a packet has an indeterminate length")
            }
            guard cursor + length <= bytes.count else { throw .malformed("a packet is cut short") }
            return (tag, cursor..<(cursor + length), cursor + length)
        }
        let tag = Int(header & 0x3F)
        var first: Range<Int>?
        while true {
            let octet = try take(1)
            let length: Int
            var partial = false
            switch octet {
            case 0..<192: length = octet
            case 192..<224: length = (octet - 192) << 8 + (try take(1)) + 192
            case 255: length = try take(4)
            default:
                length = 1 << (octet & 0x1F)
                partial = true
            }
            guard cursor + length <= bytes.count else { throw .malformed("a packet is cut short") }
            if first == nil { first = cursor..<(cursor + length) }
            cursor += length
            if !partial { return (tag, first!, cursor) }
        }
    }
}
