// libFuzzer target: a key file as `secretc check` and `set` read it without
// gpg — armor, the packet scan that lists primary fingerprints, and the
// Curve25519 encryption-subkey reader that `set` encrypts data keys with.
// Any input must be accepted or refused, never a crash or a memory error.
//
//     scripts/fuzz openpgp-key-file 600
import GPG

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpenPGPKeyFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let file = try? KeyFile(scanning: bytes) {
        guard file.primaryKeyCount > 0, file.fingerprints.allSatisfy({ $0.utf8.count == 40 }) else {
            fatalError("a key file accepted without a well-formed primary key")
        }
    }
    // The subkey asked for need not exist: every subkey packet is parsed before
    // its fingerprint is compared.
    _ = Cv25519Recipient(keyData: bytes, subkey: "0000000000000000000000000000000000000000")
    return 0
}
