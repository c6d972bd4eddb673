#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A byte buffer for plaintext secrets that is zeroed when it dies.
///
/// Copies made with ``withUnsafeBytes(_:)`` are the caller's to wipe; the
/// buffer itself never leaves its storage and is overwritten in `deinit`.
public final class SecureBytes: @unchecked Sendable, CustomStringConvertible {
    private var storage: [UInt8]

    /// Takes ownership of `bytes`; the caller should not keep other copies.
    public init(_ bytes: [UInt8]) { storage = bytes }

    /// Takes the UTF-8 bytes of `string`.
    public convenience init(_ string: String) { self.init(Array(string.utf8)) }

    deinit {
        storage.withUnsafeMutableBytes { wipe($0) }
    }

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }

    /// Calls `body` with the bytes; the pointer is valid only inside `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes(body)
    }

    /// The bytes as a `String` (a copy the caller owns), if they are UTF-8.
    public func utf8String() -> String? { String(validating: storage, as: UTF8.self) }

    /// Never the contents.
    public var description: String { "SecureBytes(<REDACTED>, \(storage.count) bytes)" }
}

/// Overwrites `buffer` with zeros in a way the optimiser may not remove.
public func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
    guard let base = buffer.baseAddress, buffer.count > 0 else { return }
    #if canImport(Glibc)
    explicit_bzero(base, buffer.count)
    #else
    _ = memset_s(base, buffer.count, 0, buffer.count)
    #endif
}
