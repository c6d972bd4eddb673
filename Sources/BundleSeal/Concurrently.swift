import Dispatch
import Synchronization

/// Runs `background` on another thread while `body` runs on this one, and
/// returns both results once both are done (also when `body` throws, so no
/// work outlives the call). Used to overlap gpg's decryption of data keys
/// with the in-process checks of signatures.
public func concurrently<Background: Sendable, Foreground, Failure: Error>(
    _ background: @escaping @Sendable () -> Background, _ body: () throws(Failure) -> Foreground
) throws(Failure) -> (background: Background, foreground: Foreground) {
    let result = Mutex<Background?>(nil)
    let group = DispatchGroup()
    DispatchQueue.global(qos: .userInitiated).async(group: group) {
        let value = background()
        result.withLock { $0 = value }
    }
    let foreground: Foreground
    do {
        foreground = try body()
    } catch {
        group.wait()
        throw error
    }
    group.wait()
    return (result.withLock { $0! }, foreground)
}

/// Work started on another thread now, whose result is waited for later.
public final class Pending<Value: Sendable>: @unchecked Sendable {
    private let group = DispatchGroup()
    private let result = Mutex<Value?>(nil)

    public init(_ body: @escaping @Sendable () -> Value) {
        DispatchQueue.global(qos: .userInitiated).async(group: group) { [self] in
            let value = body()
            result.withLock { $0 = value }
        }
    }

    /// The result, once the work is done.
    public func wait() -> Value {
        group.wait()
        // The work stored its value before leaving the group.
        return result.withLock { $0! }
    }
}
