import Testing
import Units

@Suite("Times as the command line writes them")
struct TimeSpanTests {
    @Test("100ms, 2s, 1.5m, 1h, 250us and bare numbers (seconds) read as seconds; nonsense and negatives are refused")
    func times() throws {
        let cases: [(String, Double)] = [("100ms", 0.1), ("2s", 2), ("1.5m", 90), ("1h", 3600), ("250us", 0.00025), ("30", 30), ("0.5", 0.5), (" 2min ", 120), ("0", 0)]
        for (text, seconds) in cases {
            #expect(abs(try TimeSpan.seconds(parsing: text) - seconds) < 1e-12, "\(text)")
        }
        for bad in ["5x", "ms", "", "-1s", "1.5.2s"] {
            #expect(throws: TimeSpan.ParseError.self, "\(bad)") { try TimeSpan.seconds(parsing: bad) }
        }
    }
}
