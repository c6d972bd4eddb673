// libFuzzer target: the plugin manifest reader (JSON, then the secret
// schema and its patterns). Any input must end in diagnostics or a
// manifest, never a crash or a memory error.
//
//     scripts/fuzz manifest 600
import Foundation
import SecretModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = Manifest.parse(SourceFile(url: URL(fileURLWithPath: "/nonexistent/fuzz/manifest.json"), text: text))
    return 0
}
