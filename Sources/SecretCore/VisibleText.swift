/// Text from files a pull request controls (manifest names, help, `env`,
/// quoted lines), made safe to print: every control character and every
/// bidirectional-formatting character is shown as `\u{…}` instead of acting
/// on the terminal (ESC sequences), starting a new line (a forged
/// `::error` annotation) or reordering what the reader sees.
public enum VisibleText {
    public static func escaped(_ text: String, keepingTabs: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { isHidden($0, keepingTabs) }) else { return text }
        var out = ""
        for scalar in text.unicodeScalars {
            if isHidden(scalar, keepingTabs) {
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private static func isHidden(_ scalar: Unicode.Scalar, _ keepingTabs: Bool) -> Bool {
        if keepingTabs, scalar == "\t" { return false }
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true  // C0, DEL, C1
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidirectional formatting
        case 0x2028, 0x2029: return true  // line and paragraph separators: a new line to some readers
        default: return false
        }
    }

    /// JSON text (as an encoder writes it, with those characters raw in its
    /// strings) with every hidden character above ASCII written as a `\uXXXX`
    /// escape: the same data to a JSON reader, nothing that acts on a
    /// terminal or a log viewer. (ASCII controls are escaped by the encoder.)
    public static func jsonEscaped(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { $0.value >= 0x80 && isHidden($0, true) }) else { return json }
        var out = ""
        for scalar in json.unicodeScalars {
            if scalar.value >= 0x80, isHidden(scalar, true) {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
