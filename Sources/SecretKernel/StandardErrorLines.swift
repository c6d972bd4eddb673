import Foundation
import Logging

/// A kernel's log as a command-line program shows it: the records of some
/// levels, one `secretc: LEVEL: message key=value …` line each on standard
/// error, control characters escaped (names come from the bundle). Never a
/// value: the kernel logs none. `secretc exec` and `get` show warnings (their
/// errors are thrown and reported); the C ABI shows warnings and errors.
public struct StandardErrorLines: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    private let levels: ClosedRange<Logger.Level>

    public init(levels: ClosedRange<Logger.Level> = .warning ... .critical) {
        self.levels = levels
        logLevel = levels.lowerBound
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        guard levels.contains(event.level) else { return }
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let text = ([event.message.description] + fields).joined(separator: " ")
        // write(2) itself: a closed standard error loses the line, never the process.
        var line = Array("secretc: \(event.level): \(VisibleText.escaped(text))\n".utf8)[...]
        while !line.isEmpty {
            let count = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return }
            line = line.dropFirst(count)
        }
    }
}
