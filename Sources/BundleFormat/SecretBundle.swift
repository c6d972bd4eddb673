/// A parsed bundle (docs/bundle-format.md): the environment's policy, its
/// signed write batches (epochs) and one line per slot. Parsing and writing
/// only; no cryptography happens here.
public struct SecretBundle: Sendable, Equatable {
    /// The format version this code writes and verifies. (Version 1 is
    /// still parsed, so that `compile` can verify and upgrade it; every
    /// reader refuses it.)
    public static let version = 2

    /// The latest time a bundle may hold: 9999-12-31T23:59:59Z.
    public static let latestTime = 253_402_300_799

    /// The version of the text this was parsed from (``version`` when made here).
    public var formatVersion: Int = SecretBundle.version

    public var environment: String
    /// Fingerprints of the keys that can decrypt data keys.
    public var recipients: [String]
    /// Fingerprints of the admins.
    public var admins: [String]
    /// User id → the fingerprint of the key that may write that user's slots.
    public var users: [String: String]
    /// Fingerprint → the user id it writes for (the inverse of ``users``),
    /// to name writers in messages.
    public var userNames: [String: String] {
        var names: [String: String] = [:]
        for (user, fingerprint) in users { names[fingerprint] = user }
        return names
    }
    /// Fingerprint → binary OpenPGP public key, for every signer.
    public var keys: [String: [UInt8]]
    /// The declared schema of each plugin with a slot here: grouped by plugin
    /// (sorted), each plugin's keys in manifest order.
    public var fields: [FieldLine]
    /// The policy's place in its history: grows by one each time an admin
    /// signs a new policy (0 in version 1).
    public var policySerial: Int = 1
    /// The ``PolicyReference/id`` of the policy this one replaces; nil for the first.
    public var previousPolicy: String?
    /// The admin's signature over ``policyPayload()``; nil until signed.
    public var policy: PolicySignature?
    /// Write batches, in canonical order (time, then id).
    public var epochs: [Epoch]
    /// Every declared slot, in canonical order.
    public var slots: [SlotLine]

    public init(
        environment: String, recipients: [String] = [], admins: [String] = [], users: [String: String] = [:],
        keys: [String: [UInt8]] = [:], fields: [FieldLine] = [], policy: PolicySignature? = nil, epochs: [Epoch] = [],
        slots: [SlotLine] = []
    ) {
        self.environment = environment
        self.recipients = recipients
        self.admins = admins
        self.users = users
        self.keys = keys
        self.fields = fields
        self.policy = policy
        self.epochs = epochs
        self.slots = slots
    }
}

/// One declared secret of a plugin's manifest, as a settings form renders it
/// (the seeds' `declared[]` entry), so a loader can answer status without the manifest.
public struct FieldLine: Sendable, Equatable {
    public var plugin: String
    public var key: String
    public var label: String
    public var placeholder: String?
    public var help: String?
    /// The manifest's pattern (a regular expression every value must match), signed with the policy.
    public var pattern: String?

    public init(
        plugin: String, key: String, label: String, placeholder: String? = nil, help: String? = nil, pattern: String? = nil
    ) {
        self.plugin = plugin
        self.key = key
        self.label = label
        self.placeholder = placeholder
        self.help = help
        self.pattern = pattern
    }
}

/// The admin's detached signature over the policy.
/// (When it was signed is the signature's own, signed, creation time.)
public struct PolicySignature: Sendable, Equatable {
    public var signer: String
    public var signature: [UInt8]

    public init(signer: String, signature: [UInt8]) {
        self.signer = signer
        self.signature = signature
    }
}

/// The policy an epoch was written under: its serial and its id (lower-case
/// hex SHA-256 of the policy's signature bytes).
public struct PolicyReference: Sendable, Equatable {
    public var serial: Int
    public var id: String

    public init(serial: Int, id: String) {
        self.serial = serial
        self.id = id
    }

    /// `serial.id`, as in the epoch line.
    public var field: String { "\(serial).\(id)" }
}

/// What an epoch builds on: the epochs that were the bundle's heads when it
/// was written (all present in the bundle), or, for a checkpoint that
/// `compile` signs, the heads it re-sealed (no longer present).
public enum EpochParents: Sendable, Equatable {
    /// Parent epoch ids, sorted; empty for the first epoch of a history.
    case after([String])
    /// A checkpoint: the ids of the heads it subsumes, sorted.
    case subsumes([String])

    public var ids: [String] {
        switch self {
        case .after(let ids), .subsumes(let ids): return ids
        }
    }

    public var isCheckpoint: Bool {
        if case .subsumes = self { return true }
        return false
    }

    /// `after=ID,ID`, `after=-`, `subsumes=ID,ID` or `subsumes=-`, as in the epoch line.
    public var field: String {
        let list = ids.isEmpty ? "-" : ids.joined(separator: ",")
        return (isCheckpoint ? "subsumes=" : "after=") + list
    }
}

