import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One connection to a GnuPG home's gpg-agent over its Assuan socket, for
/// the one operation gpg itself asks of it when it decrypts: the ECDH
/// agreement of a secret key the agent holds (`SETKEY`, `PKDECRYPT`). The key
/// never leaves the agent (or its smartcard); a decryption costs a socket
/// round trip instead of a gpg process.
///
/// The Assuan client is the few lines this needs (gpgme's would ask gpgconf
/// for the socket, which secretc switches off for speed): commands and
/// their `OK`/`ERR`, `D` lines percent-escaped, and one `INQUIRE` answered.
/// Every read has a time limit: a stuck agent costs an error, and the
/// caller decrypts with gpg instead.
///
/// Not thread-safe: one session per thread (``AgentSession/Pool``).
final class AgentSession {
    private let socket: Int32
    private var buffer: [UInt8] = []
    /// The key the agent was last told (`SETKEY` holds for the connection).
    private var keygrip: String?

    /// Connects to the agent listening on `path`.
    init(socket path: String) throws {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw GPGError.engineUnavailable("the agent's socket path \(path) is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes + [0]) }
        let descriptor = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw GPGError.engineUnavailable("no socket for gpg-agent") }
        socket = descriptor  // from here on, deinit closes it, also when this throws
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw GPGError.engineUnavailable("gpg-agent is not listening on \(path)") }
        _ = try response(inquiry: nil)  // the greeting
        // A protected key must never start a pinentry: the caller falls back to gpg.
        try transact("OPTION pinentry-mode=cancel")
    }

    deinit { close(socket) }

    /// The shared point of the key with `keygrip` and an ephemeral point
    /// (0x40 and 32 bytes, as the session-key packet holds it); nil when the
    /// agent refuses (no such key, a passphrase it does not have).
    func agree(keygrip: String, ephemeral: [UInt8], wrapped: [UInt8]) -> [UInt8]? {
        guard keygrip.utf8.count == 40, keygrip.utf8.allSatisfy({ isxdigit(Int32($0)) != 0 }) else { return nil }
        if self.keygrip != keygrip {
            self.keygrip = nil
            guard (try? transact("SETKEY \(keygrip)")) != nil else { return nil }
            self.keygrip = keygrip
        }
        // (enc-val(ecdh(s<the wrapped key>)(e<the point>))), as gpg sends it.
        var ciphertext = Array("(7:enc-val(4:ecdh(1:s\(wrapped.count + 1):".utf8) + [UInt8(wrapped.count)] + wrapped
        ciphertext += Array(")(1:e\(ephemeral.count):".utf8) + ephemeral + Array(")))".utf8)
        guard var reply = try? transact("PKDECRYPT", inquiry: ciphertext) else { return nil }
        defer { reply.withUnsafeMutableBytes { wipe($0) } }
        return Self.value(reply)
    }

    /// The bytes of `(5:valueN:…)`, the agent's answer.
    private static func value(_ reply: [UInt8]) -> [UInt8]? {
        let prefix = Array("(5:value".utf8)
        guard reply.count > prefix.count + 3, reply.starts(with: prefix) else { return nil }
        var index = prefix.count
        var length = 0
        while index < reply.count, (48...57).contains(reply[index]), length < 1 << 16 {
            length = length * 10 + Int(reply[index]) - 48
            index += 1
        }
        guard length > 0, index < reply.count, reply[index] == UInt8(ascii: ":"), index + 1 + length <= reply.count else {
            return nil
        }
        return Array(reply[(index + 1)..<(index + 1 + length)])
    }

    /// Sends `command` and returns the data the agent sent before its `OK`.
    @discardableResult
    private func transact(_ command: String, inquiry: [UInt8]? = nil) throws -> [UInt8] {
        try send(Array(command.utf8) + [0x0A])
        return try response(inquiry: inquiry)
    }

    /// Reads lines up to `OK` (returning the `D` data) or `ERR` (throwing);
    /// answers an `INQUIRE` with `inquiry`.
    private func response(inquiry: [UInt8]?) throws -> [UInt8] {
        var data: [UInt8] = []
        while true {
            let line = try readLine()
            if line.starts(with: Array("OK".utf8)), line.count == 2 || line[2] == 0x20 { return data }
            if line.starts(with: Array("ERR".utf8)) {
                data.withUnsafeMutableBytes { wipe($0) }
                throw GPGError.operationFailed(
                    operation: "gpg-agent", code: 0,
                    message: String(decoding: line.prefix(120).map { (0x20..<0x7F).contains($0) ? $0 : 0x3F }, as: UTF8.self))
            }
            if line.starts(with: Array("D ".utf8)) {
                var chunk = Self.unescaped(line.dropFirst(2))
                data += chunk
                chunk.withUnsafeMutableBytes { wipe($0) }
            } else if line.starts(with: Array("INQUIRE ".utf8)) {
                guard let inquiry else {
                    try send(Array("CAN\n".utf8))
                    continue
                }
                // Data lines of at most 1,000 bytes, %, CR and LF escaped.
                var out: [UInt8] = []
                var lineLength = 0
                for byte in inquiry {
                    if lineLength == 0 { out += Array("D ".utf8) }
                    if byte == 0x25 || byte == 0x0D || byte == 0x0A {
                        out += Array(String(format: "%%%02X", byte).utf8)
                        lineLength += 3
                    } else {
                        out.append(byte)
                        lineLength += 1
                    }
                    if lineLength >= 900 {
                        out.append(0x0A)
                        lineLength = 0
                    }
                }
                if lineLength > 0 { out.append(0x0A) }
                out += Array("END\n".utf8)
                try send(out)
            }
            // S (status) and # (comment) lines carry nothing needed here.
        }
    }

    private static func unescaped(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == 0x25, index + 2 < bytes.endIndex,
               let value = UInt8(String(decoding: bytes[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)
            {
                out.append(value)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }

    private func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw GPGError.engineUnavailable("gpg-agent closed the connection") }
            offset += sent
        }
    }

    /// One line without its LF; lines longer than Assuan's 1,000 bytes are refused.
    private func readLine() throws -> ArraySlice<UInt8> {
        while true {
            if let end = buffer.firstIndex(of: 0x0A) {
                let line = Array(buffer[..<end])
                // The agent's answer holds the shared point: no copy is left behind.
                for index in 0...end { buffer[index] = 0 }
                buffer.removeSubrange(...end)
                return line[...]
            }
            guard buffer.count <= 4096 else { throw GPGError.engineUnavailable("gpg-agent sent an over-long line") }
            var chunk = [UInt8](repeating: 0, count: 2048)
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw GPGError.engineUnavailable("gpg-agent did not answer") }
            buffer += chunk[..<count]
        }
    }

    /// Agent sessions for any thread to borrow, all to one agent socket.
    final class Pool: @unchecked Sendable {
        let socket: String
        private let lock = NSLock()
        private var idle: [AgentSession] = []

        init(socket: String) { self.socket = socket }

        /// Runs `body` with a session of its own; nil when none can be opened.
        func withSession<T>(_ body: (AgentSession) -> T) -> T? {
            let session = lock.withLock { idle.popLast() } ?? (try? AgentSession(socket: socket))
            guard let session else { return nil }
            defer { lock.withLock { idle.append(session) } }
            return body(session)
        }
    }
}
