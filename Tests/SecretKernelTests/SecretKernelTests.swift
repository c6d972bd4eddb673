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
            #expect(kernel.getSecret(parts[1], parts[2], user: user) == expected, "\(name)")
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
            #expect(kernel.getSecret(parts[1], parts[2], user: parts[0] == "-" ? nil : parts[0]) == expected, "\(name)")
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
        #expect(try kernel.secret("github", "TOKEN", user: "alice").source == .userSlot("alice"))
        #expect(kernel.getSecret("github", "TOKEN", user: "alice") == KernelFixture.values["alice/github/TOKEN"])
        // No slot of her own: the deployment-wide slot, never another user's.
        let shared = try kernel.secret("github", "TOKEN", user: "bob")
        #expect(shared.source == .deploymentSlot)
        #expect(shared.value == KernelFixture.values["-/github/TOKEN"])
        #expect(try kernel.secret("github", "APP_ID", user: "alice").source == .deploymentSlot)
        // Neither: the manifest's env name (carol's API_VERSION is declared but pending).
        let pending = try kernel.secret("shopify", "API_VERSION", user: "carol")
        #expect(pending.source == .environmentVariable("SHOPIFY_API_VERSION"))
        #expect(pending.value == "2024-10")
        #expect(kernel.getSecret("stripe", "SECRET_KEY", user: "carol") == "from-env-stripe")
        // A plugin the bundle does not know: the documented default name.
        #expect(try kernel.secret("acme", "API_KEY", user: "alice").source == .environmentVariable("ACME_API_KEY"))
        // Nothing anywhere.
        #expect(kernel.getSecret("stripe", "WEBHOOK_SECRET", user: "bob") == nil)
        #expect(throws: SecretUnavailable.self) { try kernel.secret("stripe", "WEBHOOK_SECRET", user: "bob") }
        // Deployment-wide only when no user is named.
        #expect(kernel.getSecret("shopify", "STORE_DOMAIN") == nil)
    }

    @Test func sharedResourcesResolveForTheirOwner() throws {
        let kernel = try SecretKernel(fixture.configuration())
        // A workbook owned by alice, opened by carol: the owner's secrets apply.
        let workbook = (owner: "alice", viewer: "carol")
        let domain = kernel.getSecret("shopify", "STORE_DOMAIN", user: workbook.owner)
        #expect(domain == "alice-example.myshopify.com")
        #expect(domain != kernel.getSecret("shopify", "STORE_DOMAIN", user: workbook.viewer))
    }

    @Test func expiredValuesAreNotServed() throws {
        let later = try SecretKernel(fixture.configuration(clock: { Date(timeIntervalSince1970: 1_900_000_000) }))
        #expect(later.getSecret("stripe", "SECRET_KEY", user: "bob") == nil)
        let error = #expect(throws: SecretUnavailable.self) { try later.secret("stripe", "SECRET_KEY", user: "bob") }
        guard case .expired(let date) = error?.reason else { Issue.record("not expired: \(String(describing: error))"); return }
        #expect(Int(date.timeIntervalSince1970) == 1_814_313_600)  // 2027-06-30
        let message = error.map { "\($0)" } ?? ""
        #expect(!message.contains("sk_live"))
        // Still served before its expiry, and an expired user slot falls back like a missing one.
        let earlier = try SecretKernel(fixture.configuration(clock: { Date(timeIntervalSince1970: 1_800_000_000) }))
        #expect(earlier.getSecret("stripe", "SECRET_KEY", user: "bob") == KernelFixture.values["bob/stripe/SECRET_KEY"])
        let fallback = try SecretKernel(fixture.configuration(
            environment: ["STRIPE_SECRET_KEY": "env"], clock: { Date(timeIntervalSince1970: 1_900_000_000) }))
        #expect(fallback.getSecret("stripe", "SECRET_KEY", user: "bob") == "env")
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
        let error = #expect(throws: SecretUnavailable.self) { try kernel.secret("shopify", "ADMIN_TOKEN", user: "alice") }
        #expect(error?.reason == .inactive)
        #expect(kernel.status(plugin: "shopify", user: "alice").slots.last?.status == .inactive)
        #expect(kernel.status(plugin: "shopify", user: "alice").setKeys == ["STORE_DOMAIN"])
        // An inactive user slot falls back like a missing one: here to the deployment-wide token.
        #expect(try kernel.secret("github", "TOKEN", user: "alice").source == .deploymentSlot)
        // Her other values are untouched.
        #expect(kernel.getSecret("shopify", "STORE_DOMAIN", user: "alice") == KernelFixture.values["alice/shopify/STORE_DOMAIN"])
    }

    @Test func scopedLoadersServeOnlyTheirSlots() throws {
        let billing = try SecretKernel(fixture.configuration(scope: "billing"))
        // dave's slot is out of scope, so the deployment-wide token is the next in line.
        #expect(try billing.secret("github", "TOKEN", user: "dave").source == .deploymentSlot)
        let refused = #expect(throws: SecretUnavailable.self) { try billing.secret("stripe", "SECRET_KEY", user: "bob") }
        #expect(refused?.reason == .outOfScope("billing"))
        // Unscoped slots are served to every scope; listed scopes are.
        #expect(billing.getSecret("shopify", "STORE_DOMAIN", user: "alice") != nil)
        let formulas = try SecretKernel(fixture.configuration(scope: "formulas"))
        #expect(formulas.getSecret("stripe", "SECRET_KEY", user: "bob") == KernelFixture.values["bob/stripe/SECRET_KEY"])
        #expect(try formulas.secret("github", "TOKEN", user: "dave").source == .userSlot("dave"))
    }

    @Test func statusHasTheSeedsShapeAndNoValue() throws {
        let kernel = try SecretKernel(fixture.configuration())
        let status = kernel.status(plugin: "shopify", user: "alice")
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
        let pending = kernel.status(plugin: "shopify", user: "carol")
        #expect(pending.slots.first { $0.key == "API_VERSION" }?.status == .pending)
        #expect(kernel.status(plugin: "github").setKeys == ["APP_ID", "TOKEN"])
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
        var configuration = fixture.configuration(environment: ["SECRETC_GPG_KEY": armored])
        configuration.keys = .automatic
        configuration.temporaryDirectory = scratch.path
        let kernel = try SecretKernel(configuration)
        #expect(kernel.getSecret("github", "APP_ID") == "123456")
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
        try kernel.reload()
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)

        // Not a secret key: refused, and still nothing left behind.
        var wrong = configuration
        wrong.environment = ["SECRETC_GPG_KEY": try String(
            contentsOf: KernelFixture.example.appendingPathComponent("keys/runtime-production.asc"), encoding: .utf8)]
        let error = #expect(throws: SecretKernelError.self) { try SecretKernel(wrong) }
        #expect(error?.kind == .misconfigured)
        #expect(error?.message.hasPrefix("SECRETC_GPG_KEY holds a public key, not a secret key") == true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.path).isEmpty)
    }

    @Test func logsSourcesAndRefusalsButNeverValues() throws {
        let logs = CapturedLogs()
        let kernel = try SecretKernel(fixture.configuration(environment: ["ACME_API_KEY": "env-value-0451"], logger: logs.logger))
        _ = kernel.getSecret("shopify", "ADMIN_TOKEN", user: "alice")
        _ = kernel.getSecret("github", "APP_ID", user: "alice")
        _ = kernel.getSecret("acme", "API_KEY")
        #expect(throws: SecretKernelError.self) { try kernel.reload(bytes: Array("secretc-bundle 2\n".utf8)) }
        let text = logs.all.joined(separator: "\n")
        #expect(text.contains("source=user slot (alice)"))
        #expect(text.contains("source=deployment-wide slot"))
        #expect(text.contains("source=environment variable ACME_API_KEY"))
        #expect(text.contains("error secret bundle reload refused"))
        for value in KernelFixture.values.values + ["env-value-0451"] { #expect(!text.contains(value)) }
        // Descriptions redact.
        let secret = try kernel.secret("shopify", "ADMIN_TOKEN", user: "alice")
        for shown in ["\(secret)", String(reflecting: secret), "\(kernel)"] {
            #expect(!shown.contains("shpat_"))
        }
    }
}
