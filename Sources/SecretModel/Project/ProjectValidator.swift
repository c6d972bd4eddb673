import Foundation
import SecretCore
import GPG

/// Loads a project and checks everything that can be checked without a
/// secret key, collecting every problem instead of stopping at the first.
public struct ProjectValidator {
    /// How early an approaching slot expiry is reported.
    public static let expiryWarningWindow: TimeInterval = 30 * 86_400

    private let now: Date
    private var log = DiagnosticLog()
    private var sources: [String: String] = [:]
    private var parseHadErrors = false

    public init(now: Date = Date()) { self.now = now }

    /// Validates the project whose `secretc.yaml` is at `config`.
    /// - Returns: the project (nil when the declarations could not be read at
    ///   all), every diagnostic found, and the text of every file read.
    public static func load(config: URL, now: Date = Date()) -> Validation {
        var validator = ProjectValidator(now: now)
        let project = validator.run(config)
        return Validation(project: project, log: validator.log, sources: validator.sources)
    }

    private mutating func run(_ config: URL) -> Project? {
        guard let file = SourceFile.read(config, what: "declarations", from: nil, into: &log) else { return nil }
        sources[file.displayPath] = file.text
        var parser = DeclarationsParser(file: file)
        let (parsed, parseLog) = parser.parse()
        log.append(contentsOf: parseLog)
        parseHadErrors = parseLog.hasErrors
        guard let declarations = parsed else { return nil }

        // gpg reads the key files in other processes while manifests load and slots expand.
        let inspection = BackgroundKeyInspection(KeyInspector(now: now), declarations.keys)
        let manifests = loadManifests(declarations)
        checkEnvironmentVariables(declarations, manifests)
        let slots = expandSlots(declarations, manifests)
        checkQuotas(declarations, slots)
        let (keys, keyLog) = inspection.wait()
        log.append(contentsOf: keyLog)
        checkPrincipals(declarations, keys)
        checkEnvironments(declarations, keys)
        return Project(declarations: declarations, manifests: manifests, keys: keys, slots: slots)
    }

    // MARK: Principals

    private mutating func checkPrincipals(_ declarations: Declarations, _ keys: [String: PrincipalKey]) {
        let known = Set(declarations.keys.map(\.name.value))
        let names = declarations.keys.map(\.name.value)
        var used = Set<String>()

        if declarations.admins.isEmpty {
            log.error(.invalidInput, "no admins declared; an admin key must sign the policy", at: declarations.file.start)
        }
        var seenAdmins = Set<String>()
        for admin in declarations.admins {
            used.insert(admin.value)
            if !seenAdmins.insert(admin.value).inserted {
                log.warning(.conflict, "admin '\(admin.value)' is listed twice", at: admin.location)
            }
            requireKey(admin, known: known, names: names, keys: keys, role: "admin", needsSign: true)
        }
        for user in declarations.users {
            guard let key = user.key else { continue }
            used.insert(key.value)
            requireKey(key, known: known, names: names, keys: keys, role: "user '\(user.id.value)'", needsSign: true)
        }
        for environment in declarations.environments {
            used.formUnion((environment.recipients ?? []).map(\.value))
        }
        // A reference dropped by a parse error would make a used key look unused.
        let referencesComplete = !parseHadErrors

        var byFingerprint: [String: String] = [:]
        for declaration in declarations.keys {
            let name = declaration.name.value
            if referencesComplete && !used.contains(name) {
                log.warning(.unused, "key '\(name)' is not used by any admin, user or environment", at: declaration.name.location)
            }
            guard let fingerprint = keys[name]?.info.fingerprint else { continue }
            if let other = byFingerprint[fingerprint] {
                log.warning(.conflict, "key '\(name)' is the same key as '\(other)' (\(fingerprint))", at: declaration.name.location)
            } else {
                byFingerprint[fingerprint] = name
            }
        }
    }

    /// A reference to a key name: it must be declared, and able to do its job.
    private mutating func requireKey(
        _ reference: Located<String>, known: Set<String>, names: [String], keys: [String: PrincipalKey],
        role: String, needsSign: Bool
    ) {
        guard known.contains(reference.value) else {
            log.error(
                .notFound,
                "\(role) names undeclared key '\(reference.value)'\(Suggestion.hint(for: reference.value, in: names))",
                at: reference.location)
            return
        }
        guard let key = keys[reference.value] else { return }  // already reported where the key is declared
        if needsSign && !key.info.canSign {
            log.error(
                .keyUnusable, "key '\(reference.value)' of \(role) cannot sign (it has no valid signing key)",
                at: reference.location)
        }
        if !needsSign && !key.info.canEncrypt {
            log.error(
                .keyUnusable, "key '\(reference.value)' of \(role) cannot encrypt (it has no valid encryption subkey)",
                at: reference.location)
        }
    }

    // MARK: Environments

