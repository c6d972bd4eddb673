import Foundation
import SecretCore

/// A plugin's `manifest.json`: its declared secret schema.
public struct Manifest: Sendable {
    public var file: SourceFile
    public var slug: Located<String>
    public var name: String?
    public var secrets: [SecretSpec]

    /// The spec for `key`, if declared.
    public func secret(_ key: String) -> SecretSpec? { secrets.first { $0.key.value == key } }
}

/// One entry of a manifest's `secrets`: the seeds' `key`, `label`,
/// `placeholder`, `help`, plus `required`, `pattern`, `env`, `scopes`, `owner`.
public struct SecretSpec: Sendable {
    /// Whose slots may hold a key: `owner` in a manifest.
    public enum Owner: String, Sendable {
        /// Only users' slots (a personal token): a deployment-wide slot leaves it out.
        case user
        /// Only the deployment-wide slot (an app installation's id).
        case deployment
    }

    public var key: Located<String>
    public var label: String
    public var placeholder: String?
    public var help: String?
    /// A required key should have a value in every slot that declares the plugin.
    public var required: Bool
    /// A regular expression (ICU syntax, matched against the whole value).
    public var pattern: Located<String>?
    /// The environment variable for the fallback and for `secretc exec`.
    public var env: Located<String>?
    /// Services that may read this key by default.
    public var scopes: [String]?
    /// Whose slots may hold it; nil: both.
    public var owner: Owner? = nil

    /// True when a slot of `user` (nil: deployment-wide) may hold this key.
    public func allows(user: String?) -> Bool {
        switch owner {
        case nil: true
        case .user: user != nil
        case .deployment: user == nil
        }
    }

    /// `env`, else the documented default derived from slug and key.
    public func environmentVariable(plugin: String) -> String {
        env?.value ?? defaultEnvironmentVariable(plugin: plugin, key: key.value)
    }

    /// True when `value` matches ``pattern`` as a whole (or there is none).
    public func accepts(_ value: String) -> Bool {
        guard let pattern = pattern?.value else { return true }
        return ValuePattern(pattern)?.matches(value) ?? false
    }
}

extension Manifest {
    /// Parses a manifest's text; nil when it has errors (``ProjectValidator``
    /// reports them).
    public static func parse(_ file: SourceFile) -> Manifest? {
        parse(file, validated: false)
    }

    /// Parses a manifest whose bytes passed ``parse(_:)`` before (they hash
    /// as recorded): its strict JSON pass and pattern compilation are skipped.
    public static func parse(validated file: SourceFile) -> Manifest? {
        parse(file, validated: true)
    }

    private static func parse(_ file: SourceFile, validated: Bool) -> Manifest? {
        var parser = ManifestParser(file: file, validated: validated)
        let (manifest, log) = parser.parse()
        return log.hasErrors ? nil : manifest
    }
}
