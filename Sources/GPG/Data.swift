internal import CGPGME
import Glibc

/// Owns one `gpgme_data_t`; released in `deinit` unless its memory was taken.
final class DataHandle {
    private var handle: gpgme_data_t?
    /// A callback object's table and target, which gpgme reads until the handle is released.
    private var callbacks: UnsafeMutablePointer<gpgme_data_cbs>?
    private var sink: BoundedSink?

    /// The live handle; valid until ``take(wiping:)``.
    var raw: gpgme_data_t { handle! }

    /// An empty, growable in-memory buffer for gpgme to write into.
    init() throws {
        try check(gpgme_data_new(&handle), "data")
    }

    /// A buffer over a copy of `bytes`, for gpgme to read.
    init(copying bytes: UnsafeRawBufferPointer) throws {
        if let base = bytes.baseAddress, bytes.count > 0 {
            try check(gpgme_data_new_from_mem(&handle, base.assumingMemoryBound(to: CChar.self), bytes.count, 1), "data")
        } else {
            try check(gpgme_data_new(&handle), "data")
        }
    }

    /// A write-only data object whose bytes go to `sink` (kept alive by this handle).
    init(writingTo sink: BoundedSink) throws {
        self.sink = sink
        let callbacks = UnsafeMutablePointer<gpgme_data_cbs>.allocate(capacity: 1)
        self.callbacks = callbacks
        callbacks.initialize(to: gpgme_data_cbs(
            read: nil,
            write: { handle, buffer, size in
                guard let handle, let buffer else { return -1 }
                let sink = Unmanaged<BoundedSink>.fromOpaque(handle).takeUnretainedValue()
                guard sink.append(UnsafeRawBufferPointer(start: buffer, count: size)) else {
                    errno = EFBIG
                    return -1
                }
                return size
            },
            seek: nil, release: nil))
        try check(gpgme_data_new_from_cbs(&handle, callbacks, Unmanaged.passUnretained(sink).toOpaque()), "data")
    }

    /// A buffer over a copy of `bytes`, for gpgme to read.
    static func copying(_ bytes: [UInt8]) throws -> DataHandle {
        try bytes.withUnsafeBytes { try DataHandle(copying: $0) }
    }

    deinit {
        if let handle { gpgme_data_release(handle) }
        callbacks?.deallocate()
    }

    /// Everything gpgme wrote, copied out, releasing the handle. gpgme's own
    /// buffer is zeroed before it is freed when `wiping` is set (plaintext).
    func take(wiping: Bool = false) -> [UInt8] {
        guard let current = handle else { return [] }
        handle = nil
        var length = 0
        guard let pointer = gpgme_data_release_and_get_mem(current, &length) else { return [] }
        let bytes = Array(UnsafeRawBufferPointer(start: pointer, count: length))
        if wiping { wipe(UnsafeMutableRawBufferPointer(start: pointer, count: length)) }
        gpgme_free(pointer)
        return bytes
    }
}

/// Turns a gpgme error into a Swift error, naming the operation.
func check(_ error: gpgme_error_t, _ operation: String) throws {
    guard gpgme_err_code(error) != GPG_ERR_NO_ERROR else { return }
    throw GPGError.operationFailed(
        operation: operation, code: gpgme_err_code(error).rawValue, message: errorMessage(error))
}

/// gpgme's thread-safe error text.
func errorMessage(_ error: gpgme_error_t) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    _ = gpgme_strerror_r(error, &buffer, buffer.count)
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Where a bounded decryption's plaintext goes: at most `limit` bytes, then
/// every write fails (and gpg stops).
final class BoundedSink {
    let limit: Int
    private(set) var bytes: [UInt8] = []
    private(set) var overflowed = false

    init(limit: Int) {
        self.limit = limit
        bytes.reserveCapacity(limit)
    }

    func append(_ chunk: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count + chunk.count <= limit else {
            overflowed = true
            return false
        }
        bytes += chunk
        return true
    }

    func wipe() { bytes.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) } }
}
