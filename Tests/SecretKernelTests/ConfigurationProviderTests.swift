import Configuration
import Foundation
import SecretKernel
import SecretKernelConfiguration
import TestSupport
import Testing

/// Secrets read through swift-configuration: marked secret, with the owner rules.
@Suite("SecretKernelProvider for swift-configuration")
struct ConfigurationProviderTests {
    @Test func secretsReadThroughAConfigReaderWithTheOwnerRules() throws {
        let fixture = try KernelFixture()
        let kernel = try SecretKernel(fixture.configuration())
        let provider = SecretKernelProvider(kernel: kernel, owner: .deployment, prefix: ["secrets"])
        let config = ConfigReader(providers: [
            provider,
            InMemoryProvider(values: ["secrets.stripe.WEBHOOK_SECRET": "from-the-next-provider", "port": 8080]),
        ])
        #expect(config.int(forKey: "secrets.github.APP_ID") == 123456)
        // Deployment-wide by the provider's owner; a user's own through the key's context.
        #expect(config.string(forKey: "secrets.github.TOKEN") == KernelFixture.values["-/github/TOKEN"])
        #expect(config.string(forKey: ConfigKey("secrets.github.TOKEN", context: ["user": .string("alice")]))
            == KernelFixture.values["alice/github/TOKEN"])
        #expect(config.string(forKey: "secrets.shopify.STORE_DOMAIN") == nil, "alice's slot is not deployment-wide")
        // Absent here: the reader goes on to its next provider; other keys are not this provider's.
        #expect(config.string(forKey: "secrets.stripe.WEBHOOK_SECRET") == "from-the-next-provider")
        #expect(config.int(forKey: "port") == 8080)
        #expect(config.string(forKey: "secrets.shopifi.ADMIN_TOKEN") == nil, "a typo is absent, and logged by the kernel")

        // Marked secret: redacted wherever swift-configuration prints it.
        let result = try provider.value(forKey: AbsoluteConfigKey(["secrets", "github", "TOKEN"]), type: .string)
        #expect(result.value?.isSecret == true)
        #expect(!"\(result.value!)".contains("github_pat"))
        #expect(!"\(provider)".contains("github_pat"))
        #expect(throws: SecretNotConvertible.self) {
            try provider.value(forKey: AbsoluteConfigKey(["secrets", "github", "TOKEN"]), type: .int)
        }
    }
}
