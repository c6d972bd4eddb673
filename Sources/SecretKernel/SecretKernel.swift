import BundleFormat
import BundleSeal
import CLinux
import Foundation
import GPG
import Logging
@_exported import SecretCore
import Synchronization

/// The runtime loader: decrypts and verifies one environment's bundle once,
/// then serves lookups from memory.
///
/// ```swift
/// let kernel = try SecretKernel(.init(
///     bundle: .path("secrets/production.bundle"),
///     trustedAdmins: ["2E5035F3951C4CC79B8E447F436EF147770AE473"]))
/// let token = kernel.getSecret(plugin: "shopify", key: "ADMIN_TOKEN", for: .user(workbook.owner))
/// ```
///
/// Lookups resolve the user's slot, then the deployment-wide slot, then the
/// environment variable. Expired, inactive and out-of-scope values are never
/// served. A value its writer signed that cannot be used (its data key does
/// not decrypt, it fails AES-GCM or its pattern) is `unavailable`: it is not
/// served, nothing is served in its place, and the other slots load.
/// ``reload()`` swaps in a new bundle atomically and keeps the old
/// one when the new one fails; lookups never wait for a reload.
public final class SecretKernel: Sendable, CustomStringConvertible {
    public let configuration: Configuration
    private let current: SnapshotCell
    /// Read once: lookups pay for debug logging only when it is on.
    private let logsLookups: Bool
    /// Serializes reloads (lookups never take it).
    private let reloads = Mutex<Void>(())
    /// Undeclared names already warned about by ``getSecret(plugin:key:for:)`` (bounded).
    private let warnedUndeclared = Mutex<Set<String>>([])
    private let counters = Mutex<(reloads: Int, failures: Int)>((0, 0))

    /// Loads and verifies the configured bundle.
    /// - Throws: ``SecretKernelError`` when anything fails; nothing is served.
    public init(_ configuration: Configuration) throws(SecretKernelError) {
        self.configuration = configuration
        logsLookups = configuration.logger.logLevel <= .debug
        if configuration.protectsProcess { _ = secretc_set_non_dumpable() }
        do {
            let snapshot = try Self.load(configuration.bundle, configuration, extending: nil, remembering: true)
            configuration.logger.info("secret bundle loaded", metadata: Self.loadMetadata(snapshot))
            Self.logFailures(snapshot, configuration.logger)
            current = SnapshotCell(snapshot)
        } catch {
            configuration.logger.error("secret bundle refused: \(error.message)")
            throw error
        }
    }

    // MARK: Lookups

    /// The value to use for `plugin`'s `key` on behalf of `owner`, or nil.
    ///
    /// Name whose secrets apply: for a shared resource, its owner, never the
    /// viewer (`.user(workbook.owner)`); `.deployment` asks for the
    /// deployment-wide value only. A `.user` lookup falls back to the
    /// deployment-wide slot, then to the environment variable. A plugin or
    /// key the bundle's signed schema does not declare (a typo) returns nil
    /// and is logged once at warning; ``secret(plugin:key:for:)`` throws
    /// ``SecretUnavailable/Reason/undeclared`` for it.
    public func getSecret(plugin: String, key: String, for owner: SecretOwner) -> String? {
        if logsLookups {
            do {
                return try secret(plugin: plugin, key: key, for: owner).value
            } catch {
                if error.reason == .undeclared { warnUndeclared(plugin, key) }
                return nil
            }
        }
        // The same resolution as `secret`, without building a source or a
        // reason: the hot path of a service allocates only the value.
        let found: String?? = current.read { snapshot in
            if case .user(let user) = owner, let record = snapshot.table.record(owner: user, plugin: plugin, key: key) {
                if servable(record) { return String(decoding: record.value, as: UTF8.self) }
                if record.flags & LookupTable.unavailable != 0 { return .some(nil) }  // nothing in its place
            }
            if let record = snapshot.table.record(owner: nil, plugin: plugin, key: key) {
                if servable(record) { return String(decoding: record.value, as: UTF8.self) }
                if record.flags & LookupTable.unavailable != 0 { return .some(nil) }
            }
            guard snapshot.declares(plugin, key) else { return nil }
            return .some(configuration.fallbackEnvironment[snapshot.environmentVariable(plugin, key)])
        }
        guard let found else {
            warnUndeclared(plugin, key)
            return nil
        }
        return found
    }

