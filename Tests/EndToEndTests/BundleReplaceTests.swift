import Foundation
import SecretCompiler
import TestSupport
import Testing

/// Replacing a bundle file: atomically, and over the spare a writer keeps
/// of the version it replaced, never over a file that has another name.
@Suite("bundle file replacement and its spare")
struct BundleReplaceTests {
    private func inode(_ path: String) -> UInt64? {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    private func contents(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    /// Every file in `folder` but `keep`.
    private func leftovers(_ folder: URL, keep: Set<String>) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { !keep.contains($0) }.sorted()
    }

    @Test func theReplacedVersionIsKeptAndWrittenOverNextTime() throws {
        let scratch = try TemporaryDirectory()
        let bundles = scratch.url.appendingPathComponent("secrets"), cache = scratch.url.appendingPathComponent("cache")
        try FileManager.default.createDirectory(at: bundles, withIntermediateDirectories: true)
        let url = bundles.appendingPathComponent("production.bundle")
        let spare = try #require(WriteCache(folder: cache).spare(for: url))
        let file = BundleFile(url: url)

        // The first version: no earlier one to keep.
        try file.replace(with: Array("one\n".utf8), spare: spare)
        #expect(try contents(url) == Array("one\n".utf8))
        #expect(!FileManager.default.fileExists(atPath: spare.path))
        let first = try #require(inode(url.path))

        // The second: a new file, and the first kept as the spare (linked, not copied).
        try file.replace(with: [Array("two, ".utf8)[...], Array("longer\n".utf8)[...]], spare: spare)
        #expect(try contents(url) == Array("two, longer\n".utf8))
        #expect(inode(spare.path) == first)
        let second = try #require(inode(url.path))

        // The third is written over the first's blocks, cut to its length,
        // and the second becomes the spare.
        let identity = try file.replace(with: Array("3\n".utf8), spare: spare)
        #expect(try contents(url) == Array("3\n".utf8))
        #expect(inode(url.path) == first)
        #expect(inode(spare.path) == second)
        #expect(try contents(spare) == Array("two, longer\n".utf8))
        // What a writer records is the file now at the path.
        #expect(file.read(ifIdentity: try #require(identity)) == Array("3\n".utf8))
        #expect(try leftovers(bundles, keep: ["production.bundle"]).isEmpty, "no temporary file is left")
        #expect(try leftovers(cache, keep: [spare.lastPathComponent]).isEmpty)
    }

    @Test func aFileWithAnotherNameIsNeverWrittenOver() throws {
        let scratch = try TemporaryDirectory()
        let url = scratch.url.appendingPathComponent("production.bundle")
        let spare = try #require(WriteCache(folder: scratch.url.appendingPathComponent("cache")).spare(for: url))
        let file = BundleFile(url: url)
        try file.replace(with: Array("one\n".utf8), spare: spare)
        // Someone keeps the first version under another name (cp -l, a backup tool).
        let backup = scratch.url.appendingPathComponent("backup.bundle")
        #expect(link(url.path, backup.path) == 0)
        try file.replace(with: Array("two\n".utf8), spare: spare)
        #expect(inode(spare.path) == inode(backup.path), "the first version is the spare, and has two names")
        try file.replace(with: Array("three\n".utf8), spare: spare)
        try file.replace(with: Array("four\n".utf8), spare: spare)
        #expect(try contents(backup) == Array("one\n".utf8), "a file with another name is left as it was")
        #expect(try contents(url) == Array("four\n".utf8))
    }

    @Test func aSpareOnAnotherFileSystemIsNotUsed() throws {
        // /dev/shm is a tmpfs on Linux: no link or rename reaches it from the project's disk.
        let shm = URL(fileURLWithPath: "/dev/shm")
        var disk = stat(), memory = stat()
        try #require(stat(shm.path, &memory) == 0)
        let scratch = try TemporaryDirectory()
        try #require(stat(scratch.path, &disk) == 0)
        guard disk.st_dev != memory.st_dev else { return }  // nothing to show where both are one file system
        let cache = shm.appendingPathComponent("secretc-spare-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let url = scratch.url.appendingPathComponent("production.bundle")
        let spare = try #require(WriteCache(folder: cache).spare(for: url))
        for text in ["one\n", "two\n", "three\n"] {
            try BundleFile(url: url).replace(with: Array(text.utf8), spare: spare)
            #expect(try contents(url) == Array(text.utf8))
        }
        #expect(!FileManager.default.fileExists(atPath: spare.path))
        #expect(try leftovers(scratch.url, keep: ["production.bundle"]).isEmpty)
    }

    /// End to end: writes through `secretc set` keep a spare in the write
    /// cache, and what they leave verifies.
    @Test func setWritesOverItsSpare() throws {
        let deployment = try ExampleDeployment()
        let ops = try deployment.home(["ops"])
        let bundle = deployment.root.appendingPathComponent("secrets/production.bundle")
        let spare = try #require(deployment.writeCache.spare(for: bundle))
        for value in ["1", "2", "3"] {
            let before = try #require(inode(bundle.path))
            #expect(try deployment.secretc(["set", "github", "--env", "production", "APP_ID=\(value)"], home: ops).status == 0)
            #expect(inode(spare.path) == before, "the replaced version is the spare")
        }
        #expect(try deployment.secretc(["check"]).status == 0)
        let runtime = try deployment.home(["runtime-production"])
        #expect(try deployment.secretc(["get", "github", "APP_ID", "--env", "production"], home: runtime).stdoutText == "3")
    }
}
