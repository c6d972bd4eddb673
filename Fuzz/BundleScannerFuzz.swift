// libFuzzer target: the bundle scanner (parallel chunks over unsafe
// buffers) against the simple serial parse. Any input must give both the
// same verdict, and, when both accept it, the same bundle; a crash, a
// memory error (AddressSanitizer) or a disagreement stops the fuzzer.
//
//     scripts/fuzz bundle-scanner 600
import BundleFormat

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBundleScanner(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let scanned = try? ScannedBundle(scanning: bytes)
    let parsed = try? SecretBundle(parsing: bytes)
    switch (scanned, parsed) {
    case (nil, nil):
        break
    case (let scan?, let bundle?):
        if scan.materialized() != bundle { fatalError("the scanner and the serial parse read different bundles") }
    default:
        fatalError("the scanner and the serial parse disagree: scanner \(scanned == nil ? "refused" : "accepted")")
    }
    return 0
}