    /// Like ``getSecret(plugin:key:for:)``, with where the value came from,
    /// or why there is none (undeclared, not set, expired, inactive, out of
    /// scope, unavailable).
    public func secret(plugin: String, key: String, for owner: SecretOwner) throws(SecretUnavailable) -> Secret {
        let found = current.read { snapshot in resolve(snapshot, plugin, key, owner.user) }
        switch found {
        case .success(let secret):
            if logsLookups {
                configuration.logger.debug(
                    "secret served", metadata: ["slot": "\(owner.user ?? "-")/\(plugin)/\(key)", "source": "\(secret.source)"])
            }
            return secret
        case .failure(let reason):
            throw reason
        }
    }

    /// The value of exactly the slot of `owner` (with no fallback to another
    /// slot or the environment): what an operator's `secretc get` prints.
    public func slotValue(plugin: String, key: String, of owner: SecretOwner) throws(SecretUnavailable) -> Secret {
        let found = current.read { snapshot -> Result<Secret, SecretUnavailable> in
            let variable = snapshot.environmentVariable(plugin, key)
            guard snapshot.declares(plugin, key) else {
                return .failure(Self.undeclared(snapshot, plugin, key, owner.user))
            }
            return serve(snapshot, owner: owner.user, plugin, key).map { value in
                Secret(value: value, source: owner.user.map { .userSlot($0) } ?? .deploymentSlot)
            }.mapError { why in
                SecretUnavailable(plugin: plugin, key: key, user: owner.user, environmentVariable: variable, reason: why.reason)
            }
        }
        return try found.get()
    }

