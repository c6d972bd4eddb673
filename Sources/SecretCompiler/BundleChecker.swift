import BundleFormat
import BundleSeal
import Foundation
import GPG
import SecretCore
import SecretModel

/// What `check` and `status` learn from the bundles, with public keys only:
/// every signature, authorization and claim, and whether each bundle still
/// matches the declarations.
public struct BundleChecker {
    public let project: Project
    public var now: Date
    /// The revision each bundle must extend (`check --base`), if any.
    public var base: BaseRevision?

    public init(project: Project, now: Date = Date(), base: BaseRevision? = nil) {
        self.project = project
        self.now = now
        self.base = base
    }

    /// A verified bundle per environment that has one and passed.
    public struct Result: Sendable {
        public var log = DiagnosticLog()
        public var verified: [String: BundleVerifier.Verified] = [:]
        /// Bundle texts by display path, for quoting lines.
        public var sources: [String: String] = [:]
    }

    public func check() -> Result {
        var result = Result()
        for environment in project.declarations.environments {
            check(environment, into: &result)
        }
        if let base { checkAgainst(base, into: &result) }
        checkMergeDriver(into: &result)
        return result
    }

    /// `.gitattributes` naming the `secretc` merge driver or diff textconv
    /// in a clone where git does not know it: git would then merge bundles
    /// as text, or show their diffs as base64.
    private func checkMergeDriver(into result: inout Result) {
        let root = project.declarations.file.url.deletingLastPathComponent()
        let attributes = root.appendingPathComponent(".gitattributes")
        guard let text = try? String(contentsOf: attributes, encoding: .utf8) else { return }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let named = [
            ("merge=secretc", "merge.secretc.driver", "the merge driver 'secretc'", "bundles merge as text"),
            ("diff=secretc", "diff.secretc.textconv", "the diff textconv 'secretc'", "`git diff` shows bundles as base64"),
        ].compactMap { attribute, key, what, effect in
            lines.firstIndex { $0.split(separator: " ").contains(Substring(attribute)) }.map { ($0, key, what, effect) }
        }
        guard !named.isEmpty, BaseRevision.git(["rev-parse", "--is-inside-work-tree"], in: root.path) != nil else { return }
        for (number, key, what, effect) in named where BaseRevision.git(["config", "--get", key], in: root.path) == nil {
            result.log.warning(
                .notFound,
                "this names \(what), which git does not know in this clone, so \(effect); run: secretc init --git",
                at: SourceLocation(file: SourceFile.displayPath(for: attributes), line: number + 1, column: 1))
        }
    }

