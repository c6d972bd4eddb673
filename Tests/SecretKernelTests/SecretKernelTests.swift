import BundleFormat
import BundleSeal
import Foundation
import GPG
import Logging
import SecretCore
import SecretKernel
import Synchronization
import TestSupport
import Testing

@Suite("SecretKernel: resolution, refusals, status")
struct SecretKernelTests {
    let fixture: KernelFixture
    init() throws { fixture = try KernelFixture() }

    @Test func servesEveryValueTheExampleWrote() throws {
        let kernel = try SecretKernel(fixture.configuration())
        for (name, expected) in KernelFixture.values {
            let parts = name.split(separator: "/").map(String.init)
            let user = parts[0] == "-" ? nil : parts[0]
            #expect(kernel.getSecret(plugin: parts[1], key: parts[2], for: SecretOwner(user: user)) == expected, "\(name)")
        }
        #expect(kernel.info.environment == "production")
        #expect(kernel.info.values == KernelFixture.values.count)
    }

    /// A policy signed by an RSA admin cannot be checked in process: the
    /// step-by-step path verifies it with gpg, then serves every value.
    @Test func bundlesSignedByOtherKeysLoadThroughGPG() throws {
        let rsa = try TemporaryGPGHome()
        defer { rsa.close() }
        let admin = try rsa.generateKey("rsa-admin", algorithm: "rsa2048", usage: "sign")
        var bundle = try SecretBundle(parsing: fixture.bytes)
        bundle.admins = (bundle.admins + [admin]).sorted()
        bundle.keys[admin] = try rsa.gpg(["--export", admin])
        try PolicySigner.signAnew(&bundle, as: admin, with: try Context(home: rsa.path))
        let logs = CapturedLogs()
        var configuration = fixture.configuration(.bytes(bundle.serialized()), logger: logs.logger)
        configuration.trustedAdmins = [admin]
        let kernel = try SecretKernel(configuration)
        for (name, expected) in KernelFixture.values {
            let parts = name.split(separator: "/").map(String.init)
            #expect(kernel.getSecret(plugin: parts[1], key: parts[2], for: SecretOwner(user: parts[0] == "-" ? nil : parts[0])) == expected, "\(name)")
        }
        #expect(logs.all.contains { $0.contains("not Ed25519") })

        // The same bundle pinned to someone else is still refused on that path.
        configuration.trustedAdmins = [KernelFixture.admin]
        let error = #expect(throws: SecretKernelError.self) { try SecretKernel(configuration) }
        #expect(error?.kind == .verificationFailed)
    }

    @Test func resolvesUserThenDeploymentThenEnvironment() throws {
        let kernel = try SecretKernel(fixture.configuration(environment: [
            "STRIPE_SECRET_KEY": "from-env-stripe", "SHOPIFY_API_VERSION": "2024-10", "GITHUB_TOKEN": "from-env-github",
            "ACME_API_KEY": "from-env-acme",
        ]))
        // The user's own slot wins over the deployment-wide one.
        #expect(try kernel.secret(plugin: "github", key: "TOKEN", for: .user("alice")).source == .userSlot("alice"))
        #expect(kernel.getSecret(plugin: "github", key: "TOKEN", for: .user("alice")) == KernelFixture.values["alice/github/TOKEN"])
        // No slot of her own: the deployment-wide slot, never another user's.
        let shared = try kernel.secret(plugin: "github", key: "TOKEN", for: .user("bob"))
        #expect(shared.source == .deploymentSlot)
        #expect(shared.value == KernelFixture.values["-/github/TOKEN"])
        #expect(try kernel.secret(plugin: "github", key: "APP_ID", for: .user("alice")).source == .deploymentSlot)
        // Neither: the manifest's env name (carol's API_VERSION is declared but pending).
        let pending = try kernel.secret(plugin: "shopify", key: "API_VERSION", for: .user("carol"))
        #expect(pending.source == .environmentVariable("SHOPIFY_API_VERSION"))
        #expect(pending.value == "2024-10")
        #expect(kernel.getSecret(plugin: "stripe", key: "SECRET_KEY", for: .user("carol")) == "from-env-stripe")
        // A plugin the bundle does not know is a typo, not a fallback: its variable is not read.
        #expect(kernel.getSecret(plugin: "acme", key: "API_KEY", for: .user("alice")) == nil)
        // Nothing anywhere.
        #expect(kernel.getSecret(plugin: "stripe", key: "WEBHOOK_SECRET", for: .user("bob")) == nil)
        #expect(throws: SecretUnavailable.self) { try kernel.secret(plugin: "stripe", key: "WEBHOOK_SECRET", for: .user("bob")) }
        // Deployment-wide only when no user is named.
        #expect(kernel.getSecret(plugin: "shopify", key: "STORE_DOMAIN", for: .deployment) == nil)
    }

