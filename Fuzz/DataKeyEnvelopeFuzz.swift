// libFuzzer target: the OpenPGP packet reader that looks at a data-key
// message before gpg may (session keys, then one encrypted packet). Any
// input must be accepted or refused, never a crash or a memory error; an
// accepted one names at least one recipient key id of 16 hex digits.
//
//     scripts/fuzz data-key-envelope 600
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDataKeyEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let envelope = try? DataKeyEnvelope(parsing: bytes) {
        guard !envelope.recipientKeyIDs.isEmpty, envelope.recipientKeyIDs.allSatisfy({ $0.utf8.count == 16 }) else {
            fatalError("an accepted message without a well-formed recipient key id")
        }
    }
    return 0
}
