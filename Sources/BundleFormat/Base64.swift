import Foundation

/// Standard base64 with padding (RFC 4648 §4), strictly decoded.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// nil unless `text` is canonical base64 (re-encoding gives it back).
    static func decode(_ field: ArraySlice<UInt8>) -> [UInt8]? {
        guard !field.isEmpty, field.count % 4 == 0, let data = Data(base64Encoded: Data(field)) else { return nil }
        return Array(data)
    }
}
