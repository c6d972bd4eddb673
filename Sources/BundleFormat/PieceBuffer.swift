/// A fixed buffer that collects small appends and hands each full buffer
/// to a consumer: a payload of many megabytes rendered through 64 KiB of
/// memory that stays in cache.
struct PieceBuffer: ~Copyable {
    private let storage: UnsafeMutableRawBufferPointer
    private var count = 0
    private let consume: (UnsafeRawBufferPointer) -> Void

    private init(capacity: Int, consume: @escaping (UnsafeRawBufferPointer) -> Void) {
        storage = .allocate(byteCount: capacity, alignment: 16)
        self.consume = consume
    }

    deinit { storage.deallocate() }

    /// Runs `body` with a buffer handing its pieces to `consume`, and hands
    /// over whatever is left when `body` returns.
    static func render(
        capacity: Int = 1 << 16, to consume: (UnsafeRawBufferPointer) -> Void, _ body: (inout PieceBuffer) -> Void
    ) {
        withoutActuallyEscaping(consume) { consume in
            var buffer = PieceBuffer(capacity: capacity, consume: consume)
            body(&buffer)
            buffer.flush()
        }
    }

    /// Appends `bytes`. A run longer than the whole buffer is handed over
    /// in a piece of its own.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard reserve(bytes.count), let source = bytes.baseAddress else {
            if bytes.count > storage.count { consume(bytes) }
            return
        }
        (storage.baseAddress! + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    /// Appends `bytes` with the bytes at `spaces` (offsets into `bytes`) made spaces.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer, spaces: (Int, Int, Int)) {
        guard reserve(bytes.count), let source = bytes.baseAddress else {
            if bytes.count > storage.count {
                var copy = Array(bytes)
                for offset in [spaces.0, spaces.1, spaces.2] { copy[offset] = UInt8(ascii: " ") }
                copy.withUnsafeBytes(consume)
            }
            return
        }
        let target = storage.baseAddress! + count
        target.copyMemory(from: source, byteCount: bytes.count)
        target.storeBytes(of: UInt8(ascii: " "), toByteOffset: spaces.0, as: UInt8.self)
        target.storeBytes(of: UInt8(ascii: " "), toByteOffset: spaces.1, as: UInt8.self)
        target.storeBytes(of: UInt8(ascii: " "), toByteOffset: spaces.2, as: UInt8.self)
        count += bytes.count
    }

    /// Makes room for `count` more bytes, handing the buffer over when it
    /// is too full; false when they will not fit even then.
    @inline(__always)
    private mutating func reserve(_ more: Int) -> Bool {
        if count + more > storage.count { flush() }
        return more <= storage.count
    }

    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count == storage.count { flush() }
        storage[count] = byte
        count += 1
    }

    /// Hands the collected bytes over and empties the buffer.
    mutating func flush() {
        guard count > 0 else { return }
        consume(UnsafeRawBufferPointer(rebasing: storage[..<count]))
        count = 0
    }
}
