import BundleFormat
import Foundation
import Testing

/// Writers splice a verified bundle instead of serializing it again: the
/// result must be exactly what the canonical writer produces.
@Suite("splicing a bundle")
struct BundleSpliceTests {
    /// The valid vector's bundle, and the same bundle grown to thousands of slots.
    static func bundles() throws -> [[UInt8]] {
        let vector = Array(try Data(contentsOf: BundleVectorTests.folder.appendingPathComponent("valid.txt")))
        let split = try #require(vector.firstRange(of: Array("\n\n".utf8)))
        let small = Array(vector[split.upperBound...])
        var large = try SecretBundle(parsing: small)
        for index in 0..<3_000 {
            for key in ["A_KEY", "B_KEY"] {
                large.slots.append(SlotLine(
                    slot: SlotKey(owner: "u\(String(index).leftPadded(5))", plugin: "shop", key: key), value: nil,
                    attributes: SlotAttributes(env: "SHOP_\(key)", reserved: index.isMultiple(of: 7))))
            }
        }
        large.slots.sort { $0.slot < $1.slot }
        return [small, large.serialized()]
    }

    @Test func splicingMatchesTheCanonicalWriter() throws {
        for bytes in try Self.bundles() {
            let bundle = try SecretBundle(parsing: bytes)
            let splice = try BundleSplice(bytes)
            #expect(splice.latestEpochTime == bundle.epochs.map(\.time).max() ?? 0)
            #expect(splice.heads == bundle.epochs.heads)
            #expect(splice.policySerial == bundle.policySerial)
            #expect(splice.policySignature == bundle.policy?.signature)
            // Every slot line is found where the canonical order puts it.
            for line in bundle.slots.prefix(50) + bundle.slots.suffix(50) {
                let found = try #require(try splice.slot(line.slot))
                #expect(found.slot == line.slot)
                #expect(found.attributes == line.attributes)
                #expect(found.hasValue == (line.value != nil))
            }
            #expect(try splice.slot(SlotKey(owner: "zz-nobody", plugin: "shop", key: "A_KEY")) == nil)
            #expect(try splice.slot(SlotKey(owner: nil, plugin: "aaa", key: "A")) == nil)

            // One new epoch that sets the first and last slot and deletes one with a value.
            var epoch = Epoch(
                time: splice.latestEpochTime + 1, id: "00112233445566ff", writer: String(repeating: "A", count: 40),
                policy: PolicyReference(serial: splice.policySerial, id: String(repeating: "0", count: 64)),
                parents: .after(splice.heads), dataKeyMessage: [1, 2, 3], signature: [4, 5, 6], claims: [])
            var expected = bundle
            var changes: [(slot: BundleSplice.Slot, field: [UInt8])] = []
            let withValue = bundle.slots.firstIndex { $0.value != nil }
            for index in Set([0, bundle.slots.count - 1] + (withValue.map { [$0] } ?? [])) {
                let value = index == withValue ? nil : SealedValue(epoch: epoch.id, bytes: Array(repeating: UInt8(index % 251), count: 40))
                expected.slots[index].value = value
                epoch.claims.append(Claim(slot: bundle.slots[index].slot, digest: value.map { _ in Array(repeating: 7, count: 32) }))
                changes.append((try #require(try splice.slot(bundle.slots[index].slot)), SealedValue.field(value)))
            }
            epoch.claims = Claim.sorted(epoch.claims)
            expected.epochs.append(epoch)
            var line: [UInt8] = []
            epoch.appendLine(to: &line)
            let spliced = Array(splice.spliced(epochLine: line, values: changes).joined())
            #expect(spliced == expected.serialized())
            #expect(try SecretBundle(parsing: spliced) == expected)
        }
    }

    @Test func anOwnersSlotsOfAPluginAreFoundTogether() throws {
        let bytes = try Self.bundles()[1]
        let bundle = try SecretBundle(parsing: bytes)
        let splice = try BundleSplice(bytes)
        for owner in ["u00000", "u01234", "u02999"] {
            let found = try splice.slots(owner: owner, plugin: "shop")
            #expect(found.map(\.slot) == bundle.slots.filter { $0.slot.owner == owner && $0.slot.plugin == "shop" }.map(\.slot))
            #expect(found.count == 2)
        }
        #expect(try splice.slots(owner: "u03000", plugin: "shop").isEmpty)
        #expect(try splice.slots(owner: nil, plugin: "nothing").isEmpty)
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
