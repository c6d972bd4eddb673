import Crypto
import CryptoExtras
import Foundation
import Synchronization

/// Decrypts short OpenPGP messages (a bundle epoch's data key) in process
/// with Curve25519 ECDH secret keys, the mirror of ``Cv25519Encryptor``: an
/// X25519 agreement, the RFC 6637 KDF, AES key unwrap, then the
/// integrity-protected packet in OpenPGP's CFB mode with its SHA-1
/// modification detection code.
///
/// gpg spends a process on every message (about 12 ms); this costs tens of
/// microseconds, so a bundle with ten thousand epochs opens at boot in a
/// fraction of a second.
///
/// gpg stays the authority for everything this type does not read: it
/// answers ``Outcome/declined(_:)`` (never a guess) for a message to a key
/// it does not hold in usable form (RSA, NIST curves, a passphrase-protected
/// key, a hidden recipient while such a key is present), for a session key
/// cipher other than AES, for OCB, and for a compressed or signed payload.
/// The tests compare every result with gpg's on the same bytes.
public struct Cv25519Decryptor: Sendable {
    /// One usable secret key: its public half (fingerprint, KDF) and where
    /// the agreement is made.
    struct SecretKey: @unchecked Sendable {  // the private key is immutable; the pool locks
        var recipient: Cv25519Recipient
        var agreement: Agreement
    }

    enum Agreement {
        /// The scalar is in this process.
        case local(Curve25519.KeyAgreement.PrivateKey)
        /// gpg-agent holds it (a GnuPG home, a smartcard), known by its keygrip.
        case agent(AgentSession.Pool, keygrip: String)
    }

    private let keys: [SecretKey]
    /// Whether the key material holds a secret key this type cannot use:
    /// then a message it does not open may still be gpg's to open.
    private let holdsOtherSecretKeys: Bool
    /// Whether the keys are all there are (key material given in full); for
    /// a GnuPG home, whose keyring may have changed since it was listed, a
    /// message no key opens is gpg's to decide.
    private var complete = true

    /// The upper-case fingerprints of the keys this decryptor can use.
    public var fingerprints: [String] { keys.map(\.recipient.fingerprint) }

    /// Reads every secret key packet (primary or subkey) in a transferable
    /// secret key, armored or binary. nil when none is an unprotected v4
    /// Curve25519 ECDH key: the caller decrypts with gpg.
    public init?(secretKeys bytes: [UInt8]) {
        guard let packets = try? KeyFile.binary(from: bytes) else { return nil }
        var keys: [SecretKey] = []
        var others = false
        var offset = 0
        while offset < packets.count {
            guard let packet = try? PacketHeader(in: packets, at: offset) else { return nil }
            offset = packet.end
            guard packet.tag == 5 || packet.tag == 7 else { continue }
            let body = packets[packet.bodyStart..<packet.end]
            if let key = Self.secretKey(body) {
                keys.append(key)
            } else if Self.mayDecrypt(body) {
                others = true
            }
        }
        guard !keys.isEmpty else { return nil }
        self.keys = keys
        holdsOtherSecretKeys = others
    }

    /// Whether a key packet's algorithm can decrypt: anything but the
    /// signature-only ones (RSA sign-only 3, DSA 17, ECDSA 19, EdDSA 22,
    /// Ed25519 27, Ed448 28) in a v4 packet; any key of another version.
    private static func mayDecrypt(_ body: ArraySlice<UInt8>) -> Bool {
        guard body.count > 5, body[body.startIndex] == 4 else { return true }
        return ![3, 17, 19, 22, 27, 28].contains(body[body.startIndex + 5])
    }

    /// The Curve25519 ECDH secret keys of the GnuPG home `home` (nil:
    /// `GNUPGHOME` or gpg's default), each agreement asked of its gpg-agent
    /// over the agent's socket. nil when the home holds no such key or its
    /// agent cannot be reached: the caller decrypts with gpg.
    public init?(agentOf home: String?) {
        guard let context = try? Context(home: home), let subkeys = try? context.secretSubkeys(),
              let socket = Self.agentSocket(home)
        else { return nil }
        let pool = AgentSession.Pool(socket: socket)
        guard pool.withSession({ _ in true }) == true else { return nil }
        var keys: [SecretKey] = []
        var others = false
        var exported: [String: [UInt8]] = [:]
        for subkey in subkeys {
            // gpgme's numbers: ECDH is 302 (18 in OpenPGP's); signing-only are
            // RSA-S 3, DSA 17, ECDSA 301 (19) and EdDSA 303 (22).
            guard [18, 302].contains(subkey.algorithm), subkey.curve == "cv25519" else {
                if ![3, 17, 19, 22, 301, 303].contains(subkey.algorithm) { others = true }
                continue
            }
            if exported[subkey.primary] == nil {
                exported[subkey.primary] = (try? context.exportPublicKey(subkey.primary)).map { Array($0.utf8) } ?? []
            }
            guard let recipient = Cv25519Recipient(keyData: exported[subkey.primary]!, subkey: subkey.fingerprint) else {
                others = true
                continue
            }
            keys.append(SecretKey(recipient: recipient, agreement: .agent(pool, keygrip: subkey.keygrip)))
        }
        guard !keys.isEmpty else { return nil }
        self.keys = keys
        holdsOtherSecretKeys = others
        complete = false
    }