    /// ``getSecret(plugin:key:for:)`` for bindings to other languages: `body`
    /// sees the value's bytes where they are held (no `String` is made),
    /// only while it runs. nil when there is no value to serve.
    @_spi(Bindings)
    public func withSecretBytes(
        plugin: String, key: String, for owner: SecretOwner, _ body: (UnsafeRawBufferPointer) -> Int
    ) -> Int? {
        let found: Int?? = current.read { snapshot in
            if case .user(let user) = owner, let record = snapshot.table.record(owner: user, plugin: plugin, key: key) {
                if servable(record) { return body(record.value) }
                if record.flags & LookupTable.unavailable != 0 { return .some(nil) }
            }
            if let record = snapshot.table.record(owner: nil, plugin: plugin, key: key) {
                if servable(record) { return body(record.value) }
                if record.flags & LookupTable.unavailable != 0 { return .some(nil) }
            }
            guard snapshot.declares(plugin, key) else { return nil }
            guard var text = configuration.fallbackEnvironment[snapshot.environmentVariable(plugin, key)] else { return .some(nil) }
            return text.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
        guard let found else {
            warnUndeclared(plugin, key)
            return nil
        }
        return found
    }

    /// One warning per undeclared name, for the forms that do not throw.
    private func warnUndeclared(_ plugin: String, _ key: String) {
        let name = "\(plugin)/\(key)"
        let first = warnedUndeclared.withLock { warned in
            guard warned.count < 1_000 else { return false }  // names may come from requests: bounded
            return warned.insert(name).inserted
        }
        guard first else { return }
        let problem = current.read { Self.undeclared($0, plugin, key, nil) }
        configuration.logger.warning("secret lookup of an undeclared name: \(problem.undeclaredDetail ?? name)")
    }

    /// The error for a plugin or key the signed schema does not declare, with a suggestion.
    private static func undeclared(_ snapshot: Snapshot, _ plugin: String, _ key: String, _ user: String?) -> SecretUnavailable {
        let detail: String
        if let keys = snapshot.declared[plugin] {
            let names = keys.map(\.key)
            detail = "plugin '\(plugin)' declares no secret '\(key)'"
                + (Suggestion.closest(to: key, in: names).map { "; did you mean '\($0)'?" } ?? "; it declares \(names.joined(separator: ", "))")
        } else {
            detail = "'\(plugin)' is not a plugin of this bundle"
                + (Suggestion.closest(to: plugin, in: snapshot.declared.keys).map { "; did you mean '\($0)'?" } ?? "")
        }
        var error = SecretUnavailable(
            plugin: plugin, key: key, user: user, environmentVariable: snapshot.environmentVariable(plugin, key), reason: .undeclared)
        error.undeclaredDetail = detail
        return error
    }

    /// The resolution order, on one snapshot: the user's slot, the deployment-wide slot, the variable.
    @inline(__always)
    private func resolve(_ snapshot: Snapshot, _ plugin: String, _ key: String, _ user: String?)
        -> Result<Secret, SecretUnavailable>
    {
        guard snapshot.declares(plugin, key) else {
            return .failure(Self.undeclared(snapshot, plugin, key, user))
        }
        var reason: SecretUnavailable.Reason?
        if let user {
            switch serve(snapshot, owner: user, plugin, key) {
            case .success(let value): return .success(Secret(value: value, source: .userSlot(user)))
            case .failure(let why): reason = why.reason
            }
        }
        if reason != .unavailable {  // an unusable value is never replaced by another
            switch serve(snapshot, owner: nil, plugin, key) {
            case .success(let value): return .success(Secret(value: value, source: .deploymentSlot))
            case .failure(let why): if reason == nil || reason == .notSet { reason = why.reason }
            }
        }
        let variable = snapshot.environmentVariable(plugin, key)
        if reason != .unavailable, let value = configuration.fallbackEnvironment[variable] {
            return .success(Secret(value: value, source: .environmentVariable(variable)))
        }
        return .failure(SecretUnavailable(
            plugin: plugin, key: key, user: user, environmentVariable: variable, reason: reason ?? .notSet))
    }

    /// The seeds' settings answer for `plugin` and `owner`:
    /// the declared schema, which keys hold a value this loader serves, and
    /// each slot's state. Never a value.
    /// - Throws: ``SecretUnavailable/Reason/undeclared`` for a plugin the
    ///   bundle does not declare.
    public func status(plugin: String, for owner: SecretOwner) throws(SecretUnavailable) -> PluginSecretsStatus {
        let user = owner.user
        let snapshot = current.read { $0 }  // a strong reference: safe to keep past a reload
        guard let declared = snapshot.declared[plugin] else { throw Self.undeclared(snapshot, plugin, "", user) }
        let order = Dictionary(declared.enumerated().map { ($1.key, $0) }, uniquingKeysWith: { first, _ in first })
        let positions = snapshot.positions(owner: user, plugin: plugin).sorted {
            let left = snapshot.slot(at: $0).key, right = snapshot.slot(at: $1).key
            return (order[left] ?? .max, left) < (order[right] ?? .max, right)
        }
        let now = now()
        var setKeys: [String] = []
        let slots = positions.map { position -> SlotStatus in
            let entry = snapshot.serving[position]
            let metadata = snapshot.metadata[position]
            let written = snapshot.written(position)
            let key = snapshot.slot(at: position).key
            let state: SlotState
            if !entry.hasValue {
                state = .pending
            } else if entry.unavailable {
                state = .unavailable
            } else if entry.inactive {
                state = .inactive
            } else if entry.expires <= now {
                state = .expired
            } else {
                state = .active
                if entry.inScope { setKeys.append(key) }
            }
            return SlotStatus(
                key: key, status: state, hasValue: entry.hasValue, reserved: metadata.reserved,
                active: !entry.inactive, expires: entry.expires == .max ? nil : SlotStatus.expiryText(Self.date(entry.expires)),
                scopes: metadata.scopes, description: metadata.description, writtenBy: written?.writer,
                updatedAt: written.map { Self.date($0.at).formatted(.iso8601) })
        }
        return PluginSecretsStatus(
            pluginSlug: plugin, declared: declared, setKeys: setKeys.sorted(), environment: snapshot.environment,
            user: user, slots: slots)
    }

    /// Every value this loader serves as environment variables, under their
    /// env names: the deployment-wide slots, then a `.user` owner's own slots, which
    /// take precedence where both set the same variable (a slot of theirs
    /// that is unavailable removes it). What `secretc exec` passes on.
    public func environmentVariables(for owner: SecretOwner) -> [String: String] {
        let snapshot = current.read { $0 }  // a strong reference: safe to keep past a reload
        var variables: [String: String] = [:]
        let owners: [String?] = owner.user.map { [nil, $0] } ?? [nil]
        for owner in owners {
            for position in snapshot.positions(owner: owner) {
                let served = serve(snapshot, at: position)
                if case .failure(let why) = served, why.reason != .unavailable { continue }
                let slot = snapshot.slot(at: position)
                // An unavailable value removes the variable: nothing stands in for it.
                variables[snapshot.environmentVariable(slot.plugin, slot.key)] = try? served.get()
            }
        }
        return variables
    }

    /// The variables of a `.user` owner's slots (and the deployment-wide ones) whose
    /// value is unavailable: a launcher that passes its own environment on
    /// removes these, so that nothing stands in for an unusable value.
    public func unavailableVariables(for owner: SecretOwner) -> [String] {
        let snapshot = current.read { $0 }  // a strong reference: safe to keep past a reload
        let owners: [String?] = owner.user.map { [nil, $0] } ?? [nil]
        return owners.flatMap { owner in
            snapshot.positions(owner: owner).filter { snapshot.serving[$0].unavailable }.map { position in
                let slot = snapshot.slot(at: position)
                return snapshot.environmentVariable(slot.plugin, slot.key)
            }
        }
    }

    // MARK: Reloading

    /// Loads the configured bundle again (a ``BundleSource/path(_:)`` source)
    /// and swaps it in. On failure the loaded bundle stays in service.
    public func reload() throws(SecretKernelError) {
        try reload(from: configuration.bundle)
    }

    /// Verifies `bytes` as a new bundle and swaps it in. On failure the
    /// loaded bundle stays in service.
    public func reload(bytes: [UInt8]) throws(SecretKernelError) {
        try reload(from: .bytes(bytes))
    }

    private func reload(from source: BundleSource) throws(SecretKernelError) {
        try reloads.withLock { _ throws(SecretKernelError) in
            let fresh: Snapshot
            do throws(SecretKernelError) {
                // The served bundle's history: a reload never goes back on it.
                fresh = try Self.load(source, configuration, extending: current.read { $0.history }, remembering: true)
            } catch {
                let failures = counters.withLock { counters in
                    counters.failures += 1
                    return counters.failures
                }
                configuration.logger.error(
                    "secret bundle reload refused; still serving the loaded bundle: \(error.message)",
                    metadata: ["bundle": "\(source)", "reload_failures": "\(failures)"])
                throw error
            }
            let previous = current.replace(with: fresh)
            counters.withLock { $0.reloads += 1 }
            var metadata = Self.loadMetadata(fresh)
            metadata["previous"] = "\(previous.digest.prefix(12))"
            configuration.logger.info("secret bundle reloaded", metadata: metadata)
            Self.logFailures(fresh, configuration.logger)
        }
    }

    /// Whether the bundle in service is byte for byte the file at `path`
    /// now (its SHA-256): a watcher that starts after the load asks this
    /// first, so a change made in between is not missed.
    public func isServing(contentsOf path: String) -> Bool {
        guard let bytes = FileBytes.read(atPath: path) else { return false }
        return Digest.sha256Hex(bytes) == current.read { $0.digest }
    }

    // MARK: Without blocking a concurrency thread

    /// ``init(_:)`` off Swift concurrency's cooperative threads: a load
    /// spawns gpg and keeps both cores busy for tens of milliseconds, which
    /// must not hold a thread an event loop or request handler needs.
    public static func load(_ configuration: Configuration) async throws(SecretKernelError) -> SecretKernel {
        try await Self.offCooperativeThreads { () throws(SecretKernelError) in try SecretKernel(configuration) }
    }

    /// ``reload()`` off Swift concurrency's cooperative threads. On failure
    /// the loaded bundle stays in service.
    public func reload() async throws(SecretKernelError) {
        try await Self.offCooperativeThreads { () throws(SecretKernelError) in try self.reload() }
    }

    /// ``reload(bytes:)`` off Swift concurrency's cooperative threads.
    public func reload(bytes: [UInt8]) async throws(SecretKernelError) {
        try await Self.offCooperativeThreads { () throws(SecretKernelError) in try self.reload(bytes: bytes) }
    }

    private static func offCooperativeThreads<T: Sendable>(
        _ work: @escaping @Sendable () throws(SecretKernelError) -> T
    ) async throws(SecretKernelError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, SecretKernelError>, Never>) in
            DispatchQueue.global(qos: .userInitiated).async {
                do throws(SecretKernelError) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    // MARK: Introspection

    /// What is loaded: never a value.
    public struct Info: Sendable, Equatable {
        public var environment: String
        public var slots: Int
        /// Values held in memory (servable by this loader when loaded).
        public var values: Int
        public var epochs: Int
        /// Slots whose signed value could not be used (not served; the log says why).
        public var unavailable: Int
        /// Lower-case hex SHA-256 of the bundle bytes.
        public var digest: String
        public var loadedAt: Date
        /// Bundles swapped in by a reload since the kernel was made.
        public var reloads: Int
        /// Reloads refused (the bundle then in service kept serving).
        public var reloadFailures: Int
    }

    public var info: Info {
        let snapshot = current.read { $0 }  // a strong reference: safe to keep past a reload
        return Info(
            environment: snapshot.environment, slots: snapshot.slotCount, values: snapshot.valueCount,
            epochs: snapshot.epochCount, unavailable: snapshot.failures.reduce(0) { $0 + $1.slots },
            digest: snapshot.digest, loadedAt: snapshot.loadedAt,
            reloads: counters.withLock { $0.reloads }, reloadFailures: counters.withLock { $0.failures })
    }

    /// Counts only; values are redacted.
    public var description: String {
        let info = info
        return "SecretKernel(environment: \(info.environment), slots: \(info.slots), values: \(info.values) <redacted>, "
            + "epochs: \(info.epochs), bundle: \(info.digest.prefix(12)))"
    }

    // MARK: Internals

    /// Loads `source` so that it extends `served` (the bundle in service,
    /// if any); with a trusted-state file, under its lock, extending the
    /// history the file holds (as new as any this process served: it is
    /// written after every load) and recording the new one in it.
    private static func load(
        _ source: BundleSource, _ configuration: Configuration, extending served: TrustedHistory?, remembering: Bool
    ) throws(SecretKernelError) -> Snapshot {
        guard let path = configuration.trustedState else { return try load(source, configuration, extending: served) }
        return try TrustedStateFile.withLock(path) { () throws(SecretKernelError) -> Snapshot in
            let snapshot = try load(source, configuration, extending: try TrustedStateFile.read(path) ?? served)
            if remembering, let history = snapshot.history { try TrustedStateFile.write(history, to: path) }
            return snapshot
        }
    }

    private static func load(_ source: BundleSource, _ configuration: Configuration, extending trusted: TrustedHistory?)
        throws(SecretKernelError) -> Snapshot
    {
        defer {
            // A load frees the bundle's bytes and its scan (several times the
            // snapshot's size); glibc keeps such memory, on each thread's
            // arena, unless asked to hand it back.
            secretc_release_free_memory()
        }
        return try read(source, configuration, extending: trusted)
    }

    private static func read(_ source: BundleSource, _ configuration: Configuration, extending trusted: TrustedHistory?)
        throws(SecretKernelError) -> Snapshot
    {
        let start = DispatchTime.now().uptimeNanoseconds
        let bytes: [UInt8]
        let name: String
        switch source {
        case .bytes(let given):
            bytes = given
            name = "bundle"
        case .path(let path):
            name = path
            guard let contents = FileBytes.read(atPath: path) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
                throw SecretKernelError(.unreadable, "\(path) \(reason)")
            }
            bytes = contents
        }
        let read = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let snapshot = try Loader.load(bytes, name: name, configuration, extending: trusted)
        snapshot.phases.insert(("read", read), at: 0)
        return snapshot
    }

    /// What one log line says of a load: each step's milliseconds (read,
    /// scan, checks, open, build) and counts. Never a value.
    private static func loadMetadata(_ snapshot: Snapshot) -> Logger.Metadata {
        var metadata: Logger.Metadata = [:]
        for (phase, milliseconds) in snapshot.phases { metadata["\(phase)_ms"] = "\(Self.rounded(milliseconds))" }
        metadata.merge(
            ["environment": "\(snapshot.environment)", "slots": "\(snapshot.slotCount)",
             "values": "\(snapshot.valueCount)", "epochs": "\(snapshot.epochCount)",
             "digest": "\(snapshot.digest.prefix(12))"]) { $1 }
        if !snapshot.failures.isEmpty { metadata["unavailable"] = "\(snapshot.failures.reduce(0) { $0 + $1.slots })" }
        return metadata
    }

    /// One warning per epoch (and reason) whose values are unavailable: who
    /// wrote them, when, how many slots, why. Never a value.
    private static func logFailures(_ snapshot: Snapshot, _ logger: Logger) {
        for failure in snapshot.failures {
            logger.warning(
                "secret values unavailable: a write's values cannot be used and are not served",
                metadata: ["writer": "\(snapshot.epochWriters[failure.epoch])",
                           "written_at": "\(date(snapshot.epochTimes[failure.epoch]).formatted(.iso8601))",
                           "slots": "\(failure.slots)", "reason": "\(failure.detail)"])
        }
    }

    /// Milliseconds to a tenth, for the log.
    private static func rounded(_ milliseconds: Double) -> Double { (milliseconds * 10).rounded() / 10 }

    private func now() -> Int {
        if let clock = configuration.clock { return Int(clock().timeIntervalSince1970) }
        #if os(Linux)
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME_COARSE, &spec)
        return spec.tv_sec
        #else
        return Int(Date().timeIntervalSince1970)
        #endif
    }