    /// The rollback rule for every bundle the base revision's declarations
    /// had, found by environment (so a moved bundle is followed, and a bundle
    /// whose environment was dropped from secretc.yaml is still compared
    /// while the file exists); a bundle that is gone while its environment
    /// is still declared is an error.
    private func checkAgainst(_ base: BaseRevision, into result: inout Result) {
        let config = project.declarations.file
        let configAt = SourceLocation(file: config.displayPath, line: 1, column: 1)
        let baseText: [UInt8]?
        do throws(CompilerError) {
            baseText = try base.contents(of: config.url)
        } catch {
            result.log.error(.notFound, error.message, at: configAt)
            return
        }
        guard let baseText else { return }  // no declarations at the base: nothing to extend
        guard let declared = Declarations.parse(SourceFile(url: config.url, text: String(decoding: baseText, as: UTF8.self))) else {
            result.log.error(.rollback, "\(config.displayPath) at \(base.name) cannot be read: nothing to compare with", at: configAt)
            return
        }
        for environment in declared.environments {
            let old: [UInt8]?
            do throws(CompilerError) {
                old = try base.contents(of: environment.bundleURL)
            } catch {
                result.log.error(.notFound, error.message, at: configAt)
                continue
            }
            guard let old else { continue }  // no bundle there yet at the base
            let current = project.declarations.environments.first { $0.name.value == environment.name.value }
            let file = BundleFile(url: current?.bundleURL ?? environment.bundleURL)
            guard let bytes = try? file.read() else {
                if let current {
                    result.log.error(
                        .rollback,
                        "the bundle of environment '\(environment.name.value)' existed at \(base.name) and is gone: "
                            + "a later change could put back any older version unnoticed",
                        at: current.bundlePath.location)
                }
                continue
            }
            let lines = quoted(file, bytes, into: &result)
            guard let bundle = try? SecretBundle(parsing: bytes) else { continue }  // reported by the checks above
            checkExtends(base, old, bundle, file: file, lines: lines, into: &result)
        }
        // A bundle the base does not have, though its file was committed
        // before (its environment dropped, or the file deleted, then put
        // back): it must extend its last committed version, or dropping an
        // environment in one change and putting back an old bundle in the
        // next would roll it back unseen.
        let compared = Set(declared.environments.map(\.name.value))
        for environment in project.declarations.environments where !compared.contains(environment.name.value) {
            let file = BundleFile(url: environment.bundleURL)
            let previous: (label: String, bytes: [UInt8])
            if let atBase = (try? base.contents(of: environment.bundleURL)) ?? nil {
                previous = ("its version at \(base.name)", atBase)
            } else if let (commit, bytes) = base.lastVersion(of: environment.bundleURL) {
                previous = ("its last committed version (\(commit), before its environment or file was dropped)", bytes)
            } else {
                continue  // a new environment
            }
            guard let bytes = try? file.read(), let bundle = try? SecretBundle(parsing: bytes) else { continue }
            let lines = quoted(file, bytes, into: &result)
            checkExtends(base, previous.bytes, bundle, file: file, lines: lines, label: previous.label, into: &result)
        }
    }

    /// Keeps `bytes` as `file`'s text, for diagnostics to quote; its lines.
    private func quoted(_ file: BundleFile, _ bytes: [UInt8], into result: inout Result) -> [Substring] {
        let text = String(decoding: bytes, as: UTF8.self)
        result.sources[file.displayPath] = text
        return text.split(separator: "\n", omittingEmptySubsequences: false)
    }

