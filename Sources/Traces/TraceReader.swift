import Units
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the user said about a trace; anything left nil is detected.
public struct TraceReadOptions: Sendable, Equatable {
    /// The file's format; nil detects it from the first data row.
    public var format: TraceFormat?
    /// The unit of the sizes in the file; nil takes the format's (bits for ASU when every size
    /// is a multiple of 8, bytes otherwise) or what a header names.
    public var sizeUnit: SizeUnit?
    /// The frame rate. For TKN terse it paces the frames (25 if nil); for timed formats it
    /// re-times frames at exact intervals in display order (nil keeps the file's times).
    public var framesPerSecond: Double?

    public init(format: TraceFormat? = nil, sizeUnit: SizeUnit? = nil, framesPerSecond: Double? = nil) {
        self.format = format
        self.sizeUnit = sizeUnit
        self.framesPerSecond = framesPerSecond
    }
}

/// Reads frame traces of every format in `TraceFormat`.
///
/// Handles CRLF line ends, a missing final newline, `#` comments (whole lines or after data),
/// blank lines, zero-size frames (kept: they take their time slot), sizes in bits, times in
/// seconds where milliseconds were expected and vice versa. A row that cannot be read stops
/// the parse with `FILE:LINE: what is wrong`; no frame is ever skipped silently.
public enum TraceReader {
    /// The frame rate TKN terse traces are recorded at (and the paper streams at).
    public static let defaultFramesPerSecond = 25.0

    public static func read(contentsOf path: String, options: TraceReadOptions = .init()) throws -> FrameTrace {
        try parse(readWholeFile(path), file: path, options: options)
    }

    /// Parses the bytes of a trace; `file` names it in errors.
    public static func parse(_ bytes: [UInt8], file: String, options: TraceReadOptions = .init()) throws -> FrameTrace {
        let text = TraceText(bytes: bytes, file: file)
        guard !text.lines.isEmpty else {
            throw TraceError(file: file, line: nil, "no frames: the file has no data rows")
        }
        let format = try options.format ?? detectFormat(text)
        var rows = try RowReader(text: text, format: format).readAll()
        var notes: [String] = []
        if options.format == nil { notes.append("format \(format.rawValue) detected from the first data row") }

        let unit = sizeUnit(of: rows, format: format, text: text, options: options, notes: &notes)
        if unit == .bits { convertBitsToBytes(&rows.frames, notes: &notes) }
        let fps = try assignTimes(&rows, format: format, file: file, options: options, notes: &notes)

        let zero = rows.frames.lazy.filter { $0.bytes == 0 }.count
        if zero > 0 {
            notes.append("\(zero) zero-size frame(s) kept: each takes its time slot and sends nothing")
        }
        var trace = FrameTrace(
            frames: rows.frames, framesPerSecond: fps, format: format, sizeUnitInFile: unit,
            notes: notes, header: text.comments + rows.headerLines)
        if trace.isReordered {
            trace.notes.append("rows are in coding order: some frames are displayed before frames coded ahead of them")
        }
        return trace
    }

    // MARK: - Detection

    static func detectFormat(_ text: TraceText) throws -> TraceFormat {
        var sawHeader = false
        for line in text.lines {
            if text.containsComma(line) {
                // A CSV data row starts with a number; a comma in a text line is just prose.
                if text.number(text.fields(of: line, separator: UInt8(ascii: ","))[0]) != nil { return .csv }
                sawHeader = true
                continue
            }
            let fields = text.fields(of: line, separator: nil)
            guard text.number(fields[0]) != nil else {
                sawHeader = true
                continue
            }
            let letter = { (i: Int) in i < fields.count && text.frameType(fields[i]) != nil }
            switch fields.count {
            case 1: return .tknTerse
            case 4 where letter(1): return sawHeader ? .tknVerbose : .ns3
            case 5 where letter(1): return .evalvid
            case 4... where letter(2): return .asu
            default:
                throw TraceError(
                    file: text.file, line: line.number,
                    "cannot tell the trace format from this row '\(text.string(line))'; name it with --format "
                        + "(one of \(TraceFormat.namesForHelp))")
            }
        }
        throw TraceError(file: text.file, line: nil, "no frames: no row starts with a number")
    }

    // MARK: - Units

