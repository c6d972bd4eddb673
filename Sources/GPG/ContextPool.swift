import Dispatch
import Synchronization

/// Contexts kept for reuse, per GnuPG home, each lent to one borrower at a time.
///
/// Binding a new context to a home makes gpgme run `gpg --version` (a process
/// of its own, and a `fork` of the whole calling process) before any real
/// work. A program that comes back to the same home, as a service reloading
/// its bundle does, borrows the context it used before instead.
///
/// Only contexts without a passphrase are pooled. Every operation spawns a
/// fresh `gpg`, which reads the home as it is then: a context remembers only
/// the signing keys it looked up, and gpg still refuses one that is gone.
public final class ContextPool: Sendable {
    /// The pool shared by the whole process.
    public static let shared = ContextPool()

    /// Idle contexts kept per home; more borrowers at once get fresh ones.
    private static let idleLimit = 4
    /// Homes kept; a new one pushes out another (a program uses one or two).
    private static let homeLimit = 8

    /// A context as held by the pool: only the borrower who took it out uses it.
    private final class Lent: @unchecked Sendable {
        let context: Context
        init(_ context: Context) { self.context = context }
    }

    private let idle = Mutex<[String: [Lent]]>([:])

    public init() {}

    /// Creates a context on `home` on another thread, unless one is idle, so
    /// that gpgme's start-up and `gpg --version` overlap the caller's own work
    /// (and fork the process while it is still small). Returns at once.
    public func warmUp(home: String?) {
        DispatchQueue.global(qos: .userInitiated).async {
            let key = home ?? ""
            guard self.idle.withLock({ $0[key]?.isEmpty ?? true }), let context = try? Context(home: home) else { return }
            self.keep(Lent(context), as: key)
        }
    }

    /// Runs `body` with a context on `home` (nil: `GNUPGHOME` or gpg's
    /// default), taken from the pool or created, and returned to the pool
    /// afterwards, whether `body` threw or not.
    public func withContext<T>(home: String?, _ body: (Context) throws -> T) throws -> T {
        let key = home ?? ""
        let lent = try idle.withLock { $0[key]?.popLast() } ?? Lent(Context(home: home))
        defer { keep(lent, as: key) }
        return try body(lent.context)
    }

    private func keep(_ lent: Lent, as key: String) {
        idle.withLock { idle in
            if idle[key] == nil, idle.count >= Self.homeLimit, let other = idle.keys.first { idle[other] = nil }
            if idle[key, default: []].count < Self.idleLimit { idle[key, default: []].append(lent) }
        }
    }
}
