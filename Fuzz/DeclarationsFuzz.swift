// libFuzzer target: the secretc.yaml reader (YAML composition through
// libyaml, then the declarations). Any input must end in diagnostics or
// declarations, never a crash or a memory error.
//
//     scripts/fuzz declarations 600
import Foundation
import SecretModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeclarations(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = Declarations.parse(SourceFile(url: URL(fileURLWithPath: "/nonexistent/fuzz/secretc.yaml"), text: text))
    return 0
}