    /// ``init(agentOf:)`` once per home and process (a key listing, the
    /// agent's socket and an export: three processes, about 100 ms);
    /// reloads reuse it. When none is known yet and `count` messages are too
    /// few to repay that, nil: gpg opens them, one process each.
    public static func agent(of home: String?, toOpen count: Int = .max) -> Cv25519Decryptor? {
        let key = home ?? ProcessInfo.processInfo.environment["GNUPGHOME"] ?? ""
        if let known = agentDecryptors.withLock({ $0[key] }) { return known }
        guard count >= 4, let made = Cv25519Decryptor(agentOf: home) else { return nil }
        agentDecryptors.withLock { $0[key] = made }
        return made
    }

    private static let agentDecryptors = Mutex<[String: Cv25519Decryptor]>([:])

    /// The agent's socket for `home`, as gpgconf names it.
    private static func agentSocket(_ home: String?) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["gpgconf"] + (home.map { ["--homedir", $0] } ?? []) + ["--list-dirs", "agent-socket"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let path = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !path.isEmpty
        else { return nil }
        // gpgconf percent-escapes special characters in paths.
        return path.removingPercentEncoding ?? path
    }

    /// A v4 secret key packet's body on Curve25519 ECDH, stored without
    /// protection (S2K usage 0): the public body, 0, the scalar as an MPI
    /// (big-endian, the reverse of X25519's byte order), the two-byte sum.
    private static func secretKey(_ body: ArraySlice<UInt8>) -> SecretKey? {
        let body = Array(body)
        let publicCount = Cv25519Recipient.publicBodyCount
        guard body.count > publicCount + 3, let recipient = Cv25519Recipient(body: body[0..<publicCount]),
              body[publicCount] == 0
        else { return nil }
        let bits = Int(body[publicCount + 1]) << 8 | Int(body[publicCount + 2])
        let length = (bits + 7) / 8
        let start = publicCount + 3
        guard bits <= 256, body.count == start + length + 2 else { return nil }
        let mpi = body[(publicCount + 1)..<(start + length)]
        let sum = mpi.reduce(0) { ($0 + Int($1)) & 0xFFFF }
        guard sum == Int(body[start + length]) << 8 | Int(body[start + length + 1]) else { return nil }
        var scalar = [UInt8](repeating: 0, count: 32 - length) + body[start..<(start + length)]
        defer { wipe(&scalar) }
        scalar.reverse()
        guard let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: scalar),
              privateKey.publicKey.rawRepresentation.elementsEqual(recipient.point)
        else { return nil }
        return SecretKey(recipient: recipient, agreement: .local(privateKey))
    }

    /// What became of one message.
    public enum Outcome: Sendable {
        /// The literal data, at most `limit` bytes.
        case plaintext(SecureBytes)
        /// Not this type's to decide: gpg decrypts it (the reason is for the log).
        case declined(String)
        /// It does not decrypt, as gpg would also find; the reason names no secret.
        case refused(String)
    }

    /// Decrypts a message of public-key session key packets and one
    /// integrity-protected data packet holding literal data of at most
    /// `limit` bytes.
    public func decrypt(_ message: [UInt8], limit: Int) -> Outcome {
        guard let packets = try? Self.packets(message) else { return .refused("it is not an OpenPGP message") }
        var sessionKey: [UInt8]?
        defer { if sessionKey != nil { wipe(&sessionKey!) } }
        for packet in packets where packet.tag == 1 && sessionKey == nil {
            let body = packet.body
            guard body.count >= 10, body[0] == 3 || body[0] == 2 else { continue }  // gpg reads both
            let keyID = body[1..<9]
            let hidden = keyID.allSatisfy { $0 == 0 }
            let candidates = keys.filter { hidden || $0.recipient.keyID.elementsEqual(keyID) }
            if candidates.isEmpty || hidden, holdsOtherSecretKeys {
                return .declined("a session key may be for a secret key that only gpg reads")
            }
            guard body[9] == 18, let (point, wrapped) = Self.ecdhFields(body[10...]) else { continue }
            for key in candidates {
                switch Self.unwrap(wrapped, point: point, with: key) {
                case .some(.success(let key)):
                    sessionKey = key
                case .some(.failure(let reason)):
                    return .declined(reason.description)
                case .none:
                    continue
                }
                break
            }
        }
        guard var key = sessionKey else {
            return complete
                ? .refused("no session key opens with the runtime's key")
                : .declined("no session key opens with the keys listed; the keyring may hold more")
        }
        defer { wipe(&key) }
        guard let data = packets.last, data.tag == 18 else {
            return .declined("the encrypted packet is not integrity-protected CFB (OCB is gpg's)")
        }
        return Self.openProtected(data.body, key: key, limit: limit)
    }

    /// The ephemeral point and the wrapped key of an ECDH session-key packet.
    private static func ecdhFields(_ fields: ArraySlice<UInt8>) -> (point: [UInt8], wrapped: [UInt8])? {
        let fields = Array(fields)
        // An MPI of 33 bytes (gpg reads the byte count, not the exact bit
        // count): 0x40 and the 32-byte point; then a length octet and the wrapped key.
        guard fields.count >= 36, ((Int(fields[0]) << 8 | Int(fields[1])) + 7) / 8 == 33, fields[2] == 0x40 else { return nil }
        let count = Int(fields[35])
        guard count >= 24, count % 8 == 0, fields.count == 36 + count else { return nil }
        return (Array(fields[3..<35]), Array(fields[36...]))
    }

    /// The session key (AES's algorithm octet first) from one session-key
    /// packet: nil when it does not open with `key`; a failure when it opens
    /// to a cipher gpg knows and this type does not.
    private static func unwrap(_ wrapped: [UInt8], point: [UInt8], with key: SecretKey) -> Result<[UInt8], Declined>? {
        var sharedX: [UInt8]
        switch key.agreement {
        case .local(let privateKey):
            guard let ephemeral = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: point),
                  let shared = try? privateKey.sharedSecretFromKeyAgreement(with: ephemeral)
            else { return nil }
            sharedX = shared.withUnsafeBytes { Array($0) }
        case .agent(let pool, let keygrip):
            // The agent answers the point (0x40 and X) or X alone; anything
            // else, or no answer, is gpg's to decide.
            guard let answer = pool.withSession({ $0.agree(keygrip: keygrip, ephemeral: [0x40] + point, wrapped: wrapped) }),
                  var shared = answer
            else { return .failure(Declined(description: "gpg-agent did not answer")) }
            defer { wipe(&shared) }
            switch shared.count {
            case 33 where shared[0] == 0x40: sharedX = Array(shared[1...])
            case 32: sharedX = shared
            default: return .failure(Declined(description: "gpg-agent answered a point of \(shared.count) bytes"))
            }
        }
        defer { wipe(&sharedX) }
        let kek = sharedX.withUnsafeBytes { key.recipient.keyEncryptionKey(sharedX: $0) }
        guard let unwrapped = try? AES.KeyWrap.unwrap(wrapped, using: kek) else { return nil }
        var frame = unwrapped.withUnsafeBytes { Array($0) }
        defer { wipe(&frame) }
        // Then as gpg reads it: the last byte says how many padding bytes to
        // drop (gpg checks no more of PKCS #5), then the cipher, the key and
        // its two-byte sum.
        guard let pad = frame.last, frame.count > 8, Int(pad) <= frame.count else { return nil }
        frame.removeLast(Int(pad))
        guard frame.count >= 4 else { return nil }
        guard let length = aesKeyLength(frame[0]) else {
            return .failure(Declined(description: "the session key's cipher (\(frame[0])) is gpg's to use"))
        }
        guard frame.count - 3 == length else { return nil }
        let sessionKey = frame[1..<(frame.count - 2)]
        let sum = sessionKey.reduce(0) { ($0 + Int($1)) & 0xFFFF }
        guard sum == Int(frame[frame.count - 2]) << 8 | Int(frame[frame.count - 1]) else { return nil }
        return .success(Array(frame[0..<(frame.count - 2)]))
    }

    struct Declined: Error { var description: String }

    /// AES-128, -192 and -256 by their OpenPGP cipher ids.
    private static func aesKeyLength(_ algorithm: UInt8) -> Int? {
        switch algorithm {
        case 7: return 16
        case 8: return 24
        case 9: return 32
        default: return nil
        }
    }

    /// RFC 4880 §5.13: version 1, then under the session key in CFB mode
    /// with a zero IV: a random block, its last two bytes again, the
    /// payload, and the modification detection code (0xD3 0x14 and SHA-1 of
    /// everything before it). The payload must be one literal data packet.
    private static func openProtected(_ body: [UInt8], key: [UInt8], limit: Int) -> Outcome {
        let blockSize = 16
        guard body.first == 1 else { return .refused("the encrypted packet's version is not 1") }
        guard body.count >= 1 + blockSize + 2 + 22 else { return .refused("the encrypted packet is too short") }
        guard var plaintext = try? AES._CFB.decrypt(
            body[1...], using: SymmetricKey(data: key[1...]), iv: AES._CFB.IV(ivBytes: [UInt8](repeating: 0, count: blockSize)))
            .withUnsafeBytes({ Array($0) })
        else { return .refused("the encrypted packet does not decrypt") }
        defer { wipe(&plaintext) }
        let end = plaintext.count - 22
        guard plaintext[blockSize - 2] == plaintext[blockSize], plaintext[blockSize - 1] == plaintext[blockSize + 1] else {
            return .refused("the session key does not decrypt the encrypted packet")
        }
        guard plaintext[end] == 0xD3, plaintext[end + 1] == 0x14,
              Insecure.SHA1.hash(data: plaintext[..<(end + 2)]).elementsEqual(plaintext[(end + 2)...])
        else { return .refused("the encrypted packet fails its modification detection code") }
        var payload = Array(plaintext[(blockSize + 2)..<end])
        defer { wipe(&payload) }
        guard var inner = try? packets(payload) else { return .declined("the payload is not OpenPGP packets") }
        defer { for index in inner.indices { wipe(&inner[index].body) } }
        if inner.contains(where: { [1, 3, 9, 18, 20].contains($0.tag) }) {
            return .refused("the payload is itself encrypted (a data key must be literal data)")
        }
        guard inner.count == 1, inner[0].tag == 11 else {
            return .declined("the payload is not one literal data packet")
        }
        return literalData(inner[0].body, limit: limit)
    }

    /// A literal data packet's body: format, file name, date, then the data.
    private static func literalData(_ body: [UInt8], limit: Int) -> Outcome {
        guard body.count >= 6, body.count >= 6 + Int(body[1]) else { return .refused("the literal data packet is cut short") }
        let data = body[(6 + Int(body[1]))...]
        guard data.count <= limit else { return .refused("the plaintext is longer than \(limit) bytes") }
        return .plaintext(SecureBytes(Array(data)))
    }

    /// One packet: its tag and its whole body (partial lengths joined).
    struct Packet {
        var tag: Int
        var body: [UInt8]
    }

    /// Every packet of `bytes`, in order.
    static func packets(_ bytes: [UInt8]) throws(Declined) -> [Packet] {
        var packets: [Packet] = []
        var cursor = 0
        func take(_ count: Int) throws(Declined) -> Int {
            guard cursor + count <= bytes.count else { throw Declined(description: "a packet is cut short") }
            var value = 0
            for index in 0..<count { value = value << 8 | Int(bytes[cursor + index]) }
            cursor += count
            return value
        }
        func body(_ length: Int) throws(Declined) -> ArraySlice<UInt8> {
            guard length >= 0, cursor + length <= bytes.count else { throw Declined(description: "a packet is cut short") }
            defer { cursor += length }
            return bytes[cursor..<(cursor + length)]
        }
        while cursor < bytes.count {
            let header = try take(1)
            guard header & 0x80 != 0 else { throw Declined(description: "not a packet header") }
            if header & 0x40 == 0 {  // the old format
                let length: Int
                switch header & 3 {
                case 0: length = try take(1)
                case 1: length = try take(2)
                case 2: length = try take(4)
                default: throw Declined(description: "a packet has an indeterminate length")
                }
                packets.append(Packet(tag: header >> 2 & 0x0F, body: Array(try body(length))))
                continue
            }
            var joined: [UInt8] = []
            while true {
                let octet = try take(1)
                switch octet {
                case 0..<192:
                    joined += try body(octet)
                case 192..<224:
                    joined += try body((octet - 192) << 8 + (try take(1)) + 192)
                case 255:
                    joined += try body(try take(4))
                default:
                    joined += try body(1 << (octet & 0x1F))
                    continue
                }
                break
            }
            packets.append(Packet(tag: header & 0x3F, body: joined))
        }
        return packets
    }
}