    private func check(_ environment: EnvironmentDeclaration, into result: inout Result) {
        let name = environment.name.value
        guard let compiler = try? Compiler(project: project, environment: name) else { return }
        let file = compiler.file
        let bytes: [UInt8]?
        do throws(CompilerError) {
            bytes = try file.read()
        } catch {
            result.log.error(.notFound, error.message, at: environment.bundlePath.location)
            return
        }
        guard let bytes else {
            let count = project.slotCounts[name] ?? 0
            result.log.warning(
                .notFound,
                "bundle '\(environment.bundlePath.value)' does not exist yet: its \(count) slots are pending "
                    + "(an admin runs `secretc compile --env \(name)`)",
                at: environment.bundlePath.location)
            return
        }
        // A merge the driver could not make: both sides, between markers.
        if bytes.starts(with: Array("<<<<<<< ".utf8)) {
            let first = String(decoding: bytes.prefix { $0 != 10 }.prefix(2_000), as: UTF8.self)
            let why = first.hasPrefix("<<<<<<< secretc merge conflict: ") ? String(first.dropFirst(32)) : "a git merge conflict"
            result.log.error(
                .conflict,
                "the bundle has an unresolved merge conflict: \(why); take one side with `git checkout --ours \(environment.bundlePath.value)` "
                    + "(or --theirs), then redo the other side's writes with `secretc set` (or `secretc compile` if a side re-sealed)",
                at: SourceLocation(file: file.displayPath, line: 1, column: 1))
            return
        }
        let lines = quoted(file, bytes, into: &result)
        func at(_ line: Int) -> SourceLocation { SourceLocation(file: file.displayPath, line: max(1, line), column: 1) }
        func line(startingWith prefix: String) -> Int {
            (lines.firstIndex { $0.hasPrefix(prefix) } ?? 0) + 1
        }

        let bundle: SecretBundle
        do throws(BundleFormatError) {
            bundle = try SecretBundle(parsing: bytes)
        } catch {
            switch error {
            case .malformed(let number, let reason): result.log.error(.invalidInput, reason, at: at(number))
            case .unsupportedVersion: result.log.error(.unsupported, "\(error)", at: at(1))
            }
            return
        }
        let verified: BundleVerifier.Verified
        do throws(BundleSealError) {
            verified = try BundleVerifier(trustedAdmins: compiler.declaredAdmins).verify(bundle)
        } catch {
            let location: SourceLocation
            switch error {
            case .untrustedPolicy: location = at(line(startingWith: "policy "))
            case .badEpochSignature(let epoch, _), .unauthorizedWriter(let epoch, _, _), .history(let epoch, _):
                location = at(lines.firstIndex { $0.hasPrefix("epoch ") && $0.contains(" \(epoch) ") }.map { $0 + 1 } ?? 1)
            case .inconsistent(let slot, _):
                let parts = slot.split(separator: "/")
                location = at(parts.count == 3 ? line(startingWith: "slot \(parts[0]) \(parts[1]) \(parts[2]) ") : 1)
            case .badKey(let fingerprint): location = at(line(startingWith: "key \(fingerprint) "))
            default: location = at(1)
            }
            result.log.error(.conflict, "the bundle cannot be trusted: \(error)", at: location)
            return
        }
        result.verified[name] = verified
        checkDataKeys(bundle, environment, lines, at, into: &result)
        let clock = Int(now.timeIntervalSince1970)
        // Only the write that ran ahead is reported: the writes after it take
        // its time (inherited from their parents) and are not at fault.
        var times: [String: Int] = [:]
        for epoch in bundle.epochs { times[epoch.id] = epoch.time }
        let inherits = { (epoch: Epoch) -> Bool in
            guard case .after(let parents) = epoch.parents else { return false }
            return parents.compactMap { times[$0] }.max() == epoch.time
        }
        for epoch in bundle.epochs where epoch.time > clock + 300 && !inherits(epoch) {
            let line = at((lines.firstIndex { $0.hasPrefix("epoch ") && $0.contains(" \(epoch.id) ") } ?? 0) + 1)
            let writer = bundle.userNames[epoch.writer] ?? project.keyName(for: epoch.writer) ?? epoch.writer
            result.log.error(
                .conflict,
                "the write \(epoch.id) by \(writer) is dated \(Date(timeIntervalSince1970: TimeInterval(epoch.time)).formatted(.iso8601)), "
                    + "ahead of this clock; later writes take its time, and an admin re-seals the bundle to date it by the clock again (`secretc compile`)",
                at: line)
        }

        if let skeleton = try? EnvironmentPolicy.skeleton(project, environment),
           !EnvironmentPolicy.matches(bundle, skeleton) {
            let reasons = EnvironmentPolicy.reSealReasons(bundle, skeleton) { project.keyName(for: $0) ?? $0 }
            let needs = reasons.isEmpty
                ? "an admin re-signs the policy with `secretc compile --env \(name)` (an admin's key only; no value is read)"
                : "an admin re-seals it with `secretc compile --env \(name)`, which needs a recipient's secret key: "
                    + reasons.joined(separator: "; ")
            result.log.error(
                .conflict,
                "the declarations changed since this bundle was compiled (\(difference(bundle, skeleton))); \(needs)",
                at: at(line(startingWith: "policy ")))
        }
        let values = Dictionary(bundle.slots.map { ($0.slot, $0.value != nil) }, uniquingKeysWith: { a, _ in a })
        for slot in project.slots where slot.environment == name {
            guard project.manifests[slot.plugin]?.secret(slot.key)?.required == true else { continue }
            if values[SlotKey(owner: slot.user, plugin: slot.plugin, key: slot.key)] != true {
                result.log.warning(
                    .incomplete, "required slot \(slot.path) has no value", at: slot.declaredAt)
            }
        }
    }

