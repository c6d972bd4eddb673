import Crypto
import Foundation

/// A first look at a key file, without gpg: is it OpenPGP, public or secret,
/// and which primary keys (by v4 fingerprint) does it hold.
///
/// gpg remains the authority on everything else (self-signatures, usable
/// subkeys, expiry, revocation). This scan exists so a project's key files
/// can be listed with one gpg run and the results mapped back to each file.
public struct KeyFile: Sendable, Hashable {
    /// What kind of OpenPGP block a file holds.
    public enum Kind: Sendable, Hashable {
        case publicKey
        /// A secret key: it must never be committed as a principal's key.
        case secretKey
    }

    public var kind: Kind
    /// Fingerprints (upper-case hex) of every primary key in the file, in order.
    /// Empty for keys whose version has no v4 fingerprint.
    public var fingerprints: [String]
    /// Primary keys found, including any whose fingerprint could not be computed.
    public var primaryKeyCount: Int

    /// The 64-bit key ids (16 upper-case hex digits: a v4 fingerprint's
    /// last 16) of every primary key and subkey, as a session-key packet
    /// names the key it is encrypted to.
    public var keyIDs: Set<String>
    /// Whether every packet is one a transferable public key is made of
    /// (RFC 4880 §11.1: keys and subkeys, user ids and attributes,
    /// signatures) — as a bundle's `key` line must be: no marker, trust or
    /// other packet a reader would have to skip.
    public var holdsOnlyKeyPackets: Bool

    /// Scans `bytes` (ASCII-armored or binary).
    /// - Throws: ``GPGError/invalidData(_:)`` saying what is wrong.
    public init(scanning bytes: [UInt8]) throws {
        let packets = try Self.binary(from: bytes)
        var fingerprints: [String] = []
        var keyIDs = Set<String>()
        var holdsOnlyKeyPackets = true
        var count = 0
        var kind: Kind?
        var offset = 0
        while offset < packets.count {
            let packet = try PacketHeader(in: packets, at: offset)
            let fingerprint = [5, 6, 7, 14].contains(packet.tag) ? Self.v4Fingerprint(packets, packet) : nil
            if let fingerprint { keyIDs.insert(String(fingerprint.suffix(16))) }
            if ![2, 6, 13, 14, 17].contains(packet.tag) { holdsOnlyKeyPackets = false }
            if packet.tag == 6 || packet.tag == 5 {
                let packetKind: Kind = packet.tag == 6 ? .publicKey : .secretKey
                if kind == nil { kind = packetKind } else if kind != packetKind {
                    throw GPGError.invalidData("mixes public and secret keys")
                }
                count += 1
                if let fingerprint { fingerprints.append(fingerprint) }
            } else if offset == 0 {
                throw GPGError.invalidData("does not start with a key (packet type \(packet.tag))")
            }
            offset = packet.end
        }
        guard let kind, count > 0 else { throw GPGError.invalidData("holds no key") }
        self.kind = kind
        self.fingerprints = fingerprints
        self.primaryKeyCount = count
        self.keyIDs = keyIDs
        self.holdsOnlyKeyPackets = holdsOnlyKeyPackets
    }

    /// The first user id of the first key in `bytes` (armored or binary), for display.
    public static func firstUserID(_ bytes: [UInt8]) -> String? {
        guard let packets = try? binary(from: bytes) else { return nil }
        var offset = 0
        while offset < packets.count, let packet = try? PacketHeader(in: packets, at: offset) {
            if packet.tag == 13 { return String(decoding: packets[packet.bodyStart..<packet.end], as: UTF8.self) }
            offset = packet.end
        }
        return nil
    }