    /// Whether `record` holds a value this loader serves now.
    @inline(__always)
    private func servable(_ record: LookupTable.Record) -> Bool {
        let required = LookupTable.hasValue | LookupTable.inScope
        guard record.flags & (required | LookupTable.inactive | LookupTable.unavailable) == required, record.valueLength >= 0 else { return false }
        let expires = record.expires
        return expires == .max || expires > now()
    }

    /// The value a slot serves, or why it serves none.
    @inline(__always)
    private func serve(_ snapshot: Snapshot, owner: String?, _ plugin: String, _ key: String) -> Result<String, Unserved> {
        guard let record = snapshot.table.record(owner: owner, plugin: plugin, key: key) else {
            return .failure(Unserved(reason: .notSet))
        }
        if servable(record) { return .success(String(decoding: record.value, as: UTF8.self)) }
        let flags = record.flags
        return .failure(Unserved(reason: unserved(
            hasValue: flags & LookupTable.hasValue != 0, unavailable: flags & LookupTable.unavailable != 0,
            inactive: flags & LookupTable.inactive != 0, inScope: flags & LookupTable.inScope != 0,
            expires: record.expires) ?? .notSet))
    }

    /// ``serve(_:owner:_:_:)`` of the slot at `position` in canonical order.
    @inline(__always)
    private func serve(_ snapshot: Snapshot, at position: Int) -> Result<String, Unserved> {
        let entry = snapshot.serving[position]
        if let reason = unserved(
            hasValue: entry.hasValue, unavailable: entry.unavailable, inactive: entry.inactive, inScope: entry.inScope,
            expires: entry.expires)
        {
            return .failure(Unserved(reason: reason))
        }
        guard entry.length >= 0 else { return .failure(Unserved(reason: .notSet)) }  // expired at load time: not held
        return .success(String(decoding: snapshot.bytes(entry), as: UTF8.self))
    }