/// One write batch: a data key encrypted to the recipients, what it wrote,
/// and its writer's signature.
public struct Epoch: Sendable, Equatable {
    public var time: Int
    /// 16 lower-case hex digits.
    public var id: String
    /// The writer's fingerprint.
    public var writer: String
    /// The policy the epoch was written under (unused in version 1).
    public var policy: PolicyReference
    /// The epochs it builds on (empty in version 1).
    public var parents: EpochParents
    /// The binary OpenPGP message holding the 32-byte data key.
    public var dataKeyMessage: [UInt8]
    /// The writer's detached signature over ``payload(environment:)``.
    public var signature: [UInt8]
    /// What the batch set (with the SHA-256 of each value) or deleted, sorted.
    public var claims: [Claim]

    public init(
        time: Int, id: String, writer: String, policy: PolicyReference = PolicyReference(serial: 0, id: ""),
        parents: EpochParents = .after([]), dataKeyMessage: [UInt8], signature: [UInt8], claims: [Claim]
    ) {
        self.time = time
        self.id = id
        self.writer = writer
        self.policy = policy
        self.parents = parents
        self.dataKeyMessage = dataKeyMessage
        self.signature = signature
        self.claims = claims
    }
}

/// An epoch's statement about one slot.
public struct Claim: Sendable, Equatable, Comparable {
    public var slot: SlotKey
    /// SHA-256 of the value bytes; nil: the value was deleted.
    public var digest: [UInt8]?

    public init(slot: SlotKey, digest: [UInt8]?) {
        self.slot = slot
        self.digest = digest
    }

    public static func < (lhs: Claim, rhs: Claim) -> Bool { lhs.text.utf8.lexicographicallyPrecedes(rhs.text.utf8) }

    /// `owner/plugin/KEY=digest` or `owner/plugin/KEY=-`, as in the epoch line.
    var text: String { "\(slot.owner ?? "-")/\(slot.plugin)/\(slot.key)=\(digest.map(Base64.encode) ?? "-")" }
}

/// What identifies a slot within one environment.
public struct SlotKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// nil for a deployment-wide slot (written `-`).
    public var owner: String?
    public var plugin: String
    public var key: String

    public init(owner: String?, plugin: String, key: String) {
        self.owner = owner
        self.plugin = plugin
        self.key = key
    }

    /// Canonical order: owner (`-` first), plugin, key, bytewise.
    public static func < (lhs: SlotKey, rhs: SlotKey) -> Bool {
        let leftOwner = lhs.owner ?? "-"
        let rightOwner = rhs.owner ?? "-"
        if leftOwner != rightOwner { return leftOwner.utf8.lexicographicallyPrecedes(rightOwner.utf8) }
        if lhs.plugin != rhs.plugin { return lhs.plugin.utf8.lexicographicallyPrecedes(rhs.plugin.utf8) }
        return lhs.key.utf8.lexicographicallyPrecedes(rhs.key.utf8)
    }

    /// `alice/shopify/TOKEN`, `-/github/APP_ID`.
    public var description: String { "\(owner ?? "-")/\(plugin)/\(key)" }
}

/// One slot line: the slot, its sealed value if any, and its attributes.
public struct SlotLine: Sendable, Equatable {
    public var slot: SlotKey
    public var value: SealedValue?
    public var attributes: SlotAttributes

    public init(slot: SlotKey, value: SealedValue?, attributes: SlotAttributes) {
        self.slot = slot
        self.value = value
        self.attributes = attributes
    }
}

/// A value encrypted under an epoch's data key: nonce ‖ ciphertext ‖ tag.
public struct SealedValue: Sendable, Equatable {
    public var epoch: String
    public var bytes: [UInt8]

    public init(epoch: String, bytes: [UInt8]) {
        self.epoch = epoch
        self.bytes = bytes
    }
}

/// A slot's metadata as the loader needs it, signed with the policy.
public struct SlotAttributes: Sendable, Equatable {
    /// The environment variable for the fallback and for `secretc exec`.
    public var env: String
    /// Seconds since 1970 from which the value is not served.
    public var expires: Int?
    public var reserved: Bool
    public var inactive: Bool
    public var scopes: [String]?
    public var description: String?

    public init(
        env: String, expires: Int? = nil, reserved: Bool = false, inactive: Bool = false, scopes: [String]? = nil,
        description: String? = nil
    ) {
        self.env = env
        self.expires = expires
        self.reserved = reserved
        self.inactive = inactive
        self.scopes = scopes
        self.description = description
    }
}

extension Array where Element == Epoch {
    /// The epochs no other epoch builds on: what the next write names.
    public var heads: [String] {
        var named = Set<String>()
        for epoch in self { if case .after(let parents) = epoch.parents { named.formUnion(parents) } }
        return map(\.id).filter { !named.contains($0) }.sorted()
    }
}
