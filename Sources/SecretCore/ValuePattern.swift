import Foundation

/// A manifest `pattern`: an ICU regular expression that must match a value
/// as a whole. `set` checks it before writing; loaders check it again after
/// decrypting, since the signed policy carries it and a hand-signed value
/// may not have passed through `set`.
public struct ValuePattern: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe
    public let source: String
    private let regex: NSRegularExpression

    /// nil when `source` is not a valid regular expression.
    public init?(_ source: String) {
        // \A and \z: `$` would also match before a final newline.
        guard let regex = try? NSRegularExpression(pattern: "\\A(?:\(source))\\z") else { return nil }
        self.source = source
        self.regex = regex
    }

    public func matches(_ value: String) -> Bool {
        regex.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
    }
}
