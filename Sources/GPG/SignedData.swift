/// The bytes a detached signature covers, handed over piece by piece.
///
/// A bundle's policy and epoch payloads are about 7 MB each at 100,000
/// slots and exist only to be hashed: rendering them into a reusable buffer
/// and hashing each piece as it fills writes no fresh memory, where building
/// the whole payload first cost a page fault every 4 KiB. The pieces, in
/// order, are the data; how they are cut does not matter.
public struct SignedData {
    private let produce: ((UnsafeRawBufferPointer) -> Void) -> Void

    /// Data that is already in memory: one piece.
    public init(_ bytes: [UInt8]) {
        produce = { body in bytes.withUnsafeBytes(body) }
    }

    /// Data produced on demand: `pieces` calls its argument with each piece
    /// in order, and may be called more than once (it must produce the same
    /// bytes each time). A piece is read only during the call that hands it over.
    public init(pieces: @escaping ((UnsafeRawBufferPointer) -> Void) -> Void) {
        produce = pieces
    }

    /// Calls `body` with each piece, in order.
    public func forEachPiece(_ body: (UnsafeRawBufferPointer) -> Void) {
        withoutActuallyEscaping(body) { produce($0) }
    }

    /// The data as one array (for gpg, which reads it whole).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        forEachPiece { out += $0 }
        return out
    }
}