    private mutating func checkEnvironments(_ declarations: Declarations, _ keys: [String: PrincipalKey]) {
        if declarations.environments.isEmpty {
            log.error(.invalidInput, "no environments declared; declare at least one under 'environments'", at: declarations.file.start)
        }
        let known = Set(declarations.keys.map(\.name.value))
        let names = declarations.keys.map(\.name.value)
        var bundles: [String: String] = [:]
        for environment in declarations.environments {
            let name = environment.name.value
            if environment.recipients?.isEmpty == true {
                log.error(
                    .invalidInput, "environment '\(name)' has no recipients; nothing could decrypt its bundle",
                    at: environment.name.location)
            }
            for recipient in environment.recipients ?? [] {
                requireKey(
                    recipient, known: known, names: names, keys: keys, role: "environment '\(name)'", needsSign: false)
            }
            let bundle = environment.bundleURL.standardizedFileURL.path
            if let other = bundles[bundle] {
                log.error(
                    .conflict, "environment '\(name)' uses the same bundle file as '\(other)'",
                    at: environment.bundlePath.location)
            } else {
                bundles[bundle] = name
            }
        }
    }

    // MARK: Plugins

    private mutating func loadManifests(_ declarations: Declarations) -> [String: Manifest] {
        var manifests: [String: Manifest] = [:]
        for plugin in declarations.plugins {
            guard let file = SourceFile.read(
                plugin.manifestURL, what: "manifest", named: plugin.manifestPath.value,
                from: plugin.manifestPath.location, into: &log)
            else { continue }
            sources[file.displayPath] = file.text
            var parser = ManifestParser(file: file)
            let (manifest, manifestLog) = parser.parse()
            log.append(contentsOf: manifestLog)
            guard let manifest else { continue }
            if manifest.slug.value != plugin.slug.value {
                log.error(
                    .conflict,
                    "manifest slug '\(manifest.slug.value)' does not match the plugin's declared slug '\(plugin.slug.value)'",
                    at: manifest.slug.location)
            }
            manifests[plugin.slug.value] = manifest
        }
        return manifests
    }

    /// Two secrets that would land in the same environment variable cannot both be served.
    private mutating func checkEnvironmentVariables(_ declarations: Declarations, _ manifests: [String: Manifest]) {
        var owners: [String: String] = [:]
        for plugin in declarations.plugins {
            guard let manifest = manifests[plugin.slug.value] else { continue }
            for secret in manifest.secrets {
                let variable = secret.environmentVariable(plugin: plugin.slug.value)
                let owner = "\(plugin.slug.value).\(secret.key.value)"
                if let reason = ReservedVariable.reason(variable) {
                    log.error(
                        .forbidden,
                        "environment variable of \(owner): \(reason)"
                            + (secret.env == nil ? " (it is the default name; give the key an `env` of its own)" : ""),
                        at: secret.env?.location ?? secret.key.location)
                } else if let other = owners[variable] {
                    log.error(
                        .conflict, "environment variable '\(variable)' of \(owner) is also used by \(other)",
                        at: secret.env?.location ?? secret.key.location)
                } else {
                    owners[variable] = owner
                }
            }
        }
    }

    // MARK: Slots

