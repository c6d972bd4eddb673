import BundleFormat
import BundleSeal
import Foundation
import GPG
import TestSupport
import Testing

/// Finding 12: without any secret key, `check` reads each write's data-key
/// message as OpenPGP packets and compares its recipients with the
/// declared ones, so a write no runtime could open is found in CI.
@Suite("check: data keys encrypted to the declared recipients")
struct DataKeyCheckTests {
    /// alice's write of her token, its data key replaced by `message`, re-signed by her.
    func aliceWrite(_ deployment: ExampleDeployment, dataKey message: (Context) throws -> [UInt8]) throws {
        try deployment.handWrite(
            "github_pat_EXAMPLE_alice_rotated_0", to: SlotKey(owner: "alice", plugin: "github", key: "TOKEN"), by: "alice",
            change: { epoch, context in epoch.dataKeyMessage = try message(context) })
    }

    @Test func aDataKeyForAStrangerIsAnError() throws {
        let deployment = try ExampleDeployment()
        try aliceWrite(deployment) { context in
            let stranger = try context.generateKey(userID: "stranger <stranger@example.invalid>")
            return try context.encrypt([UInt8](repeating: 7, count: 32), to: [stranger.fingerprint])
        }
        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        let lines = check.stdoutText.split(separator: "\n").filter { $0.contains("error:") }
        #expect(lines.count == 1, "\(check.stdoutText)")  // the first thing wrong with the write
        #expect(lines.allSatisfy { $0.hasPrefix("secrets/production.bundle:") && $0.contains("by alice") })
        // The rule loaders apply (the first thing wrong), in the declared names.
        #expect(lines.contains { $0.contains("which is no recipient's (declared recipients: runtime-production)") },
                "\(lines)")
    }

    @Test func aDataKeyThatIsNotSessionKeysAndOnePacketIsAnError() throws {
        let deployment = try ExampleDeployment()
        // A literal data packet (tag 11) holding 32 bytes in clear.
        try aliceWrite(deployment) { _ in [0xCB, 38, UInt8(ascii: "b"), 0, 0, 0, 0, 0] + [UInt8](repeating: 7, count: 32) }
        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("holds an OpenPGP packet of type 11"), "\(check.stdoutText)")
    }

    @Test func anOversizedDataKeyIsAnError() throws {
        let deployment = try ExampleDeployment()
        try aliceWrite(deployment) { context in
            let runtime = try #require(try context.listKeys().first { $0.displayName.contains("runtime") })
            return try context.encrypt((0..<70_000).map { _ in UInt8.random(in: 0...255) }, to: [runtime.fingerprint])
        }
        let check = try deployment.secretc(["check"])
        #expect(check.status == 1)
        #expect(check.stdoutText.contains("its data-key message is larger than 65536 bytes"), "\(check.stdoutText)")
    }

    /// Real messages, from gpg and from the in-process encryptor, name
    /// exactly the recipient's encryption subkey.
    @Test func realMessagesNameTheRecipientsSubkey() throws {
        let home = try TemporaryGPGHome()
        defer { home.close() }
        let context = try Context(home: home.path)
        let first = try context.generateKey(userID: "one <one@example.invalid>")
        let second = try context.generateKey(userID: "two <two@example.invalid>")
        let message = try context.encrypt([UInt8](repeating: 1, count: 32), to: [first.fingerprint, second.fingerprint])
        let envelope = try DataKeyEnvelope(parsing: message)
        #expect(Set(envelope.recipientKeyIDs) == Set([first, second].map { String($0.encryptionSubkey!.suffix(16)) }))
        #expect(throws: DataKeyEnvelope.Problem.self) { try DataKeyEnvelope(parsing: Array(message.dropLast(3))) }
        #expect(throws: DataKeyEnvelope.Problem.self) { try DataKeyEnvelope(parsing: message + message) }
    }
}
