import Foundation

/// Runs the built `secretc` executable, as a user would.
public enum Secretc {
    /// The package's root folder.
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `secretc` built next to the running test bundle.
    public static var executable: String { built("secretc") }

    /// An executable of the package (`secretc`, `gridos-service`) built next to the running test bundle.
    public static func built(_ name: String) -> String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundle, bundle.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return packageRoot.appendingPathComponent(".build/debug/\(name)").path
    }

    /// Runs `secretc arguments` in `directory` with a clean, colourless environment.
    public static func run(
        _ arguments: [String], in directory: String? = nil, input: [UInt8]? = nil, environment extra: [String: String] = [:]
    ) throws -> ProcessResult {
        // No write cache unless a test asks for one: never the user's own.
        var environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "NO_COLOR": "1", "SECRETC_CACHE_DIR": "",
        ]
        if let home = ProcessInfo.processInfo.environment["HOME"] { environment["HOME"] = home }
        environment.merge(extra) { _, new in new }
        return try TestSupport.run(executable, arguments, input: input, environment: environment, directory: directory)
    }
}

/// A scratch folder removed when the value dies.
public final class TemporaryDirectory: @unchecked Sendable {
    public let url: URL
    public var path: String { url.path }

    public init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("secretc-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Copies a folder of the package (e.g. `examples/gridos`) in, returning its copy.
    public func copy(_ relative: String) throws -> URL {
        let destination = url.appendingPathComponent(URL(fileURLWithPath: relative).lastPathComponent)
        try FileManager.default.copyItem(at: Secretc.packageRoot.appendingPathComponent(relative), to: destination)
        return destination
    }

    /// Replaces `old` by `new` (once) in a file below the folder.
    public func edit(_ relative: String, replacing old: String, with new: String) throws {
        let file = url.appendingPathComponent(relative)
        let text = try String(contentsOf: file, encoding: .utf8)
        guard let range = text.range(of: old) else { throw TestSupportError("'\(old)' not in \(relative)") }
        try text.replacingCharacters(in: range, with: new).write(to: file, atomically: true, encoding: .utf8)
    }
}
