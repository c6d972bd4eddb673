import BundleFormat
import BundleSeal
import Foundation
@testable import SecretKernel
import TestSupport
import Testing

/// Finding 3 as a property: on generated bundles of 1 to 5,000 claims in
/// one epoch, with names built to collide in sort order (prefixes, digits,
/// `_`, and owners with `.` and `-`), the in-process path and the
/// step-by-step path agree — both serve every value, and both refuse the
/// same bundle with two values swapped.
@Suite("SecretKernel: fast and step-by-step paths agree on generated claims")
struct ClaimOrderPropertyTests {
    /// Owners whose ids are prefixes of each other or differ in `.`/`-`; all share alice's key.
    static let owners: [String?] = [nil, "alice", "al", "al.1", "al-1", "al1", "al10", "al_"]
    static let plugins = ["github", "shopify", "stripe"]

    /// A key made to collide: a short stem, then digits and underscores.
    static func key(_ random: inout SplitMix64) -> String {
        let stems = ["K", "K1", "KA", "A", "K_"]
        var key = stems[Int(random.next() % UInt64(stems.count))]
        for _ in 0..<Int(random.next() % 4) { key += ["0", "1", "9", "_", "A"][Int(random.next() % 5)] }
        return key
    }

    @Test(arguments: [1, 2, 63, 64, 65, 1_023, 1_024, 1_025, 2_500, 5_000])
    func bothPathsAgree(claims: Int) throws {
        let fixture = try KernelFixture()
        var random = SplitMix64(seed: UInt64(claims))
        var bundle = try SecretBundle(parsing: fixture.bytes)
        let aliceKey = bundle.users["alice"]!
        for owner in Self.owners.compactMap({ $0 }) where bundle.users[owner] == nil { bundle.users[owner] = aliceKey }
        var taken = Set(bundle.slots.map(\.slot))
        var values: [SlotKey: String] = [:]
        while values.count < claims {
            let slot = SlotKey(
                owner: Self.owners[Int(random.next() % UInt64(Self.owners.count))],
                plugin: Self.plugins[Int(random.next() % UInt64(Self.plugins.count))], key: Self.key(&random))
            guard taken.insert(slot).inserted else { continue }
            // One variable per plugin key, as the format requires.
            let env = bundle.slots.first { $0.slot.plugin == slot.plugin && $0.slot.key == slot.key }?.attributes.env
                ?? "P_\(slot.plugin.uppercased().replacingOccurrences(of: "-", with: "_"))_\(slot.key)"
            bundle.slots.append(SlotLine(slot: slot, value: nil, attributes: SlotAttributes(env: env)))
            values[slot] = "value-\(values.count)"
        }
        bundle.slots.sort { $0.slot < $1.slot }
        let written = try fixture.written(values, onto: try fixture.resigned(bundle.serialized()) { _ in })

        for inProcess in [true, false] {
            var configuration = fixture.configuration(.bytes(written))
            configuration.verifiesInProcess = inProcess
            let kernel = try SecretKernel(configuration)
            for (slot, value) in values {
                #expect(try kernel.slotValue(plugin: slot.plugin, key: slot.key, of: SecretOwner(user: slot.owner)).value == value, "\(slot)")
            }
        }
        _ = try BundleVerifier(trustedAdmins: [KernelFixture.admin]).verify(try SecretBundle(parsing: written))

        // Two values swapped between slots: both paths refuse.
        guard claims >= 2 else { return }
        var swapped = try SecretBundle(parsing: written)
        let filled = swapped.slots.indices.filter { values[swapped.slots[$0].slot] != nil }
        let (first, second) = (filled[0], filled[filled.count - 1])
        (swapped.slots[first].value, swapped.slots[second].value) = (swapped.slots[second].value, swapped.slots[first].value)
        for inProcess in [true, false] {
            var configuration = fixture.configuration(.bytes(swapped.serialized()))
            configuration.verifiesInProcess = inProcess
            #expect(throws: SecretKernelError.self) { try SecretKernel(configuration) }
        }
        #expect(throws: BundleSealError.self) {
            try BundleVerifier(trustedAdmins: [KernelFixture.admin]).verify(swapped)
        }
    }
}
