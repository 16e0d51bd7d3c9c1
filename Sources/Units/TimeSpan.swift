/// A length of time written the way rates are: a number with an optional unit. `100ms`,
/// `2s`, `1.5m`, `1h`, `250us`; a bare number is seconds (`30`, `0.5`).
public enum TimeSpan {
    /// Why a time could not be read; `description` is a sentence for the user.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var text: String
        public var reason: String
        public var description: String { "'\(text)' is not a time: \(reason)" }
    }

    private static let units: [(suffix: String, seconds: Double)] = [
        ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("min", 60), ("s", 1), ("m", 60), ("h", 3600),
    ]

    /// Seconds in `text`; throws `ParseError` when it is not a time of zero or more.
    public static func seconds(parsing text: String) throws -> Double {
        let lowered = text.trimmingWhitespace().lowercased()
        var number = Substring(lowered)
        var factor = 1.0
        for unit in units where lowered.hasSuffix(unit.suffix) {
            number = lowered.dropLast(unit.suffix.count)
            factor = unit.seconds
            break
        }
        guard let value = Double(number), value.isFinite else {
            throw ParseError(text: text, reason: "expected a number with an optional unit ms, s, m or h (e.g. 100ms, 2s, 1.5m); a bare number is seconds")
        }
        guard value >= 0 else { throw ParseError(text: text, reason: "a time cannot be negative") }
        return value * factor
    }
}
