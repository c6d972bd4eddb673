import Foundation
import GPG
@testable import SecretCompiler
import TestSupport
import Testing

/// A warm write starts encrypting its data key from the record's recipient
/// keys before the record is checked; the key is used only if the checked
/// record names the same keys, byte for byte.
@Suite("the early data key of a warm write")
struct EarlyDataKeyTests {
    @Test func aRecordNamesItsRecipientsKeys() throws {
        let deployment = try ExampleDeployment()
        _ = try deployment.recordedByAFirstWrite()
        let cache = deployment.writeCache
        let config = deployment.config
        let early = try #require(cache.early(config: config, environment: "production"))
        let (keys, bundle) = (early.keys, early.bundle)
        let entry = try #require(cache.entry(config: config))
        let production = try entry.facts.environment("production")
        #expect(Set(keys.keys) == Set(production.recipients))
        #expect(keys.allSatisfy { entry.facts.keys[$0.key] == $0.value })
        // The example's runtime keys encrypt on Curve25519: the record names
        // the subkey gpg chose, so the data key is encrypted in process.
        #expect(keys.values.allSatisfy { $0.encryptionSubkey != nil && $0.encryptionSubkey != $0.fingerprint })
        #expect(bundle.standardizedFileURL == production.bundle.standardizedFileURL)
        #expect(cache.early(config: config, environment: "nowhere") == nil)
        // The bundle the first write left, which a warm write reads early.
        #expect(early.written == entry.written["production"]?.identity)
        #expect(early.written.map { BundleFile(url: bundle).isStill($0) } == true)
    }

    /// An early data key encrypted to other keys than the checked record's
    /// is left unused: the runtime key still reads what the write sealed.
    @Test func anEarlyDataKeyForOtherKeysIsNotUsed() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.recordedByAFirstWrite()
        let config = deployment.config
        let cache = deployment.writeCache
        let writer = try #require(try SlotWriter.cached(config: config, environment: "production", cache: cache, home: ops.path))
        // Every recipient's key swapped for the admin's, under the recipient's name.
        let admin = try #require(writer.facts.keys["ops"])
        let wrong = Dictionary(uniqueKeysWithValues: writer.environment.recipients.map { ($0, admin) })
        let early = SlotWriter.EarlyDataKey(
            keys: wrong, pending: SlotWriter.encryptedDataKey(names: wrong.keys.sorted(), keys: wrong, bundle: "bundle"))
        let swapped = SlotWriter(
            facts: writer.facts, environment: writer.environment, file: writer.file, home: writer.home, passphrase: nil,
            cache: cache, verification: writer.verification, early: early)
        #expect(try swapped.write(.upsert([("APP_ID", SecureBytes("77"))]), plugin: "github", user: nil, as: "ops") != nil)
        let runtime = try deployment.home(["runtime-production"])
        let read = try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: runtime)
        #expect(read.status == 0)
        #expect(read.stdoutText == "77")
    }
}
