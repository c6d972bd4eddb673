import BundleFormat
import Foundation
import SecretKernel
import Testing

/// Epochs of 1,024 claims or more are checked by walking their claims in
/// step with the slot lines, unless some names sort differently as claims
/// (`shop` and `shop-x`); both ways must find every slot's latest claim and
/// refuse the same tampering.
@Suite struct LargeEpochTests {
    let fixture: KernelFixture

    init() throws { fixture = try KernelFixture() }

    /// 1,100 deployment-wide GitHub slots, each set by one admin epoch, then
    /// `K0500` set again by a second, small one; `plugins` adds a slot of each.
    private func bundle(plugins: [String] = []) throws -> (bytes: [UInt8], first: [UInt8], keys: [SlotKey]) {
        let keys = (0..<1_100).map { SlotKey(owner: nil, plugin: "github", key: String(format: "K%04d", $0)) }
            + plugins.map { SlotKey(owner: nil, plugin: $0, key: "TOKEN") }
        let declared = try fixture.resigned { bundle in
            for key in keys {
                let variable = "\(key.plugin)_\(key.key)".uppercased().replacingOccurrences(of: "-", with: "_")
                bundle.slots.append(SlotLine(slot: key, value: nil, attributes: SlotAttributes(env: variable)))
            }
            bundle.slots.sort { $0.slot < $1.slot }
        }
        let first = try fixture.written(Dictionary(uniqueKeysWithValues: keys.map { ($0, "first-\($0.plugin)-\($0.key)") }), onto: declared)
        return (try fixture.written([keys[500]: "second"], onto: first), first, keys)
    }

    @Test(arguments: [[], ["shop", "shop-x"]])
    func servesEachSlotsLatestValue(plugins: [String]) throws {
        let (bytes, _, keys) = try bundle(plugins: plugins)
        let logs = CapturedLogs()
        let kernel = try SecretKernel(fixture.configuration(.bytes(bytes), logger: logs.logger))
        #expect(!logs.all.contains { $0.contains("step by step") })
        for (index, key) in keys.enumerated() {
            let expected = index == 500 ? "second" : "first-\(key.plugin)-\(key.key)"
            #expect(kernel.getSecret(plugin: key.plugin, key: key.key, for: .deployment) == expected, "\(key)")
        }
        #expect(try kernel.status(plugin: "github", for: .deployment).setKeys.count == 1_100 + 2)  // and the example's APP_ID, TOKEN
    }

    @Test(arguments: [[], ["shop", "shop-x"]])
    func refusesRestoredDroppedAndUnclaimedValues(plugins: [String]) throws {
        let (bytes, first, keys) = try bundle(plugins: plugins)
        let bundle = try SecretBundle(parsing: bytes)
        #expect(bundle.epochs.contains { $0.claims.count > 1_000 })
        let position = { (key: SlotKey) in bundle.slots.firstIndex { $0.slot == key }! }
        var restored = bundle  // K0500 back to the large epoch's value, which the later one superseded
        restored.slots[position(keys[500])].value = try SecretBundle(parsing: first).slots[position(keys[500])].value
        var dropped = bundle
        dropped.slots[position(keys[7])].value = nil
        var moved = bundle
        moved.slots[position(keys[8])].value = bundle.slots[position(keys[9])].value
        // An admin removes a slot line that the large epoch still claims.
        let unclaimed = try SecretBundle(parsing: fixture.resigned(bytes) { $0.slots.removeAll { $0.slot == keys[900] } })
        for (name, tampered) in [("restored", restored), ("dropped", dropped), ("moved", moved), ("unclaimed", unclaimed)] {
            #expect(throws: SecretKernelError.self, "\(name)") {
                try SecretKernel(fixture.configuration(.bytes(tampered.serialized())))
            }
        }
    }
}
