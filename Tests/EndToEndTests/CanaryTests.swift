import Foundation
import TestSupport
import Testing

/// Issue: nothing leaked. Distinctive values go in through every input form
/// (`KEY=VALUE`, `KEY=@file`, standard input); then every output of every
/// command (text, JSON, GitHub formats, errors), every file under the
/// project, the write cache and the trusted state is searched: a value is
/// found only where it was asked for (`get`'s standard output, `exec`'s
/// child).
@Suite("canaries: values only where asked for")
struct CanaryTests {
    @Test func valuesAppearOnlyWhereAskedFor() throws {
        let deployment = try ExampleDeployment()
        let tag = String(UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12))
        let canaries = [
            "github_pat_CANARYargv\(tag)0000", "CANARYfile\(tag)".lowercased() + ".myshopify.com",
            "sk_live_CANARYstdin\(tag)",
        ]
        let alice = try deployment.home(["alice"])
        let ops = try deployment.home(["ops", "runtime-production"])
        let input = deployment.scratch.url.appendingPathComponent("value-input")
        try Data((canaries[1] + "\n").utf8).write(to: input)
        var outputs: [(what: String, text: String)] = []
        func run(_ arguments: [String], home: TemporaryGPGHome, stdin: String? = nil) throws -> ProcessResult {
            let result = try deployment.secretc(arguments, home: home, input: stdin)
            outputs.append((arguments.joined(separator: " "), result.stdoutText + result.stderrText))
            return result
        }
        #expect(try run(["set", "github", "--user", "alice", "--env", "production", "TOKEN=\(canaries[0])"], home: alice).status == 0)
        #expect(try run(["set", "shopify", "--user", "alice", "--env", "production", "STORE_DOMAIN=@\(input.path)"], home: alice)
            .status == 0)
        #expect(try run(["set", "stripe", "--user", "bob", "--env", "production", "SECRET_KEY"], home: ops, stdin: canaries[2] + "\n")
            .status == 0)
        // Refused writes, misuse, and every report.
        _ = try run(["set", "github", "--user", "alice", "--env", "production", canaries[0]], home: alice)
        _ = try run(["set", "github", "--user", "alice", "--env", "production", "TOKEN=\(canaries[2])"], home: alice)
        _ = try run(["set", "github", "--user", "alice", "--env", "production", "TOKN=\(canaries[0])"], home: alice)
        for format in ["text", "json", "github"] { _ = try run(["check", "--format", format], home: alice) }
        for format in ["text", "json"] { _ = try run(["status", "--format", format], home: alice) }
        _ = try run(["compile", "--env", "production", "--reseal"], home: ops)
        let state = deployment.scratch.url.appendingPathComponent("production.state").path
        let exec = try deployment.secretc(
            ["exec", "--env", "production", "--user", "alice", "--state", state, "--", "/bin/sh", "-c", "echo \"$GITHUB_TOKEN\""],
            home: ops)
        #expect(exec.stdoutText == canaries[0] + "\n", "the child is where it was asked for")
        outputs.append(("exec's own error output", exec.stderrText))
        let get = try deployment.secretc(["get", "stripe", "SECRET_KEY", "--user", "bob", "--env", "production"], home: ops)
        #expect(get.stdoutText == canaries[2], "get's output is where it was asked for")
        outputs.append(("get's error output", get.stderrText))

        for (what, text) in outputs {
            for canary in canaries { #expect(!text.contains(canary), "\(what)") }
        }
        // Every file written under the scratch folder (the project, the write
        // cache, the trusted state), but the one the value was read from.
        let files = FileManager.default.enumerator(at: deployment.scratch.url, includingPropertiesForKeys: [.isRegularFileKey])!
        var searched = 0
        for case let url as URL in files where url.path != input.path {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                  let data = try? Data(contentsOf: url)
            else { continue }
            searched += 1
            let text = String(decoding: data, as: UTF8.self)
            for canary in canaries { #expect(!text.contains(canary), "\(url.path)") }
        }
        #expect(searched > 20)
        #expect(FileManager.default.fileExists(atPath: state))
    }
}