    /// Each epoch's data key must be encrypted to every declared recipient
    /// and to nobody else, read from the message's packets without a key:
    /// what loaders would otherwise find only at boot (a write they cannot
    /// open is unavailable there).
    private func checkDataKeys(
        _ bundle: SecretBundle, _ environment: EnvironmentDeclaration, _ lines: [Substring], _ at: (Int) -> SourceLocation,
        into result: inout Result
    ) {
        // The rule loaders apply, with the keys the policy lists (a policy
        // that lists none for a recipient is reported with the signatures).
        guard let recipients = try? RecipientKeys(bundle) else { return }
        let names = bundle.userNames
        func recipientName(_ text: String) -> String {
            // Fingerprints in the rule's words become the declared names.
            var text = text
            for recipient in environment.recipients ?? [] {
                if let fingerprint = project.keys[recipient.value]?.info.fingerprint {
                    text = text.replacingOccurrences(of: "recipient \(fingerprint)", with: "recipient '\(recipient.value)'")
                }
            }
            return text
        }
        for epoch in bundle.epochs {
            let line = at((lines.firstIndex { $0.hasPrefix("epoch ") && $0.contains(" \(epoch.id) ") } ?? 0) + 1)
            let write = "the write \(epoch.id) by \(names[epoch.writer] ?? project.keyName(for: epoch.writer) ?? epoch.writer)"
            guard epoch.dataKeyMessage.count <= BundleOpener.maximumDataKeyMessage else {
                result.log.error(
                    .conflict, "\(write): its data-key message is larger than \(BundleOpener.maximumDataKeyMessage) bytes; "
                        + "readers refuse it unread", at: line)
                continue
            }
            let envelope: DataKeyEnvelope
            do throws(DataKeyEnvelope.Problem) {
                envelope = try DataKeyEnvelope(parsing: epoch.dataKeyMessage)
            } catch {
                result.log.error(.conflict, "\(write): \(error); its values cannot be read", at: line)
                continue
            }
            if let problem = recipients.problem(envelope) {
                let declared = (environment.recipients ?? []).map(\.value).joined(separator: ", ")
                result.log.error(
                    .conflict, "\(write): \(recipientName(problem)) (declared recipients: \(declared))", at: line)
            }
        }
    }

    /// The rollback rule against `base` (docs/bundle-format.md §6a): the
    /// bundle at the base revision must be extended by this one.
    private func checkExtends(
        _ base: BaseRevision, _ old: [UInt8], _ bundle: SecretBundle, file: BundleFile, lines: [Substring],
        label: String? = nil, into result: inout Result
    ) {
        func at(_ line: Int) -> SourceLocation { SourceLocation(file: file.displayPath, line: max(1, line), column: 1) }
        let label = label ?? "its version at \(base.name)"
        guard let parsed = try? SecretBundle(parsing: old), let trusted = TrustedHistory(parsed) else {
            result.log.error(.invalidInput, "\(label) is not a valid signed bundle: nothing to compare with", at: at(1))
            return
        }
        guard parsed.formatVersion == SecretBundle.version else { return }  // an upgrade re-seals everything
        guard let current = TrustedHistory(bundle) else { return }  // unsigned: refused above
        do throws(BundleSealError) {
            let names = parsed.userNames
            let name = { (fingerprint: String) in names[fingerprint] ?? project.keyName(for: fingerprint) ?? fingerprint }
            do throws(BundleSealError) {
                try trusted.checkExtended(by: current, naming: name)
            } catch {
                // Re-seals in between dropped what named the base's epochs:
                // follow the signed links of every version committed since.
                let between = Self.verifiedVersions(base.laterVersions(of: file.url).reversed(), from: parsed.admins)
                guard !between.isEmpty else { throw error }
                try trusted.checkExtended(by: current, through: between, naming: name)
            }
        } catch {
            let why: String
            if case .rollback(let reason) = error { why = reason } else { why = "\(error)" }
            // The replaced epoch's line, else where the history or the policy is.
            let named = why.hasPrefix("the write ") ? why.split(separator: " ")[2] : ""
            let number = lines.firstIndex { $0.hasPrefix("epoch ") && !named.isEmpty && $0.contains(" \(named) ") }
                ?? lines.firstIndex { $0.hasPrefix(named.isEmpty ? "policy " : "epoch ") }
            result.log.error(.rollback, "does not extend \(label): \(why)", at: at((number ?? 0) + 1))
        }
    }

