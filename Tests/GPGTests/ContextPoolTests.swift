import Foundation
import GPG
import TestSupport
import Testing

@Suite("contexts kept per GnuPG home")
struct ContextPoolTests {
    @Test func lendsTheSameContextAgainPerHome() throws {
        let pool = ContextPool()
        let one = try TemporaryGPGHome()
        let two = try TemporaryGPGHome()
        let first = try pool.withContext(home: one.path) { ObjectIdentifier($0) }
        #expect(try pool.withContext(home: one.path) { ObjectIdentifier($0) } == first)
        let other = try pool.withContext(home: two.path) { context in
            #expect(context.home == two.path)
            return ObjectIdentifier(context)
        }
        #expect(other != first)
    }

    @Test func aBorrowerHoldsItsContextAlone() throws {
        let pool = ContextPool()
        let home = try TemporaryGPGHome()
        let (outer, inner) = try pool.withContext(home: home.path) { outer in
            (ObjectIdentifier(outer), try pool.withContext(home: home.path) { ObjectIdentifier($0) })
        }
        #expect(outer != inner, "a context lent out is not lent again before it comes back")
    }

    @Test func aPooledContextSeesTheHomeAsItIsNow() throws {
        let pool = ContextPool()
        let home = try TemporaryGPGHome()
        let writerHome = try TemporaryGPGHome()
        let plaintext = Array("whsec_9f2c".utf8)
        // Bound to the home while it holds no key at all.
        let first = try pool.withContext(home: home.path) { context throws in
            #expect(try context.listKeys().isEmpty)
            return ObjectIdentifier(context)
        }
        let fingerprint = try home.generateKey("runtime")
        let writer = try Context(home: writerHome.path)
        try writer.importKeys(Array(try home.exportPublic(fingerprint).utf8))
        let message = try writer.encrypt(plaintext, to: [fingerprint])
        try pool.withContext(home: home.path) { context throws in
            #expect(ObjectIdentifier(context) == first)
            #expect(try context.decrypt(message).utf8String() == "whsec_9f2c")
        }
    }

    @Test func aFailedOperationReturnsTheContext() throws {
        let pool = ContextPool()
        let home = try TemporaryGPGHome()
        let first = try pool.withContext(home: home.path) { ObjectIdentifier($0) }
        #expect(throws: GPGError.self) {
            try pool.withContext(home: home.path) { context in try context.decrypt(Array("not a message".utf8)) }
        }
        #expect(try pool.withContext(home: home.path) { ObjectIdentifier($0) } == first)
    }
}