    @Test func sharedResourcesResolveForTheirOwner() throws {
        let kernel = try SecretKernel(fixture.configuration())
        // A workbook owned by alice, opened by carol: the owner's secrets apply.
        let workbook = (owner: "alice", viewer: "carol")
        let domain = kernel.getSecret(plugin: "shopify", key: "STORE_DOMAIN", for: SecretOwner(user: workbook.owner))
        #expect(domain == "alice-example.myshopify.com")
        #expect(domain != kernel.getSecret(plugin: "shopify", key: "STORE_DOMAIN", for: SecretOwner(user: workbook.viewer)))
    }

    @Test func expiredValuesAreNotServed() throws {
        let later = try SecretKernel(fixture.configuration(clock: { Date(timeIntervalSince1970: 1_900_000_000) }))
        #expect(later.getSecret(plugin: "stripe", key: "SECRET_KEY", for: .user("bob")) == nil)
        let error = #expect(throws: SecretUnavailable.self) { try later.secret(plugin: "stripe", key: "SECRET_KEY", for: .user("bob")) }
        guard case .expired(let date) = error?.reason else { Issue.record("not expired: \(String(describing: error))"); return }
        #expect(Int(date.timeIntervalSince1970) == 1_814_313_600)  // 2027-06-30
        let message = error.map { "\($0)" } ?? ""
        #expect(!message.contains("sk_live"))
        // Still served before its expiry, and an expired user slot falls back like a missing one.
        let earlier = try SecretKernel(fixture.configuration(clock: { Date(timeIntervalSince1970: 1_800_000_000) }))
        #expect(earlier.getSecret(plugin: "stripe", key: "SECRET_KEY", for: .user("bob")) == KernelFixture.values["bob/stripe/SECRET_KEY"])
        let fallback = try SecretKernel(fixture.configuration(
            environment: ["STRIPE_SECRET_KEY": "env"], clock: { Date(timeIntervalSince1970: 1_900_000_000) }))
        #expect(fallback.getSecret(plugin: "stripe", key: "SECRET_KEY", for: .user("bob")) == "env")
    }

    @Test func inactiveValuesAreNotServed() throws {
        let bytes = try fixture.resigned { bundle in
            for key in ["ADMIN_TOKEN", "TOKEN"] {
                let plugin = key == "TOKEN" ? "github" : "shopify"
                let index = bundle.slots.firstIndex { $0.slot == SlotKey(owner: "alice", plugin: plugin, key: key) }!
                bundle.slots[index].attributes.inactive = true
            }
        }
        let kernel = try SecretKernel(fixture.configuration(.bytes(bytes)))
        let error = #expect(throws: SecretUnavailable.self) { try kernel.secret(plugin: "shopify", key: "ADMIN_TOKEN", for: .user("alice")) }
        #expect(error?.reason == .inactive)
        #expect(try kernel.status(plugin: "shopify", for: .user("alice")).slots.last?.status == .inactive)
        #expect(try kernel.status(plugin: "shopify", for: .user("alice")).setKeys == ["STORE_DOMAIN"])
        // An inactive user slot falls back like a missing one: here to the deployment-wide token.
        #expect(try kernel.secret(plugin: "github", key: "TOKEN", for: .user("alice")).source == .deploymentSlot)
        // Her other values are untouched.
        #expect(kernel.getSecret(plugin: "shopify", key: "STORE_DOMAIN", for: .user("alice")) == KernelFixture.values["alice/shopify/STORE_DOMAIN"])
    }

