import Crypto

/// Canonical form of a detached OpenPGP signature, so that no byte of it can
/// change without the change being detected.
///
/// gpg's verification covers the hashed part of a signature; it ignores the
/// unhashed subpackets and reads MPIs by their byte length, so some bytes
/// could change and the signature would still verify. A canonical signature
/// is one v4 binary-document signature packet, nothing after it, whose
/// unhashed area is empty or holds only the issuer key id matching its hashed
/// issuer fingerprint, whose quick-check bytes match the signed hash (gpg
/// 2.2 does not compare them for EdDSA), and whose MPIs are minimally encoded.
public enum SignatureForm {
    /// - Parameters:
    ///   - bytes: the binary detached signature.
    ///   - data: the signed data, to check the hash's leading bytes.
    public static func isCanonical(_ bytes: [UInt8], over data: [UInt8]) -> Bool {
        isCanonical(bytes, data: SignedData(data))
    }

    /// ``isCanonical(_:over:)`` for data handed over in pieces.
    public static func isCanonical(_ bytes: [UInt8], over data: SignedData) -> Bool {
        isCanonical(bytes, data: data)
    }

    /// ``isCanonical(_:over:)`` for a signature whose quick-check bytes the
    /// caller has already compared with the signed hash (an in-process
    /// check does), so the data need not be hashed again.
    public static func isCanonicalForm(ofCheckedSignature bytes: [UInt8]) -> Bool {
        isCanonical(bytes, data: nil)
    }

    /// - Parameter data: nil when the quick-check bytes were checked already.
    private static func isCanonical(_ bytes: [UInt8], data: SignedData?) -> Bool {
        guard let header = try? PacketHeader(in: bytes, at: 0), header.tag == 2, header.end == bytes.count else {
            return false
        }
        var reader = ByteReader(bytes: bytes, index: header.bodyStart, end: header.end)
        guard reader.byte() == 4, reader.byte() == 0 else { return false }  // version 4, binary document
        guard let algorithm = reader.byte(), let hashAlgorithm = reader.byte() else { return false }
        guard let hashedLength = reader.uint16(), let hashed = reader.take(hashedLength) else { return false }
        let hashedPart = bytes[header.bodyStart..<reader.index]  // version through the hashed subpackets
        guard let unhashedLength = reader.uint16(), let unhashed = reader.take(unhashedLength) else { return false }
        guard let quickCheck = reader.take(2), [8, 9, 10].contains(hashAlgorithm) else { return false }
        if let data {
            guard let digest = signatureHash(hashAlgorithm, data: data, hashedPart: hashedPart),
                  Array(quickCheck) == Array(digest.prefix(2))
            else { return false }
        }

        let issuer = subpacket(33, in: hashed).map(Array.init)
        let issuerFingerprint = issuer.flatMap { $0.count == 21 && $0[0] == 4 ? Array($0.dropFirst()) : nil }
        let unhashedBytes = Array(unhashed)
        if !unhashedBytes.isEmpty {
            guard unhashedBytes.count == 10, unhashedBytes[0] == 9, unhashedBytes[1] == 16, let issuerFingerprint else {
                return false
            }
            guard Array(unhashedBytes[2...]) == Array(issuerFingerprint.suffix(8)) else { return false }
        }
        let count: Int
        switch algorithm {
        case 1, 3: count = 1  // RSA
        case 17, 19, 22: count = 2  // DSA, ECDSA, EdDSA
        default: return false
        }
        for _ in 0..<count {
            guard let bits = reader.uint16(), bits > 0, let value = reader.take((bits + 7) / 8), let first = value.first
            else { return false }
            // The top byte must hold exactly the top bits: no leading zeros, no slack in the bit count.
            guard first != 0, (bits - 1) % 8 == 7 - first.leadingZeroBitCount else { return false }
        }
        return reader.index == reader.end
    }

    /// The hash a v4 signature signs: the data, the hashed part, and the trailer
    /// 0x04 0xFF with the hashed part's length (RFC 4880 §5.2.4).
    static func signatureHash(_ algorithm: UInt8, data: SignedData, hashedPart: ArraySlice<UInt8>) -> [UInt8]? {
        let count = hashedPart.count
        let trailer: [UInt8] = [4, 0xFF, UInt8(truncatingIfNeeded: count >> 24), UInt8(truncatingIfNeeded: count >> 16),
                                UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count)]
        func run<H: HashFunction>(_ hasher: inout H) -> [UInt8] {
            data.forEachPiece { hasher.update(bufferPointer: $0) }
            hasher.update(data: hashedPart)
            hasher.update(data: trailer)
            return Array(hasher.finalize())
        }
        switch algorithm {
        case 8:
            var hasher = SHA256()
            return run(&hasher)
        case 9:
            var hasher = SHA384()
            return run(&hasher)
        case 10:
            var hasher = SHA512()
            return run(&hasher)
        default:
            return nil  // SHA-1 and others are not accepted
        }
    }

    /// The body of the first subpacket of `type` in a subpacket area.
    private static func subpacket(_ type: UInt8, in area: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        Subpacket.parse(area)?.first { $0.type == type }?.body
    }
}

/// One signature subpacket (RFC 4880 §5.2.3.1).
struct Subpacket {
    var type: UInt8
    var critical: Bool
    var body: ArraySlice<UInt8>

    /// Every subpacket of an area, or nil when the area is malformed.
    static func parse(_ area: ArraySlice<UInt8>) -> [Subpacket]? {
        var reader = ByteReader(bytes: Array(area), index: 0, end: area.count)
        var result: [Subpacket] = []
        while reader.index < reader.end {
            guard let first = reader.byte() else { return nil }
            let length: Int
            switch first {
            case 0..<192: length = Int(first)
            case 192..<255:
                guard let second = reader.byte() else { return nil }
                length = (Int(first) - 192) << 8 + Int(second) + 192
            default:
                guard let value = reader.take(4) else { return nil }
                length = value.reduce(0) { $0 << 8 | Int($1) }
            }
            guard length >= 1, let body = reader.take(length) else { return nil }
            result.append(Subpacket(type: body.first! & 0x7F, critical: body.first! & 0x80 != 0, body: body.dropFirst()))
        }
        return result
    }
}

/// Bounds-checked reading of a byte array.
struct ByteReader {
    let bytes: [UInt8]
    var index: Int
    let end: Int

    mutating func byte() -> UInt8? {
        guard index < end else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func uint16() -> Int? {
        guard let high = byte(), let low = byte() else { return nil }
        return Int(high) << 8 | Int(low)
    }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, index + count <= end else { return nil }
        defer { index += count }
        return bytes[index..<(index + count)]
    }
}
