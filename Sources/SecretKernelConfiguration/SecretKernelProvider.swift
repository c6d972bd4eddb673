import Configuration
import SecretKernel

/// A swift-configuration provider over a ``SecretKernel``: an app that reads
/// its settings through a `ConfigReader` gets plugin secrets there, marked
/// secret (so the reader's logs and access reporters redact them), with the
/// kernel's owner rules.
///
/// ```swift
/// let config = ConfigReader(providers: [
///     SecretKernelProvider(kernel: kernel, owner: .deployment, prefix: ["secrets"]),
///     EnvironmentVariablesProvider(),
/// ])
/// let appID = config.int(forKey: "secrets.github.APP_ID")
/// let token = config.string(forKey: ConfigKey("secrets.shopify.ADMIN_TOKEN", context: ["user": .string(workbook.owner)]))
/// ```
///
/// A key is `prefix` + `plugin` + `KEY`. Whose value is read: the key's
/// `user` context when it has one (`.user(id)`: the user's slot, then the
/// deployment-wide slot, then the variable), else the provider's `owner`,
/// which has no default. A value none of those holds is absent (the reader
/// goes on to its next provider); an undeclared plugin or key is absent too,
/// and the kernel logs it once. Values are read at each lookup, so a kernel
/// reload shows at once.
public struct SecretKernelProvider: ConfigProvider, CustomStringConvertible {
    public let kernel: SecretKernel
    public let owner: SecretOwner
    public let prefix: [String]

    public init(kernel: SecretKernel, owner: SecretOwner, prefix: [String] = []) {
        self.kernel = kernel
        self.owner = owner
        self.prefix = prefix
    }

    public var providerName: String { "SecretKernelProvider[\(kernel.info.environment)]" }

    public var description: String { "\(providerName) <redacted>" }

    public func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        let encoded = key.components.joined(separator: ".")
        guard key.components.count == prefix.count + 2, Array(key.components.prefix(prefix.count)) == prefix else {
            return LookupResult(encodedKey: encoded, value: nil)
        }
        let plugin = key.components[prefix.count]
        let name = key.components[prefix.count + 1]
        var owner = self.owner
        if case .string(let user)? = key.context["user"] { owner = .user(user) }
        guard let text = kernel.getSecret(plugin: plugin, key: name, for: owner) else {
            return LookupResult(encodedKey: encoded, value: nil)
        }
        let content: ConfigContent
        switch type {
        case .string: content = .string(text)
        case .bytes: content = .bytes(Array(text.utf8))
        case .int:
            guard let number = Int(text) else { throw SecretNotConvertible(key: encoded, type: type) }
            content = .int(number)
        case .double:
            guard let number = Double(text) else { throw SecretNotConvertible(key: encoded, type: type) }
            content = .double(number)
        case .bool:
            guard let flag = Bool(text.lowercased()) else { throw SecretNotConvertible(key: encoded, type: type) }
            content = .bool(flag)
        default:
            throw SecretNotConvertible(key: encoded, type: type)
        }
        return LookupResult(encodedKey: encoded, value: ConfigValue(content, isSecret: true))
    }

    public func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try value(forKey: key, type: type)
    }

    nonisolated(nonsending) public func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey, type: ConfigType,
        updatesHandler: nonisolated(nonsending) (
            _ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>
        ) async throws -> Return
    ) async throws -> Return {
        try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    public func snapshot() -> any ConfigSnapshot { self }

    nonisolated(nonsending) public func watchSnapshot<Return: ~Copyable>(
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
    }
}

extension SecretKernelProvider: ConfigSnapshot {}

/// A secret asked for as a type its text is not (an `int` that is not a
/// number). Names the key, never the value.
public struct SecretNotConvertible: Error, CustomStringConvertible {
    public var key: String
    public var type: ConfigType
    public var description: String { "the secret \(key) is not a \(type.rawValue)" }
}