    @Test func scopedLoadersServeOnlyTheirSlots() throws {
        let billing = try SecretKernel(fixture.configuration(scope: "billing"))
        // dave's slot is out of scope, so the deployment-wide token is the next in line.
        #expect(try billing.secret(plugin: "github", key: "TOKEN", for: .user("dave")).source == .deploymentSlot)
        let refused = #expect(throws: SecretUnavailable.self) { try billing.secret(plugin: "stripe", key: "SECRET_KEY", for: .user("bob")) }
        #expect(refused?.reason == .outOfScope("billing"))
        // Unscoped slots are served to every scope; listed scopes are.
        #expect(billing.getSecret(plugin: "shopify", key: "STORE_DOMAIN", for: .user("alice")) != nil)
        let formulas = try SecretKernel(fixture.configuration(scope: "formulas"))
        #expect(formulas.getSecret(plugin: "stripe", key: "SECRET_KEY", for: .user("bob")) == KernelFixture.values["bob/stripe/SECRET_KEY"])
        #expect(try formulas.secret(plugin: "github", key: "TOKEN", for: .user("dave")).source == .userSlot("dave"))
    }

    @Test func statusHasTheSeedsShapeAndNoValue() throws {
        let kernel = try SecretKernel(fixture.configuration())
        let status = try kernel.status(plugin: "shopify", for: .user("alice"))
        #expect(status.pluginSlug == "shopify")
        #expect(status.declared.map(\.key) == ["STORE_DOMAIN", "ADMIN_TOKEN", "API_VERSION"])
        #expect(status.declared.first?.label == "Store domain")
        #expect(status.declared.first?.placeholder == "myshop.myshopify.com")
        #expect(status.setKeys == ["ADMIN_TOKEN", "STORE_DOMAIN"])
        #expect(status.slots.map(\.key) == ["STORE_DOMAIN", "ADMIN_TOKEN"])
        #expect(status.slots.allSatisfy { $0.writtenBy == "alice" && $0.updatedAt != nil })
        let json = String(decoding: try JSONEncoder().encode(status), as: UTF8.self)
        #expect(json.contains("\"plugin_slug\":\"shopify\""))
        #expect(json.contains("\"set_keys\""))
        for value in KernelFixture.values.values { #expect(!json.contains(value)) }
        let pending = try kernel.status(plugin: "shopify", for: .user("carol"))
        #expect(pending.slots.first { $0.key == "API_VERSION" }?.status == .pending)
        #expect(try kernel.status(plugin: "github", for: .deployment).setKeys == ["APP_ID", "TOKEN"])
    }

    @Test func refusesEveryTamperedOrForgedBundle() throws {
        let folder = Secretc.packageRoot.appendingPathComponent("Tests/BundleTests/Vectors")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".txt") }
        #expect(names.count >= 14)
        for name in names {
            let file = Array(try Data(contentsOf: folder.appendingPathComponent(name)))
            // Header lines, an empty line, then the bundle.
            let split = (0..<file.count - 1).first { file[$0] == 10 && file[$0 + 1] == 10 }!
            let header = String(decoding: file[..<split], as: UTF8.self)
            guard !header.hasPrefix("expect: ok\n") else { continue }  // it loads (BundleVectorTests)
            let pinned = header.split(separator: "\n").first { $0.hasPrefix("pinned: ") }.map { String($0.dropFirst(8)) }!
            let logs = CapturedLogs()
            var configuration = fixture.configuration(.bytes(Array(file[(split + 2)...])), logger: logs.logger)
            configuration.trustedAdmins = [pinned]
            let error = #expect(throws: SecretKernelError.self, "\(name)") { try SecretKernel(configuration) }
            #expect(error?.kind != .unreadable, "\(name)")
            if error?.kind != .invalidBundle {
                // The in-process path refused it too, not only the step-by-step reference path.
                #expect(logs.all.contains { $0.contains("fast load refused the bundle") }, "\(name)")
            }
        }
        // A good bundle loads on the in-process path alone.
        let logs = CapturedLogs()
        _ = try SecretKernel(fixture.configuration(logger: logs.logger))
        #expect(!logs.all.contains { $0.contains("step by step") })
    }

    @Test func refusesUnpinnedAdminsAndMissingKeys() throws {
        var unpinned = fixture.configuration()
        unpinned.trustedAdmins = ["B2B17BDA3CB2FC0A7FB1B59E73BB3F09FCDDA48F"]  // alice: a user, not an admin
        let untrusted = #expect(throws: SecretKernelError.self) { try SecretKernel(unpinned) }
        #expect(untrusted?.kind == .verificationFailed)
        #expect(untrusted?.message.contains("not a trusted admin") == true)

        var none = fixture.configuration()
        none.trustedAdmins = []
        #expect(throws: SecretKernelError.self) { try SecretKernel(none) }

        let empty = try TemporaryGPGHome()
        defer { empty.close() }
        var keyless = fixture.configuration()
        keyless.keys = .gnupgHome(empty.path)
        let noKey = #expect(throws: SecretKernelError.self) { try SecretKernel(keyless) }
        #expect(noKey?.kind == .keyUnavailable)
        #expect(noKey?.message.contains("3C96EC07DE1516F57CE9307D6AE2D1FAE45F2655") == true)

        let missing = #expect(throws: SecretKernelError.self) {
            try SecretKernel(fixture.configuration(.path("/nonexistent/production.bundle")))
        }
        #expect(missing?.kind == .unreadable)
    }

    @Test func armoredKeyFromTheEnvironmentLeavesNoHomeBehind() throws {
        let scratch = try TemporaryGPGHome()  // a short folder to hold the kernel's temporary home
        defer { scratch.close() }
        let armored = try String(contentsOf: KernelFixture.secretKey("runtime-production"), encoding: .utf8)
        var configuration = fixture.configuration()
        configuration.keys = .fromVariables(["SECRETC_GPG_KEY": armored])
        configuration.temporaryDirectory = scratch.path
        let kernel = try SecretKernel(configuration)
        #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "123456")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
        try kernel.reload()
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)

        // Not a secret key: refused, and still nothing left behind.
        var wrong = configuration
        wrong.keys = .fromVariables(["SECRETC_GPG_KEY": try String(
            contentsOf: KernelFixture.example.appendingPathComponent("keys/runtime-production.asc"), encoding: .utf8)])
        let error = #expect(throws: SecretKernelError.self) { try SecretKernel(wrong) }
        #expect(error?.kind == .misconfigured)
        #expect(error?.message.hasPrefix("SECRETC_GPG_KEY holds a public key, not a secret key") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func logsSourcesAndRefusalsButNeverValues() throws {
        let logs = CapturedLogs()
        let kernel = try SecretKernel(fixture.configuration(environment: ["STRIPE_WEBHOOK_SECRET": "env-value-0451"], logger: logs.logger))
        _ = kernel.getSecret(plugin: "shopify", key: "ADMIN_TOKEN", for: .user("alice"))
        _ = kernel.getSecret(plugin: "github", key: "APP_ID", for: .user("alice"))
        _ = kernel.getSecret(plugin: "stripe", key: "WEBHOOK_SECRET", for: .deployment)
        #expect(throws: SecretKernelError.self) { try kernel.reload(bytes: Array("secretc-bundle 2\n".utf8)) }
        let text = logs.all.joined(separator: "\n")
        #expect(text.contains("source=user slot (alice)"))
        #expect(text.contains("source=deployment-wide slot"))
        #expect(text.contains("source=environment variable STRIPE_WEBHOOK_SECRET"))
        #expect(text.contains("error secret bundle reload refused"))
        for value in KernelFixture.values.values + ["env-value-0451"] { #expect(!text.contains(value)) }
        // Descriptions redact.
        let secret = try kernel.secret(plugin: "shopify", key: "ADMIN_TOKEN", for: .user("alice"))
        for shown in ["\(secret)", String(reflecting: secret), "\(kernel)"] {
            #expect(!shown.contains("shpat_"))
        }
    }

    /// A typo is not a missing value: the signed schema says what exists.
    @Test func undeclaredNamesAreTheirOwnErrorAndWarnedOnce() throws {
        let logs = CapturedLogs()
        let kernel = try SecretKernel(fixture.configuration(
            environment: ["SHOPIFI_ADMIN_TOKEN": "typo-env-0451", "SHOPIFY_ADMIN_TOKN": "typo-env-0452"], logger: logs.logger))
        let plugin = #expect(throws: SecretUnavailable.self) {
            try kernel.secret(plugin: "shopifi", key: "ADMIN_TOKEN", for: .user("alice"))
        }
        #expect(plugin?.reason == .undeclared)
        #expect(plugin?.description == "'shopifi' is not a plugin of this bundle; did you mean 'shopify'?")
        let key = #expect(throws: SecretUnavailable.self) {
            try kernel.secret(plugin: "shopify", key: "ADMIN_TOKN", for: .deployment)
        }
        #expect(key?.description == "plugin 'shopify' declares no secret 'ADMIN_TOKN'; did you mean 'ADMIN_TOKEN'?")
        // The non-throwing form: nil, not the variable a typo names, and one warning per name.
        #expect(kernel.getSecret(plugin: "shopifi", key: "ADMIN_TOKEN", for: .user("alice")) == nil)
        #expect(kernel.getSecret(plugin: "shopifi", key: "ADMIN_TOKEN", for: .deployment) == nil)
        #expect(kernel.getSecret(plugin: "shopify", key: "ADMIN_TOKN", for: .deployment) == nil)
        let warnings = logs.all.filter { $0.hasPrefix("warning") }
        #expect(warnings.count == 2, "\(warnings)")
        #expect(warnings.first?.contains("undeclared name: 'shopifi' is not a plugin of this bundle; did you mean 'shopify'?") == true)
        let status = #expect(throws: SecretUnavailable.self) { try kernel.status(plugin: "no-such-plugin", for: .deployment) }
        #expect(status?.reason == .undeclared)
        let slot = #expect(throws: SecretUnavailable.self) { try kernel.slotValue(plugin: "github", key: "TOKN", of: .deployment) }
        #expect(slot?.reason == .undeclared)
        // A declared key without any slot still falls back to its variable.
        #expect(kernel.getSecret(plugin: "shopify", key: "API_VERSION", for: .deployment) == nil)
    }

    /// The fallback's variables and the key's variables are separate: a
    /// test's fallback dictionary does not hide the runtime key.
    @Test func fallbackVariablesDoNotCarryTheRuntimeKey() throws {
        var configuration = fixture.configuration(environment: ["STRIPE_WEBHOOK_SECRET": "from-fallback"])
        configuration.keys = .fromVariables(["GNUPGHOME": fixture.home.path])
        let kernel = try SecretKernel(configuration)
        #expect(kernel.getSecret(plugin: "stripe", key: "WEBHOOK_SECRET", for: .user("bob")) == "from-fallback")
        #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "123456")
    }

    /// Writers are named as the CLI names them; one info line per reload; refusals counted.
    @Test func statusNamesWritersAndReloadsLogOneLine() throws {
        let logs = CapturedLogs()
        let kernel = try SecretKernel(fixture.configuration(logger: logs.logger))
        #expect(try kernel.status(plugin: "github", for: .deployment).slots.map(\.writtenBy) == ["ops", "ops"])
        let before = logs.all.count
        try kernel.reload()
        let reload = logs.all.dropFirst(before).filter { $0.hasPrefix("info") }
        #expect(reload.count == 1, "\(reload)")
        #expect(reload.first?.contains("secret bundle reloaded") == true && reload.first?.contains("read_ms=") == true)
        #expect(throws: SecretKernelError.self) { try kernel.reload(bytes: Array("secretc-bundle 2\n".utf8)) }
        #expect(kernel.info.reloads == 1)
        #expect(kernel.info.reloadFailures == 1)
    }
}
