#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Holds the kernel's current ``Snapshot`` so that lookups read it without a
/// lock and without touching its reference count, and a reload frees the old
/// one only after every lookup that could still see it has finished
/// (read-copy-update with two alternating reader counts).
///
/// A lock, or a reference count, makes every lookup write to one memory
/// location shared by all threads; with 8 threads on 2 cores that line moves
/// between cores on every lookup and costs more than the lookup itself. Here
/// a reader writes only its thread's own counter (one of 64 stripes, each on
/// its own cache line), and reads the snapshot pointer, which changes only
/// on reload.
///
/// Protocol: a reader picks the current parity, increments its stripe's
/// counter of that parity, then loads the pointer; it decrements when done.
/// A writer swaps the pointer, then twice flips the parity and waits until
/// the counters of the previous parity are all zero. Any reader that loaded
/// the old pointer incremented a counter of one of the two parities before
/// the swap, so both waits together outlast it; a reader that increments
/// after a wait has seen zero loads the new pointer (all operations here
/// are sequentially consistent).
final class SnapshotCell: @unchecked Sendable {
    private let pointer: Atomic<Unmanaged<Snapshot>>
    private let parity = Atomic<Int>(0)
    /// 64 stripes × 16 counters (128 bytes, a cache line pair of its own);
    /// a stripe uses its first two: readers of even and of odd parity.
    private let counters: UnsafeMutablePointer<Atomic<Int>>
    private static let stripes = 64
    private static let stride = 16

    init(_ snapshot: Snapshot) {
        pointer = Atomic(Unmanaged.passRetained(snapshot))
        let count = Self.stripes * Self.stride
        counters = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Int>.stride, alignment: 128)
            .bindMemory(to: Atomic<Int>.self, capacity: count)
        for index in 0..<count { (counters + index).initialize(to: Atomic(0)) }
    }

    deinit {
        pointer.load(ordering: .sequentiallyConsistent).release()
        counters.deinitialize(count: Self.stripes * Self.stride)
        counters.deallocate()
    }

    /// Runs `body` on the current snapshot, which stays alive until `body` returns.
    /// `body` must not reload.
    @inline(__always)
    func read<T>(_ body: (Snapshot) -> T) -> T {
        let counter = Self.stripeIndex() * Self.stride + (parity.load(ordering: .sequentiallyConsistent) & 1)
        counters[counter].add(1, ordering: .sequentiallyConsistent)
        defer { counters[counter].subtract(1, ordering: .releasing) }
        return pointer.load(ordering: .sequentiallyConsistent)._withUnsafeGuaranteedRef(body)
    }

    /// Publishes `fresh` and returns the previous snapshot once no lookup can
    /// still be reading it. Callers serialize replacements.
    func replace(with fresh: Snapshot) -> Snapshot {
        let previous = pointer.exchange(Unmanaged.passRetained(fresh), ordering: .sequentiallyConsistent)
        for _ in 0..<2 {
            let old = parity.load(ordering: .sequentiallyConsistent) & 1
            parity.store(old ^ 1, ordering: .sequentiallyConsistent)
            for stripe in 0..<Self.stripes {
                while counters[stripe * Self.stride + old].load(ordering: .sequentiallyConsistent) != 0 { sched_yield() }
            }
        }
        return previous.takeRetainedValue()
    }

    /// The calling thread's stripe: a multiplicative hash of its id.
    @inline(__always)
    private static func stripeIndex() -> Int {
        #if os(Linux)
        let id = UInt64(pthread_self())
        #else
        let id = UInt64(UInt(bitPattern: pthread_self()))
        #endif
        return Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> 58)
    }
}
