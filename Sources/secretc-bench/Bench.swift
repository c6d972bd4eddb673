import ArgumentParser
import Foundation
import Glibc

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

/// Runs a program to completion with its output discarded; returns its exit
/// status. Spawned and reaped directly: Foundation's `Process` notices an
/// exit only at its next run-loop poll, which adds up to tens of
/// milliseconds to what a benchmark measures.
@discardableResult
func runQuietly(_ executable: String, _ arguments: [String], input: Data? = nil) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var pipe: [Int32] = [-1, -1]
    if input != nil {
        guard Glibc.pipe(&pipe) == 0 else { throw BenchFailure("pipe failed") }
        posix_spawn_file_actions_adddup2(&actions, pipe[0], 0)
        posix_spawn_file_actions_addclose(&actions, pipe[1])
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
    if input != nil { close(pipe[0]) }
    guard spawned == 0 else { throw BenchFailure("cannot run \(executable): \(String(cString: strerror(spawned)))") }
    if let input {
        input.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(pipe[1], buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
        close(pipe[1])
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw BenchFailure("waitpid failed") }
    }
    // WIFEXITED / WEXITSTATUS
    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
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
