import BundleFormat
import BundleSeal
import Foundation
import GPG
import Logging
import SecretKernel
import Synchronization
import TestSupport

/// The example deployment's production bundle, its EXAMPLE-ONLY runtime key
/// in a short throwaway home, and the values `examples/gridos/make-bundles` wrote.
final class KernelFixture: @unchecked Sendable {
    static let example = Secretc.packageRoot.appendingPathComponent("examples/gridos")
    static let admin = "B10C30114A7A5CE22215A9196B7A4E014FFA39D1"
    static let values: [String: String] = [
        "-/github/TOKEN": "ghp_EXAMPLEexampleEXAMPLEexampleEXAMPLE0",
        "-/github/APP_ID": "123456",
        "alice/shopify/STORE_DOMAIN": "alice-example.myshopify.com",
        "alice/shopify/ADMIN_TOKEN": "shpat_0000000000000000000000000example",
        "alice/github/TOKEN": "github_pat_EXAMPLE_alice_0000000000",
        "carol/shopify/STORE_DOMAIN": "carol-example.myshopify.com",
        "carol/shopify/ADMIN_TOKEN": "shpat_1111111111111111111111111example",
        "dave/github/TOKEN": "github_pat_EXAMPLE_dave_00000000000",
        "bob/stripe/SECRET_KEY": "sk_live_EXAMPLEexample0000",
    ]

    let home: TemporaryGPGHome
    let bundlePath: String
    let bytes: [UInt8]

    init() throws {
        home = try TemporaryGPGHome()
        try home.gpg(["--import", Self.secretKey("runtime-production").path])
        bundlePath = Self.example.appendingPathComponent("secrets/production.bundle").path
        bytes = Array(try Data(contentsOf: URL(fileURLWithPath: bundlePath)))
    }

    deinit { home.close() }

    static func secretKey(_ name: String) -> URL {
        example.appendingPathComponent("example-secret-keys/\(name).EXAMPLE-ONLY.asc")
    }

    func configuration(
        _ source: SecretKernel.BundleSource? = nil, scope: String? = nil, environment: [String: String] = [:],
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
        clock: (@Sendable () -> Date)? = nil
    ) -> SecretKernel.Configuration {
        SecretKernel.Configuration(
            bundle: source ?? .path(bundlePath), keys: .gnupgHome(home.path), trustedAdmins: [Self.admin], scope: scope,
            fallbackEnvironment: environment, logger: logger, clock: clock)
    }

    /// The bundle with `change` applied to its parsed form and the policy
    /// re-signed by the example admin (a legitimate admin edit).
    func resigned(_ base: [UInt8]? = nil, _ change: (inout SecretBundle) -> Void) throws -> [UInt8] {
        var bundle = try SecretBundle(parsing: base ?? bytes)
        change(&bundle)
        let admin = try TemporaryGPGHome()
        defer { admin.close() }
        try admin.gpg(["--import", Self.secretKey("ops").path])
        try PolicySigner.signAnew(&bundle, as: Self.admin, with: try Context(home: admin.path))
        return bundle.serialized()
    }

    /// The bundle (or `base`) plus one write of `values` (a new epoch) by
    /// the admin, or by the named user with their own key.
    func written(
        _ values: [SlotKey: String], onto base: [UInt8]? = nil, by user: String? = nil, id: String? = nil
    ) throws -> [UInt8] {
        var bundle = try SecretBundle(parsing: base ?? bytes)
        let admin = try TemporaryGPGHome()
        defer { admin.close() }
        try admin.gpg(["--import", Self.secretKey(user ?? "ops").path])
        try admin.gpg(["--import", Self.example.appendingPathComponent("keys/runtime-production.asc").path])
        let context = try Context(home: admin.path)
        let (epoch, sealed) = try EpochSealer(onto: bundle, writer: user.map { bundle.users[$0]! } ?? Self.admin)
            .seal(values.map { .init(slot: $0.key, value: SecureBytes($0.value)) },
                  afterTime: bundle.epochs.map(\.time).max() ?? 0,
                  dataKey: try DataKey(encryptor: context, recipients: bundle.recipients), signer: context, id: id)
        bundle.epochs.append(epoch)
        for index in bundle.slots.indices {
            if let value = sealed[bundle.slots[index].slot] { bundle.slots[index].value = value }
        }
        return bundle.serialized()
    }
}

/// Keeps every log record, to check what a kernel logs (and that no value is in it).
final class CapturedLogs: @unchecked Sendable {
    private let records = Mutex<[String]>([])
    var all: [String] { records.withLock { $0 } }
    func append(_ record: String) { records.withLock { $0.append(record) } }

    var logger: Logger {
        var logger = Logger(label: "test") { _ in CapturingHandler(sink: self) }
        logger.logLevel = .debug
        return logger
    }

    struct CapturingHandler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            let fields = (event.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
            sink.append("\(event.level) \(event.message) \(fields)")
        }
    }
}
