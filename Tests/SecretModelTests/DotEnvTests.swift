import SecretCore
import Testing

/// The dotenv reader `secretc import dotenv` uses, case by case.
@Suite("dotenv as dotenv defines it")
struct DotEnvTests {
    private func values(_ text: String) throws -> [String: String] {
        let parsed = try DotEnv(parsing: Array(text.utf8))
        return Dictionary(uniqueKeysWithValues: parsed.entries.map { ($0.key, String(decoding: $0.value, as: UTF8.self)) })
    }

    @Test func formsOfAValue() throws {
        let text = """
            # a comment
            export A=plain value   # trailing comment
            B = spaced
            C='single # kept \\n as written'
            D="double\\tescaped\\n\\"quoted\\" \\\\ done" # comment
            E="two
            lines"
            F=no#comment
            G=

            """
        let parsed = try values(text)
        #expect(parsed["A"] == "plain value")
        #expect(parsed["B"] == "spaced")
        #expect(parsed["C"] == "single # kept \\n as written")
        #expect(parsed["D"] == "double\tescaped\n\"quoted\" \\ done")
        #expect(parsed["E"] == "two\nlines")
        #expect(parsed["F"] == "no#comment")
        #expect(parsed["G"] == "")
        #expect(parsed.count == 7)
    }

    @Test(arguments: [
        ("A=1\nA=2\n", 2, 1, "A is set twice; the first is at line 1"),
        ("A=\"open\n", 1, 3, "the value of A has no closing \""),
        ("A='x' trailing\n", 1, 7, "text after the quoted value of A"),
        ("lower=1\n", 1, 1, "the key 'lower' is not a secret key name"),
        ("JUSTTEXT\n", 1, 1, "a line without KEY="),
        ("A=${B}\n", 1, 3, "the value of A uses ${…} expansion"),
        ("exportH=1\n", 1, 1, "the key 'exportH' is not a secret key name"),
    ])
    func problemsAreLocated(_ text: String, _ line: Int, _ column: Int, _ says: String) {
        #expect {
            try DotEnv(parsing: Array(text.utf8))
        } throws: { error in
            guard let problem = error as? DotEnv.Problem else { return false }
            return problem.line == line && problem.column == column && problem.message.hasPrefix(says)
        }
    }

    /// A file edited on Windows, or saved with a byte-order mark, means what
    /// it says on Linux: line ends are line ends inside quotes too.
    @Test func windowsLineEndsAndAByteOrderMark() throws {
        let parsed = try values("\u{FEFF}A=plain\r\nB=\"q\r\nx\"\r\nC='y\r\nz'\r\n")
        #expect(parsed == ["A": "plain", "B": "q\nx", "C": "y\nz"])
    }
}
