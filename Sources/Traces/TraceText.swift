/// The lines of a trace file as byte ranges: CR before LF dropped, `#` comments cut off and
/// kept aside, blank lines skipped, line numbers kept for errors.
struct TraceText {
    struct Line {
        /// 1-based, as editors count.
        var number: Int
        /// The line's content without its comment and surrounding blanks; never empty.
        var range: Range<Int>
    }

    let bytes: [UInt8]
    let file: String
    private(set) var lines: [Line] = []
    /// The text of every comment, without the `#`, in file order.
    private(set) var comments: [String] = []

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
        var number = 0
        var start = 0
        let count = bytes.count
        while start < count {
            number += 1
            var end = start
            while end < count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            var contentEnd = end
            if contentEnd > start && bytes[contentEnd - 1] == UInt8(ascii: "\r") { contentEnd -= 1 }
            if let hash = bytes[start..<contentEnd].firstIndex(of: UInt8(ascii: "#")) {
                comments.append(String(decoding: bytes[(hash + 1)..<contentEnd], as: UTF8.self).trimmedBlanks)
                contentEnd = hash
            }
            let range = Self.trimmed(bytes, start..<contentEnd)
            if !range.isEmpty { lines.append(Line(number: number, range: range)) }
            start = end + 1
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
            || byte == 0x0B || byte == 0x0C
    }

    private static func trimmed(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper && isBlank(bytes[lower]) { lower += 1 }
        while upper > lower && isBlank(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    func containsComma(_ line: Line) -> Bool {
        bytes[line.range].contains(UInt8(ascii: ","))
    }

    /// Fields split by `separator` (each trimmed, empty ones kept), or by runs of blanks when nil.
    func fields(of line: Line, separator: UInt8?) -> [Range<Int>] {
        var result: [Range<Int>] = []
        if let separator {
            var start = line.range.lowerBound
            for index in line.range where bytes[index] == separator {
                result.append(Self.trimmed(bytes, start..<index))
                start = index + 1
            }
            result.append(Self.trimmed(bytes, start..<line.range.upperBound))
            return result
        }
        var index = line.range.lowerBound
        let end = line.range.upperBound
        while index < end {
            while index < end && Self.isBlank(bytes[index]) { index += 1 }
            let start = index
            while index < end && !Self.isBlank(bytes[index]) { index += 1 }
            if index > start { result.append(start..<index) }
        }
        return result
    }

    func string(_ range: Range<Int>) -> String {
        let text = String(decoding: bytes[range], as: UTF8.self)
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }

    func string(_ line: Line) -> String { string(line.range) }

    /// A non-negative or negative whole number in plain decimal digits; nil otherwise.
    func integer(_ range: Range<Int>) -> Int? {
        var index = range.lowerBound
        var negative = false
        if index < range.upperBound && (bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+")) {
            negative = bytes[index] == UInt8(ascii: "-")
            index += 1
        }
        guard index < range.upperBound, range.upperBound - index <= 18 else { return nil }
        var value = 0
        while index < range.upperBound {
            let digit = Int(bytes[index]) - 48
            guard digit >= 0 && digit <= 9 else { return nil }
            value = value * 10 + digit
            index += 1
        }
        return negative ? -value : value
    }

    /// A finite decimal number (`12`, `-3.5`, `.25`, `1e3`); nil for anything else, including
    /// `inf`, `nan` and hexadecimal, which Swift's own `Double(String)` would accept.
    func number(_ range: Range<Int>) -> Double? {
        if let whole = integer(range) { return Double(whole) }
        var sawDigit = false
        for byte in bytes[range] {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "e"), UInt8(ascii: "E"): break
            default: return nil
            }
        }
        guard sawDigit, let value = Double(String(decoding: bytes[range], as: UTF8.self)), value.isFinite else {
            return nil
        }
        return value
    }

    /// A one-letter frame type (I, P, B, H or -); nil for anything else.
    func frameType(_ range: Range<Int>) -> FrameType? {
        guard range.count == 1 else { return nil }
        return FrameType(letter: bytes[range.lowerBound])
    }
}

extension String {
    var trimmedBlanks: String {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return String(text)
    }
}
