import Foundation
import GPG

/// A validated view of a secretc project: declarations, every manifest, the
/// keys that could be read, and every slot the declarations expand to.
public struct Project: Sendable {
    public var declarations: Declarations
    /// Manifests by plugin slug (only those that parsed).
    public var manifests: [String: Manifest]
    /// Keys by key name (only those gpg could read).
    public var keys: [String: PrincipalKey]
    /// Every declared slot, in declaration order.
    public var slots: [ResolvedSlot]

    /// The configuration file's name, looked for upward from the working directory.
    public static let configName = "secretc.yaml"

    /// Finds `secretc.yaml` in `directory` or the nearest folder above it.
    public static func locate(from directory: URL) -> URL? {
        var current = directory.standardizedFileURL
        while true {
            let candidate = current.appendingPathComponent(configName)
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
            let parent = current.deletingLastPathComponent()
            if parent.path == current.path { return nil }
            current = parent
        }
    }

    /// The name under which `fingerprint`'s key is declared, if any.
    public func keyName(for fingerprint: String) -> String? {
        keys.first { $0.value.info.fingerprint == fingerprint }?.key
    }

    /// How many slots each environment declares.
    public var slotCounts: [String: Int] { Self.slotCounts(slots) }

    static func slotCounts(_ slots: [ResolvedSlot]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for slot in slots { counts[slot.environment, default: 0] += 1 }
        return counts
    }

    /// The environment named `name`, if declared.
    public func environment(_ name: String) -> EnvironmentDeclaration? {
        declarations.environments.first { $0.name.value == name }
    }
}

/// A principal's public key as read from the project's key file.
public struct PrincipalKey: Sendable {
    public var name: String
    public var url: URL
    public var info: KeyInfo
    /// The file's bytes, for importing into a keyring later.
    public var data: [UInt8]
}

/// One slot: the unit that holds one value.
public struct ResolvedSlot: Sendable, Hashable {
    public var environment: String
    /// nil for a deployment-wide slot.
    public var user: String?
    public var plugin: String
    public var key: String
    public var metadata: SlotMetadata
    /// Where the slot entry that declares it starts.
    public var declaredAt: SourceLocation

    /// `production/alice/shopify/STORE_DOMAIN`, `production/-/github/TOKEN` when deployment-wide.
    public var path: String { "\(environment)/\(user ?? "-")/\(plugin)/\(key)" }
}