    private static func sizeUnit(
        of rows: RowReader.Rows, format: TraceFormat, text: TraceText, options: TraceReadOptions,
        notes: inout [String]
    ) -> SizeUnit {
        if let unit = options.sizeUnit {
            notes.append("sizes read as \(unit.rawValue), as asked (--units)")
            return unit
        }
        if let unit = rows.namedSizeUnit {
            notes.append("sizes read as \(unit.rawValue), as the header row names them")
            return unit
        }
        if format == .asu {
            // ASU traces give sizes in bits, though their headers often say bytes. A coded frame
            // is a whole number of bytes, so bit counts are all multiples of 8; a byte count that
            // happens to be a multiple of 8 for every frame of a real trace is vanishingly rare.
            if rows.frames.allSatisfy({ $0.bytes % 8 == 0 }) {
                notes.append("sizes read as bits: ASU traces give bits, and every size is a multiple of 8 (--units bytes overrides)")
                return .bits
            }
            notes.append("sizes read as bytes: some sizes are not multiples of 8, so they cannot be bit counts of whole frames (--units bits overrides)")
            return .bytes
        }
        let hints = ["[bit]", "[bits]", "(bits)", "in bits", "size_bits", "[bit/frame]"]
        if text.comments.contains(where: { line in hints.contains { line.lowercased().contains($0) } })
            || rows.headerLines.contains(where: { line in hints.contains { line.lowercased().contains($0) } })
        {
            notes.append("sizes read as bits, as the file's header says (--units bytes overrides)")
            return .bits
        }
        return format.defaultSizeUnit
    }

    private static func convertBitsToBytes(_ frames: inout [Frame], notes: inout [String]) {
        var roundedUp = 0
        for index in frames.indices {
            let bits = frames[index].bytes
            if bits % 8 != 0 { roundedUp += 1 }
            frames[index].bytes = (bits + 7) / 8
        }
        if roundedUp > 0 {
            notes.append("\(roundedUp) size(s) in bits were not whole bytes and were rounded up")
        }
    }

    // MARK: - Times

    /// Converts row times to seconds from 0, or makes them from the frame rate; returns the rate.
    private static func assignTimes(
        _ rows: inout RowReader.Rows, format: TraceFormat, file: String, options: TraceReadOptions,
        notes: inout [String]
    ) throws -> Double {
        if let fps = options.framesPerSecond {
            guard fps.isFinite, fps > 0 else {
                throw TraceError(file: file, line: nil, "the frame rate must be a positive number, not \(fps)")
            }
        }
        guard var unit = rows.namedTimeUnit ?? format.defaultTimeUnit else {
            let fps = options.framesPerSecond ?? defaultFramesPerSecond
            if options.framesPerSecond == nil {
                notes.append("\(formatted(fps)) frames/s assumed, TKN's rate (--fps overrides)")
            }
            for index in rows.frames.indices { rows.frames[index].time = Double(index) / fps }
            return fps
        }
        let sorted = rows.frames.map(\.time).sorted()
        let step = medianPositiveStep(sorted)
        if options.framesPerSecond == nil, rows.frames.count > 1, step == nil {
            throw TraceError(
                file: file, line: nil,
                "every frame has the same time (\(formatted(sorted[0])) \(unit.rawValue)); give the frame rate with --fps")
        }
        if let step {
            // A frame interval under 1 ms (over 1000 frames/s) means the times were seconds; one
            // of a second or more means they were milliseconds. Neither is a real video rate.
            if unit == .milliseconds, step < 1 {
                unit = .seconds
                notes.append("times read as seconds: read as milliseconds they would give over 1000 frames/s")
            } else if unit == .seconds, step >= 1 {
                unit = .milliseconds
                notes.append("times read as milliseconds: read as seconds they would give 1 frame/s or less")
            }
        }
        if let fps = options.framesPerSecond {
            var rank = 0
            let order = FrameTrace(frames: rows.frames, framesPerSecond: fps).displayOrder
            for index in order {
                rows.frames[index].time = Double(rank) / fps
                rank += 1
            }
            notes.append("frames re-timed at \(formatted(fps)) frames/s in display order (--fps)")
            return fps
        }
        let origin = sorted[0]
        for index in rows.frames.indices {
            rows.frames[index].time = (rows.frames[index].time - origin) / unit.perSecond
        }
        if origin != 0 {
            notes.append("times shifted by \(formatted(origin)) \(unit.rawValue) so that the trace starts at 0")
        }
        guard let step else { return defaultFramesPerSecond }
        let fps = (unit.perSecond / step * 1000).rounded() / 1000
        notes.append("\(formatted(fps)) frames/s estimated from the median frame interval")
        return fps
    }

    private static func medianPositiveStep(_ sorted: [Double]) -> Double? {
        var steps: [Double] = []
        steps.reserveCapacity(sorted.count)
        for (a, b) in zip(sorted, sorted.dropFirst()) where b > a { steps.append(b - a) }
        guard !steps.isEmpty else { return nil }
        steps.sort()
        return steps[steps.count / 2]
    }
}

func formatted(_ value: Double) -> String { value.plainText }

// MARK: - Reading a file

/// The whole file as bytes, or a `TraceError` that says why not (with the system's reason).
func readWholeFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
        throw TraceError(file: path, line: nil, "cannot open: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw TraceError(file: path, line: nil, "cannot read: \(String(cString: strerror(errno)))")
        }
        if count == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<count])
    }
}
