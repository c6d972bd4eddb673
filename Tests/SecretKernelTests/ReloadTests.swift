import BundleFormat
import Foundation
import SecretKernel
import Synchronization
import TestSupport
import Testing

@Suite("SecretKernel: reloads under load")
struct ReloadTests {
    /// 8 threads look up values while 100 reloads alternate between two good
    /// bundles and bad ones: every lookup must return a value of a good bundle.
    @Test func lookupsNeverFailDuringReloads() throws {
        let fixture = try KernelFixture()
        let appID = SlotKey(owner: nil, plugin: "github", key: "APP_ID")
        // Good bundles that each extend the last (a reload never goes back):
        // APP_ID rotated back and forth.
        var chain = [try fixture.written([appID: "654321"])]
        for value in ["123456", "654321", "123456"] { chain.append(try fixture.written([appID: value], onto: chain.last!)) }
        let rotated = chain[0]
        let bad: [[UInt8]] = [
            Array(fixture.bytes.dropLast(5)),  // truncated
            try fixture.resigned { $0.slots[0].attributes.reserved = true }.map { $0 == UInt8(ascii: "+") ? UInt8(ascii: "/") : $0 },
            Array(String(decoding: rotated, as: UTF8.self).replacingOccurrences(of: "secretc-bundle 2", with: "secretc-bundle 9").utf8),
        ]
        let kernel = try SecretKernel(fixture.configuration())
        let stop = Atomic<Bool>(false)
        let lookups = Atomic<Int>(0)
        let wrong = Atomic<Int>(0)
        let expected = KernelFixture.values.filter { $0.key != "-/github/APP_ID" && !$0.key.hasPrefix("bob/") }
            .map { entry -> (String, String, String?, String) in
                let parts = entry.key.split(separator: "/").map(String.init)
                return (parts[1], parts[2], parts[0] == "-" ? nil : parts[0], entry.value)
            }
        let group = DispatchGroup()
        for thread in 0..<8 {
            DispatchQueue.global().async(group: group) {
                var index = thread
                while !stop.load(ordering: .relaxed) {
                    let (plugin, key, user, value) = expected[index % expected.count]
                    index += 1
                    if kernel.getSecret(plugin: plugin, key: key, for: SecretOwner(user: user)) != value { wrong.add(1, ordering: .relaxed) }
                    let app = kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment)
                    if app != "123456" && app != "654321" { wrong.add(1, ordering: .relaxed) }
                    lookups.add(2, ordering: .relaxed)
                }
            }
        }
        var refused = 0
        for round in 0..<100 {
            do {
                if round % 2 == 0 {
                    try kernel.reload(bytes: chain[min(round / 2, chain.count - 1)])
                } else {
                    try kernel.reload(bytes: bad[round % bad.count])
                }
            } catch {
                refused += 1
            }
        }
        stop.store(true, ordering: .relaxed)
        group.wait()
        #expect(refused == 50)
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(lookups.load(ordering: .relaxed) > 1000)
        #expect(kernel.getSecret(plugin: "github", key: "APP_ID", for: .deployment) == "123456")
    }
}