    /// The packet bytes: every armored block decoded and joined, or `bytes` as they are.
    public static func binary(from bytes: [UInt8]) throws -> [UInt8] {
        guard let first = bytes.first else { throw GPGError.invalidData("the file is empty") }
        if first & 0x80 != 0 { return bytes }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw GPGError.invalidData("neither ASCII armor nor binary OpenPGP")
        }
        var packets: [UInt8] = []
        var body = ""
        var state = 0  // 0 outside a block, 1 in its headers, 2 in its body
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = trimmed(rawLine)
            switch state {
            case 0 where line.hasPrefix("-----BEGIN PGP "):
                state = 1
                body = ""
            case 1 where line.isEmpty:
                state = 2
            case 1 where !line.contains(":"):
                state = 2
                body += line
            case 2 where line.hasPrefix("-----END PGP "):
                guard let data = Data(base64Encoded: body), !data.isEmpty else {
                    throw GPGError.invalidData("the armored body is not valid base64")
                }
                packets.append(contentsOf: data)
                state = 0
            case 2 where line.hasPrefix("="):
                continue  // CRC-24 checksum; gpg verifies it
            case 2:
                body += line
            default:
                continue
            }
        }
        guard state == 0 else { throw GPGError.invalidData("the armor is not closed") }
        guard !packets.isEmpty else { throw GPGError.invalidData("no '-----BEGIN PGP' armor line") }
        return packets
    }

    /// `line` without surrounding white space (Foundation's trimming is slow here).
    private static func trimmed(_ line: Substring) -> Substring {
        var start = line.startIndex
        var end = line.endIndex
        while start < end, line[start].isWhitespace { start = line.index(after: start) }
        while end > start, line[line.index(before: end)].isWhitespace { end = line.index(before: end) }
        return line[start..<end]
    }

    /// SHA-1 over 0x99, the two-byte body length and the key packet body (RFC 4880 §12.2).
    private static func v4Fingerprint(_ bytes: [UInt8], _ packet: PacketHeader) -> String? {
        guard packet.bodyStart < packet.end, bytes[packet.bodyStart] == 4 else { return nil }
        // A secret key packet starts with its public part; find where it ends.
        let publicLength: Int
        if packet.tag == 6 {
            publicLength = packet.end - packet.bodyStart
        } else {
            guard let length = publicPartLength(bytes, from: packet.bodyStart, to: packet.end) else { return nil }
            publicLength = length
        }
        guard publicLength <= 0xFFFF else { return nil }
        return v4Fingerprint(publicBody: bytes[packet.bodyStart..<(packet.bodyStart + publicLength)])
            .map { String(format: "%02X", $0) }.joined()
    }

    /// The 20-byte v4 fingerprint of a key packet's public fields (at most 65,535 bytes).
    static func v4Fingerprint(publicBody: ArraySlice<UInt8>) -> [UInt8] {
        var hasher = Insecure.SHA1()
        hasher.update(data: [0x99, UInt8(publicBody.count >> 8), UInt8(publicBody.count & 0xFF)])
        hasher.update(data: publicBody)
        return Array(hasher.finalize())
    }

    /// Length of the public-key fields of a v4 key packet: version, time,
    /// algorithm, then the algorithm's MPIs (and, for EC, an OID first).
    private static func publicPartLength(_ bytes: [UInt8], from start: Int, to end: Int) -> Int? {
        var index = start + 6
        guard index <= end else { return nil }
        let algorithm = bytes[start + 5]
        func skipMPI() -> Bool {
            guard index + 2 <= end else { return false }
            let bits = Int(bytes[index]) << 8 | Int(bytes[index + 1])
            index += 2 + (bits + 7) / 8
            return index <= end
        }
        func skipOID() -> Bool {
            guard index < end else { return false }
            index += 1 + Int(bytes[index])
            return index <= end
        }
        let ok: Bool
        switch algorithm {
        case 1, 2, 3: ok = skipMPI() && skipMPI()  // RSA n, e
        case 16, 20: ok = skipMPI() && skipMPI() && skipMPI()  // Elgamal p, g, y
        case 17: ok = skipMPI() && skipMPI() && skipMPI() && skipMPI()  // DSA p, q, g, y
        case 19, 22: ok = skipOID() && skipMPI()  // ECDSA, EdDSA
        case 18:  // ECDH: OID, point, KDF parameters
            ok = skipOID() && skipMPI() && index < end && { index += 1 + Int(bytes[index]); return index <= end }()
        default: ok = false
        }
        return ok ? index - start : nil
    }
}

/// One OpenPGP packet's header, located in a byte array.
struct PacketHeader {
    var tag: Int
    var bodyStart: Int
    var end: Int

    init(in bytes: [UInt8], at offset: Int) throws {
        guard offset >= 0, offset < bytes.count else { throw GPGError.invalidData("no packet at byte \(offset)") }
        let header = bytes[offset]
        guard header & 0x80 != 0 else { throw GPGError.invalidData("bad packet header at byte \(offset)") }
        var index = offset + 1
        func byte() throws -> Int {
            guard index < bytes.count else { throw GPGError.invalidData("truncated packet at byte \(offset)") }
            defer { index += 1 }
            return Int(bytes[index])
        }
        let length: Int
        if header & 0x40 != 0 {  // new format
            tag = Int(header & 0x3F)
            let first = try byte()
            switch first {
            case 0..<192: length = first
            case 192..<224: length = ((first - 192) << 8) + (try byte()) + 192
            case 255: length = (try byte()) << 24 | (try byte()) << 16 | (try byte()) << 8 | (try byte())
            default: throw GPGError.invalidData("partial-length packet where a key was expected")
            }
        } else {  // old format
            tag = Int((header >> 2) & 0x0F)
            switch header & 0x03 {
            case 0: length = try byte()
            case 1: length = (try byte()) << 8 | (try byte())
            case 2: length = (try byte()) << 24 | (try byte()) << 16 | (try byte()) << 8 | (try byte())
            default: length = bytes.count - index
            }
        }
        bodyStart = index
        end = index + length
        guard end <= bytes.count else { throw GPGError.invalidData("truncated packet at byte \(offset)") }
    }
}
