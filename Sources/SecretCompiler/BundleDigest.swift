import Crypto
import Dispatch
import Foundation
import SecretCore

/// What the write cache knows a bundle's bytes by: SHA-256 over the length
/// and the SHA-256 of each 1 MiB chunk (as collision-resistant as SHA-256
/// of the whole, the chunk size being fixed). Two cores hash a 23 MiB bundle
/// at once, and a spliced bundle is hashed again only from its first
/// changed chunk.
public struct BundleDigest: Equatable, Sendable {
    public static let chunkSize = 1 << 20

    /// Each chunk's SHA-256, 32 bytes each.
    private(set) var chunks: [UInt8]
    public let count: Int

    /// The digest of `bytes`.
    public init(_ bytes: [UInt8]) {
        self.init(pieces: [bytes[...]])
    }

    /// The digest of the pieces' bytes one after the other, taking the
    /// chunks that lie wholly in the first `unchanged` bytes from `known`.
    public init(pieces: [ArraySlice<UInt8>], reusing known: BundleDigest? = nil, unchanged: Int = 0) {
        let count = pieces.reduce(0) { $0 + $1.count }
        self.count = count
        let total = (count + Self.chunkSize - 1) / Self.chunkSize
        let reused = known.map { min(unchanged, $0.count, count) / Self.chunkSize } ?? 0
        var chunks = [UInt8](repeating: 0, count: total * 32)
        if let known, reused > 0 { chunks.replaceSubrange(0..<(reused * 32), with: known.chunks[0..<(reused * 32)]) }
        let starts = pieces.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        chunks.withUnsafeMutableBufferPointer { output in
            nonisolated(unsafe) let output = output
            DispatchQueue.concurrentPerform(iterations: total - reused) { offset in
                let chunk = reused + offset
                let start = chunk * Self.chunkSize, end = min(count, start + Self.chunkSize)
                var hash = SHA256()
                // The pieces that overlap start..<end.
                for (index, piece) in pieces.enumerated() where starts[index] < end && starts[index + 1] > start {
                    let from = max(start, starts[index]) - starts[index], to = min(end, starts[index + 1]) - starts[index]
                    hash.update(data: piece[(piece.startIndex + from)..<(piece.startIndex + to)])
                }
                Self.store(hash, chunk: chunk, into: output)
            }
        }
        self.chunks = chunks
    }

    /// Reads the regular file at `path` and hashes it at once: each core
    /// reads and hashes its own chunks (the bytes are hashed while they are
    /// in the cache). Nil when the file cannot be read or changes meanwhile.
    public static func read(_ path: String) -> (bytes: [UInt8], digest: BundleDigest)? {
        identifiedRead(path).map { ($0.bytes, $0.digest) }
    }

    /// ``read(_:)``, with the identity of the file read.
    static func identifiedRead(_ path: String) -> (bytes: [UInt8], digest: BundleDigest, identity: FileIdentity)? {
        var chunks = UnsafeMutableBufferPointer<UInt8>(start: nil, count: 0)
        defer { chunks.deallocate() }
        let read = BundleFile.readChunked(path) { identity in
            chunks = .allocate(capacity: (identity.size + chunkSize - 1) / chunkSize * 32)
            nonisolated(unsafe) let output = chunks
            return { chunk, bytes in
                var hash = SHA256()
                hash.update(bufferPointer: bytes)
                Self.store(hash, chunk: chunk, into: output)
            }
        }
        guard let (bytes, identity) = read else { return nil }
        return (bytes, BundleDigest(count: identity.size, chunks: Array(chunks)), identity)
    }

    /// Finishes one chunk's hash into its 32 bytes of `output`.
    private static func store(_ hash: SHA256, chunk: Int, into output: UnsafeMutableBufferPointer<UInt8>) {
        for (index, byte) in hash.finalize().enumerated() { output[chunk * 32 + index] = byte }
    }

    private init(count: Int, chunks: [UInt8]) {
        self.count = count
        self.chunks = chunks
    }

    /// The 32-byte digest.
    public var value: [UInt8] {
        var hash = SHA256()
        hash.update(data: Array("secretc-chunked-sha256 \(Self.chunkSize) \(count)\n".utf8))
        hash.update(data: chunks)
        return Array(hash.finalize())
    }
}
