// libFuzzer target: a principal's public key as a bundle's `key` line holds
// it, read by the in-process Ed25519 key reader (packets, self-signatures,
// expiry, revocation) and then asked to check a fixed signature. Any input
// must be accepted or refused, never a crash or a memory error.
//
//     scripts/fuzz openpgp-signing-key 600
import Foundation
import GPG

private let signed = Array("secretc fuzz: the signed data\n".utf8)
private let signature: [UInt8] = {
    guard let bytes = FileManager.default.contents(atPath: "Fuzz/corpus/openpgp-signature/alice.sig") else {
        fatalError("run from the repository: Fuzz/corpus/openpgp-signature/alice.sig is the fixed signature")
    }
    return Array(bytes)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpenPGPSigningKey(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let key = Ed25519SigningKey(transferable: bytes) else { return 0 }
    guard key.fingerprint.utf8.count == 40 else { fatalError("a key read with a malformed fingerprint") }
    _ = key.check(signature: signature, over: signed)
    return 0
}
