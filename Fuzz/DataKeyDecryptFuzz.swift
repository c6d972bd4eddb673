// libFuzzer target: the in-process data-key decryptor, a parser of hostile
// bytes that runs before any value is opened. Inputs are data-key messages
// (seeded with every epoch's in the bundle vectors), decrypted with the
// example's runtime key; an input starting with "K" is read as a secret key
// instead. Any input must be opened, declined or refused — never a crash, a
// memory error, or a plaintext longer than the limit.
//
//     scripts/fuzz data-key-decrypt 600
import Foundation
import GPG

private let decryptor: Cv25519Decryptor = {
    let path = "examples/gridos/example-secret-keys/runtime-production.EXAMPLE-ONLY.asc"
    guard let key = FileManager.default.contents(atPath: path), let decryptor = Cv25519Decryptor(secretKeys: Array(key)) else {
        fatalError("run from the repository: \(path) must hold an unprotected Curve25519 key")
    }
    return decryptor
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDataKeyDecrypt(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if bytes.first == UInt8(ascii: "K") {
        _ = Cv25519Decryptor(secretKeys: Array(bytes.dropFirst()))
        return 0
    }
    if case .plaintext(let plaintext) = decryptor.decrypt(bytes, limit: 32), plaintext.count > 32 {
        fatalError("a plaintext longer than the limit")
    }
    return 0
}
