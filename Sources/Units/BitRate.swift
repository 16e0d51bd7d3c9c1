/// A rate in bits per second. Decimal prefixes throughout: 1 kbit/s is 1000 bit/s, as in tc and
/// in the paper's tables.
///
/// Text forms follow tc's spelling of rates in *bits*: `640000`, `640000bit`, `320kbit`,
/// `1.5mbit`, `1gbit`. tc's `kbps`/`mbps` mean kilo*bytes* per second, a classic source of
/// eight-fold mistakes, so they are refused with a message saying which spelling to use.
public struct BitRate: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var bitsPerSecond: Double

    public init(bitsPerSecond: Double) {
        self.bitsPerSecond = bitsPerSecond
    }

    public static func kbit(_ value: Double) -> BitRate { BitRate(bitsPerSecond: value * 1_000) }
    public static func mbit(_ value: Double) -> BitRate { BitRate(bitsPerSecond: value * 1_000_000) }

    public var kilobitsPerSecond: Double { bitsPerSecond / 1_000 }

    public static func < (lhs: BitRate, rhs: BitRate) -> Bool { lhs.bitsPerSecond < rhs.bitsPerSecond }

    /// Why a rate could not be read; `description` is a sentence for the user.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var text: String
        public var reason: String
        public var description: String { "'\(text)' is not a rate: \(reason)" }
    }

    private static let units: [(suffix: String, factor: Double)] = [
        ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1),
        ("g", 1e9), ("m", 1e6), ("k", 1e3),
    ]

    /// Reads `320kbit`, `1.5mbit`, `640000`, `320k`. Throws `ParseError` otherwise.
    public init(parsing text: String) throws {
        let lowered = text.trimmingWhitespace().lowercased()
        if lowered.hasSuffix("bps") || lowered.hasSuffix("b/s") {
            throw ParseError(
                text: text,
                reason: "write bits per second as bit, kbit, mbit or gbit (e.g. 320kbit); "
                    + "tc reads 'kbps' as kilobytes per second, so it is not accepted")
        }
        var number = Substring(lowered)
        var factor = 1.0
        for unit in Self.units where lowered.hasSuffix(unit.suffix) {
            number = lowered.dropLast(unit.suffix.count)
            factor = unit.factor
            break
        }
        guard let value = Double(number), value.isFinite else {
            throw ParseError(
                text: text, reason: "expected a number with an optional unit bit, kbit, mbit or gbit (e.g. 320kbit)")
        }
        guard value > 0 else {
            throw ParseError(text: text, reason: "a rate must be greater than zero")
        }
        self.bitsPerSecond = value * factor
    }

    /// The shortest exact tc spelling: `320kbit`, `1.5mbit`, `999bit`.
    public var description: String {
        for (suffix, factor) in [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)] where bitsPerSecond >= factor {
            return Self.trimmed(bitsPerSecond / factor) + suffix
        }
        return Self.trimmed(bitsPerSecond) + "bit"
    }

    private static func trimmed(_ value: Double) -> String {
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        var text = String(value)
        if text.contains("e") { return text }
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