    /// The histories of `versions` (oldest first) whose every signature
    /// verifies under the admins trusted at that step, starting from
    /// `admins` and following each verified policy: a version committed in
    /// between is only a witness when it is signed, never its text alone.
    static func verifiedVersions(_ versions: some Sequence<[UInt8]>, from admins: [String]) -> [TrustedHistory] {
        var trusted = Set(admins)
        var histories: [TrustedHistory] = []
        for bytes in versions {
            guard let scan = try? ScannedBundle(scanning: bytes), scan.header.formatVersion == SecretBundle.version,
                  let history = TrustedHistory(scan)
            else { continue }
            let verified: Bool
            do throws(BundleSealError) {
                if try ScanVerifier.checkSignatures(scan, trustedAdmins: trusted) == nil {
                    _ = try BundleVerifier(trustedAdmins: trusted).verify(scan.materialized())
                }
                verified = true
            } catch {
                verified = false
            }
            guard verified else { continue }
            histories.append(history)
            trusted = Set(history.admins)
        }
        return histories
    }

    /// A short account of what differs between a bundle's policy and the declarations.
    private func difference(_ bundle: SecretBundle, _ skeleton: SecretBundle) -> String {
        if Set(bundle.recipients) != Set(skeleton.recipients) { return "recipients differ" }
        if Set(bundle.admins) != Set(skeleton.admins) { return "admins differ" }
        if bundle.users != skeleton.users { return "user keys differ" }
        let have = Set(bundle.slots.map(\.slot))
        let want = Set(skeleton.slots.map(\.slot))
        if let added = want.subtracting(have).min() { return "slot \(added) was declared" }
        if let removed = have.subtracting(want).min() { return "slot \(removed) was removed" }
        if let changed = skeleton.slots.first(where: { line in
            bundle.slots.first { $0.slot == line.slot }?.attributes != line.attributes
        }) {
            return "the metadata of \(changed.slot) changed"
        }
        if let field = skeleton.fields.first(where: { !bundle.fields.contains($0) }) ?? bundle.fields.first(where: {
            !skeleton.fields.contains($0)
        }) {
            return "the manifest of plugin \(VisibleText.escaped(field.plugin)) changed (\(VisibleText.escaped(field.key)))"
        }
        if bundle.keys.keys.contains(where: { !skeleton.keys.keys.contains($0) })
            || skeleton.keys.keys.contains(where: { bundle.keys[$0] == nil })
        {
            return "keys differ (the policy lists its recipients' keys since this version)"
        }
        return "keys differ"
    }

    /// A slot's state for `status`: active, inactive or expired when it holds a
    /// value, with who wrote it and when; nil (pending) otherwise.
    public func state(_ slot: ResolvedSlot, in result: Result) -> SlotStatus? {
        guard let verified = result.verified[slot.environment] else { return nil }
        let key = SlotKey(owner: slot.user, plugin: slot.plugin, key: slot.key)
        guard let line = verified.bundle.slots.first(where: { $0.slot == key }), line.value != nil else { return nil }
        var status = StatusReport.pending(slot)
        status.hasValue = true
        if line.attributes.inactive {
            status.status = .inactive
        } else if let expires = line.attributes.expires, expires <= Int(now.timeIntervalSince1970) {
            status.status = .expired
        } else {
            status.status = .active
        }
        if let epoch = verified.latestWriter[key] {
            status.writtenBy = project.keyName(for: epoch.writer) ?? epoch.writer
            status.updatedAt = Date(timeIntervalSince1970: TimeInterval(epoch.time)).formatted(.iso8601)
        }
        return status
    }
}
