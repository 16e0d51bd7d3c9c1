/// Reads the data rows of one format into frames (times still in the file's unit, sizes still
/// in the file's unit), with the line number of any row it cannot read.
struct RowReader {
    struct Rows {
        var frames: [Frame] = []
        /// Text header lines before the first data row (TKN verbose, CSV).
        var headerLines: [String] = []
        /// Units named by a CSV header row.
        var namedSizeUnit: SizeUnit?
        var namedTimeUnit: TimeUnit?
    }

    let text: TraceText
    let format: TraceFormat

    private var allowsHeader: Bool { format == .tknVerbose || format == .csv }

    func readAll() throws -> Rows {
        var rows = Rows()
        rows.frames.reserveCapacity(text.lines.count)
        let separator: UInt8? = format == .csv ? UInt8(ascii: ",") : nil
        var seenData = false
        for line in text.lines {
            let fields = text.fields(of: line, separator: separator)
            if !seenData, allowsHeader, text.number(fields[0]) == nil {
                if format == .csv {
                    guard rows.headerLines.isEmpty else { throw error(line, "a CSV trace has one header row at most; this row is not data: '\(text.string(line))'") }
                    try readCSVHeader(fields, line: line, into: &rows)
                }
                rows.headerLines.append(String(decoding: text.bytes[line.range], as: UTF8.self))
                continue
            }
            seenData = true
            rows.frames.append(try frame(fields, line: line))
        }
        guard !rows.frames.isEmpty else {
            throw TraceError(file: text.file, line: nil, "no frames: the file has a header but no data rows")
        }
        return rows
    }

    private func error(_ line: TraceText.Line, _ message: String) -> TraceError {
        TraceError(file: text.file, line: line.number, message)
    }

    private func frame(_ fields: [Range<Int>], line: TraceText.Line) throws -> Frame {
        switch format {
        case .tknTerse:
            try expectColumns(fields, exactly: 1, line: line)
            return Frame(type: .unknown, time: 0, bytes: try size(fields[0], line: line))
        case .tknVerbose, .ns3:
            try expectColumns(fields, exactly: 4, line: line)
            try expectInteger(fields[0], what: format == .ns3 ? "index" : "frame number", line: line)
            return Frame(
                type: try type(fields[1], line: line), time: try time(fields[2], line: line),
                bytes: try size(fields[3], line: line))
        case .asu:
            guard fields.count >= 4 else { throw columnError(fields, expected: "at least 4", line: line) }
            try expectInteger(fields[0], what: "frame number", line: line)
            for extra in fields[4...] where text.number(extra) == nil {
                throw error(line, "PSNR value '\(text.string(extra))' is not a number")
            }
            return Frame(
                type: try type(fields[2], line: line), time: try time(fields[1], line: line),
                bytes: try size(fields[3], line: line))
        case .evalvid:
            try expectColumns(fields, exactly: 5, line: line)
            try expectInteger(fields[0], what: "frame number", line: line)
            try expectInteger(fields[3], what: "packet count", line: line)
            return Frame(
                type: try type(fields[1], line: line), time: try time(fields[4], line: line),
                bytes: try size(fields[2], line: line))
        case .csv:
            var fields = fields
            if fields.count == 3 && fields[2].isEmpty { fields.removeLast() }
            guard fields.count == 2 || fields.count == 3 else {
                throw columnError(fields, expected: "2 or 3", line: line)
            }
            return Frame(
                type: fields.count == 3 ? try type(fields[2], line: line) : .unknown,
                time: try time(fields[0], line: line), bytes: try size(fields[1], line: line))
        }
    }

    private func readCSVHeader(_ fields: [Range<Int>], line: TraceText.Line, into rows: inout Rows) throws {
        let names = fields.map { text.string($0).lowercased() }
        let expected = "expected a header like time_ms,bytes,type (time_s for seconds, bits for sizes in bits)"
        guard names.count == 2 || names.count == 3 else {
            throw error(line, "the header row has \(names.count) columns; \(expected)")
        }
        switch names[0] {
        case "time_ms", "time": rows.namedTimeUnit = .milliseconds
        case "time_s": rows.namedTimeUnit = .seconds
        default: throw error(line, "unknown first column '\(names[0])'; \(expected)")
        }
        switch names[1] {
        case "bytes", "size", "size_bytes": rows.namedSizeUnit = .bytes
        case "bits", "size_bits": rows.namedSizeUnit = .bits
        default: throw error(line, "unknown second column '\(names[1])'; \(expected)")
        }
        if names.count == 3, names[2] != "type" {
            throw error(line, "unknown third column '\(names[2])'; \(expected)")
        }
    }

    private func columnError(_ fields: [Range<Int>], expected: String, line: TraceText.Line) -> TraceError {
        error(
            line,
            "expected \(expected) columns (\(format.columns)) for \(format.rawValue), found \(fields.count): '\(text.string(line))'")
    }

    private func expectColumns(_ fields: [Range<Int>], exactly count: Int, line: TraceText.Line) throws {
        guard fields.count == count else { throw columnError(fields, expected: String(count), line: line) }
    }

    private func expectInteger(_ field: Range<Int>, what: String, line: TraceText.Line) throws {
        guard let value = text.integer(field), value >= 0 else {
            throw error(line, "\(what) '\(text.string(field))' is not a whole number")
        }
    }

    private func size(_ field: Range<Int>, line: TraceText.Line) throws -> Int {
        guard let value = text.integer(field) else {
            throw error(line, "frame size '\(text.string(field))' is not a whole number")
        }
        guard value >= 0 else { throw error(line, "frame size \(value) is negative") }
        return value
    }

    private func time(_ field: Range<Int>, line: TraceText.Line) throws -> Double {
        guard let value = text.number(field) else {
            throw error(line, "time '\(text.string(field))' is not a number")
        }
        guard value >= 0 else { throw error(line, "time \(text.string(field)) is negative") }
        return value
    }

    private func type(_ field: Range<Int>, line: TraceText.Line) throws -> FrameType {
        guard let type = text.frameType(field) else {
            throw error(line, "frame type '\(text.string(field))' is not one of I, P, B, H (or - for unknown)")
        }
        return type
    }
}
