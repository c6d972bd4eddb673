// libFuzzer target: a detached signature as a bundle's `sig` line holds it,
// read by the canonical-form check and by the in-process Ed25519 verifier.
// Any input must be accepted or refused, never a crash or a memory error;
// a signature the verifier calls good must also be in canonical form.
//
//     scripts/fuzz openpgp-signature 600
import Foundation
import GPG

private let signed = Array("secretc fuzz: the signed data\n".utf8)
private let signer: Ed25519SigningKey = {
    guard let armored = FileManager.default.contents(atPath: "examples/gridos/keys/alice.asc"),
          let binary = try? KeyFile.binary(from: Array(armored)),
          let key = Ed25519SigningKey(transferable: binary)
    else { fatalError("run from the repository: examples/gridos/keys/alice.asc is the signer") }
    return key
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpenPGPSignature(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let canonical = SignatureForm.isCanonical(bytes, over: signed)
    _ = SignatureForm.isCanonicalForm(ofCheckedSignature: bytes)
    if signer.check(signature: bytes, over: signed).status == .good, !canonical {
        fatalError("a good signature that is not in canonical form")
    }
    return 0
}