    /// Why a slot with these facts serves no value, in the order the reasons
    /// are reported; nil when none of them applies.
    private func unserved(hasValue: Bool, unavailable: Bool, inactive: Bool, inScope: Bool, expires: Int)
        -> SecretUnavailable.Reason?
    {
        if !hasValue { return .notSet }
        if unavailable { return .unavailable }
        if inactive { return .inactive }
        if !inScope { return .outOfScope(configuration.scope ?? "") }
        if expires != .max, expires <= now() { return .expired(Self.date(expires)) }
        return nil
    }

    private static func date(_ seconds: Int) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }
}

private struct Unserved: Error {
    var reason: SecretUnavailable.Reason
}

/// A served value and where it came from. `description` never shows the value.
public struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let value: String
    public let source: SecretSource

    public var description: String { "Secret(<redacted>, from \(source))" }
    public var debugDescription: String { description }
}

/// Which step of the resolution served a lookup.
public enum SecretSource: Sendable, Equatable, CustomStringConvertible {
    /// The named user's own slot.
    case userSlot(String)
    /// The deployment-wide slot.
    case deploymentSlot
    /// The environment variable (OSS mode / local development).
    case environmentVariable(String)

    public var description: String {
        switch self {
        case .userSlot(let user): return "user slot (\(user))"
        case .deploymentSlot: return "deployment-wide slot"
        case .environmentVariable(let name): return "environment variable \(name)"
        }
    }
}