    private mutating func expandSlots(_ declarations: Declarations, _ manifests: [String: Manifest]) -> [ResolvedSlot] {
        let users = Set(declarations.users.map(\.id.value))
        let userNames = declarations.users.map(\.id.value)
        let plugins = Set(declarations.plugins.map(\.slug.value))
        let pluginNames = declarations.plugins.map(\.slug.value)
        let environmentNames = declarations.environments.map(\.name.value)
        let environmentSet = Set(environmentNames)

        // Slots are told apart by small integers, not four hashed strings: this
        // loop runs once per slot, 100,000 times and more in large projects.
        let environmentIndex = Dictionary(environmentNames.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        let userIndex = Dictionary(userNames.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        let pluginIndex = Dictionary(pluginNames.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { a, _ in a })
        var slots: [ResolvedSlot] = []
        slots.reserveCapacity(declarations.slots.count * 3 * max(1, environmentNames.count))
        var firstDeclared: [SlotID: SourceLocation] = [:]
        firstDeclared.reserveCapacity(slots.capacity)
        for entry in declarations.slots {
            let plugin = entry.plugin.value
            guard plugins.contains(plugin) else {
                log.error(
                    .notFound, "slot names undeclared plugin '\(plugin)'\(Suggestion.hint(for: plugin, in: pluginNames))",
                    at: entry.plugin.location)
                continue
            }
            if let user = entry.user, !users.contains(user.value) {
                log.error(
                    .notFound, "slot names undeclared user '\(user.value)'\(Suggestion.hint(for: user.value, in: userNames))",
                    at: user.location)
                continue
            }
            var environments: [String] = []
            for environment in entry.environments ?? [] {
                if environmentSet.contains(environment.value) {
                    environments.append(environment.value)
                } else {
                    log.error(
                        .notFound,
                        "slot names undeclared environment '\(environment.value)'"
                            + Suggestion.hint(for: environment.value, in: environmentNames),
                        at: environment.location)
                }
            }
            if entry.environments == nil { environments = environmentNames }
            guard let manifest = manifests[plugin] else { continue }  // its problem is reported at the manifest

            // Every key the manifest declares for this kind of owner, unless the entry names them.
            let keys = entry.keys ?? manifest.secrets.filter { $0.allows(user: entry.user?.value) }
                .map { SlotKeyDeclaration(key: $0.key, metadata: .init()) }
            if entry.keys != nil {
                let named = Set(keys.map(\.key.value))
                for secret in manifest.secrets
                where secret.required && secret.allows(user: entry.user?.value) && !named.contains(secret.key.value) {
                    log.warning(
                        .incomplete,
                        "required key '\(secret.key.value)' of plugin '\(plugin)' is not declared for \(ownerName(entry))",
                        at: entry.location)
                }
            }
            let owner = entry.user.flatMap { userIndex[$0.value] } ?? -1
            for slotKey in keys {
                guard let keyIndex = manifest.secrets.firstIndex(where: { $0.key.value == slotKey.key.value }) else {
                    log.error(
                        .notFound,
                        "plugin '\(plugin)' declares no secret '\(slotKey.key.value)'"
                            + Suggestion.hint(for: slotKey.key.value, in: manifest.secrets.map(\.key.value)),
                        at: slotKey.key.location)
                    continue
                }
                if let owner = manifest.secrets[keyIndex].owner, !manifest.secrets[keyIndex].allows(user: entry.user?.value) {
                    log.error(
                        .invalidInput,
                        "secret '\(slotKey.key.value)' of plugin '\(plugin)' is "
                            + (owner == .user ? "per user only" : "deployment-wide only")
                            + " (its manifest says \"owner\": \"\(owner.rawValue)\"), not for \(ownerName(entry))",
                        at: slotKey.key.location)
                    continue
                }
                // Keys taken from the manifest are located at the slot entry that implied them.
                let keyLocation = entry.keys == nil ? entry.location : slotKey.key.location
                var metadata = slotKey.metadata
                if metadata.scopes == nil { metadata.scopes = manifest.secrets[keyIndex].scopes }
                checkExpiry(metadata, of: slotKey.key.value, for: entry)
                for environment in environments {
                    let slot = ResolvedSlot(
                        environment: environment, user: entry.user?.value, plugin: plugin, key: slotKey.key.value,
                        metadata: metadata, declaredAt: entry.location)
                    let id = SlotID(
                        environment: environmentIndex[environment] ?? -1, user: owner,
                        plugin: pluginIndex[plugin] ?? -1, key: Int32(keyIndex))
                    if let first = firstDeclared[id] {
                        log.error(
                            .conflict, "slot \(slot.path) is declared twice; the first is at line \(first.line)",
                            at: keyLocation)
                        continue
                    }
                    firstDeclared[id] = keyLocation
                    slots.append(slot)
                }
            }
        }
        return slots
    }

    private mutating func checkExpiry(_ metadata: SlotMetadata, of key: String, for entry: SlotDeclaration) {
        guard let expires = metadata.expires, let at = metadata.expiresLocation else { return }
        if expires <= now {
            log.error(.expired, "slot '\(key)' of \(ownerName(entry)) expired on \(ExpiryDate.format(expires))", at: at)
        } else if expires.timeIntervalSince(now) < Self.expiryWarningWindow {
            log.warning(.expired, "slot '\(key)' of \(ownerName(entry)) expires on \(ExpiryDate.format(expires))", at: at)
        }
    }

    private func ownerName(_ entry: SlotDeclaration) -> String {
        entry.user.map { "user '\($0.value)'" } ?? "the deployment"
    }

    private mutating func checkQuotas(_ declarations: Declarations, _ slots: [ResolvedSlot]) {
        let counts = Project.slotCounts(slots)
        for environment in declarations.environments {
            guard let quota = environment.quota else { continue }
            let used = counts[environment.name.value] ?? 0
            if used > quota.value {
                log.error(
                    .quotaExceeded,
                    "environment '\(environment.name.value)' declares \(used) slots, over its quota of \(quota.value)",
                    at: quota.location)
            }
        }
    }
}

/// What ``ProjectValidator/load(config:now:)`` found.
public struct Validation: Sendable {
    /// nil when the declarations could not be read at all.
    public var project: Project?
    public var log: DiagnosticLog
    /// File contents by display path, for quoting lines in diagnostics.
    public var sources: [String: String]
}

/// Key inspection running on another thread until ``wait()``.
private final class BackgroundKeyInspection: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: ([String: PrincipalKey], DiagnosticLog) = ([:], DiagnosticLog())

    init(_ inspector: KeyInspector, _ declarations: [KeyDeclaration]) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            var log = DiagnosticLog()
            let keys = inspector.inspect(declarations, into: &log)
            result = (keys, log)
            done.signal()
        }
    }

    /// The keys and the diagnostics about them; call once.
    func wait() -> ([String: PrincipalKey], DiagnosticLog) {
        done.wait()
        return result
    }
}

/// A slot's identity as indexes into the declared environments, users
/// (-1: deployment-wide), plugins and the plugin's manifest keys.
private struct SlotID: Hashable {
    var environment: Int32
    var user: Int32
    var plugin: Int32
    var key: Int32
}
