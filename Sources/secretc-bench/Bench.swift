import ArgumentParser
import Foundation

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secretc-bench",
        abstract: "Benchmarks for secretc (build with -c release).",
        subcommands: [CheckBenchmark.self, SetBenchmark.self, LoadBenchmark.self, Dataset.self, GenerateProject.self]
    )
}

/// Wall-clock timing and medians.
enum Clock {
    /// Seconds taken by `body`.
    static func time(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count.isMultiple(of: 2)
            ? (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2 : sorted[sorted.count / 2]
    }

    static func milliseconds(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }
}

/// Runs a program to completion with its output discarded; returns its exit status.
@discardableResult
func runQuietly(_ executable: String, _ arguments: [String], directory: URL? = nil, input: Data? = nil) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    let pipe = Pipe()
    process.standardInput = input == nil ? FileHandle.nullDevice : pipe
    try process.run()
    if let input {
        pipe.fileHandleForWriting.write(input)
        try? pipe.fileHandleForWriting.close()
    }
    process.waitUntilExit()
    return process.terminationStatus
}

/// The built `secretc` next to this benchmark binary.
var secretcExecutable: String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("secretc").path
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Writes benchmark results for scripts (`--json PATH`).
func writeResults(_ results: [String: Double], to path: String?) throws {
    guard let path else { return }
    let json = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
    try json.write(to: URL(fileURLWithPath: path), options: .atomic)
}
