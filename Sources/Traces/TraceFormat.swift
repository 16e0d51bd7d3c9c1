/// The frame-trace formats VNetStream reads. See `Docs/trace-formats.md` for each one's columns,
/// units and pitfalls.
public enum TraceFormat: String, Sendable, Codable, CaseIterable {
    /// TKN (TU Berlin) terse: one frame size in bytes per line, display order, no header.
    case tknTerse = "tkn-terse"
    /// TKN verbose: `frame type time_ms bytes` after a short text header, coding order.
    case tknVerbose = "tkn-verbose"
    /// ASU MPEG-4 verbose: `frame time_ms type size psnrY psnrU psnrV`, tab-separated, `#`
    /// comments, coding order, sizes in bits (although often labelled bytes).
    case asu
    /// ns-3 UdpTraceClient: `index type time_ms bytes`, coding order, no header.
    case ns3
    /// EvalVid `st` (mp4trace): `frame type bytes packets time_s`; type H/I/P/B.
    case evalvid
    /// Plain CSV: `time_ms,bytes[,type]` with an optional header row naming the columns
    /// (`time_s` for seconds, `bits` for sizes in bits). What VNetStream itself writes.
    case csv

    /// The columns of one row, as a user would read them in the format's documentation.
    public var columns: String {
        switch self {
        case .tknTerse: "bytes"
        case .tknVerbose: "frame type time_ms bytes"
        case .asu: "frame time_ms type size psnrY psnrU psnrV"
        case .ns3: "index type time_ms bytes"
        case .evalvid: "frame type bytes packets time_s"
        case .csv: "time_ms,bytes[,type]"
        }
    }

    /// One line for help texts.
    public var summary: String {
        switch self {
        case .tknTerse: "TKN terse: one size in bytes per line, display order"
        case .tknVerbose: "TKN verbose: frame type time_ms bytes, after a text header, coding order"
        case .asu: "ASU MPEG-4 verbose: frame time_ms type size psnrY psnrU psnrV, sizes in bits"
        case .ns3: "ns-3 UdpTraceClient: index type time_ms bytes, coding order"
        case .evalvid: "EvalVid st: frame type bytes packets time_s"
        case .csv: "CSV: time_ms,bytes[,type] with an optional header row"
        }
    }

    /// The unit a format's sizes are in when nothing says otherwise.
    var defaultSizeUnit: SizeUnit { self == .asu ? .bits : .bytes }

    /// Whether rows carry times, and in which unit by default.
    var defaultTimeUnit: TimeUnit? {
        switch self {
        case .tknTerse: nil
        case .evalvid: .seconds
        case .tknVerbose, .asu, .ns3, .csv: .milliseconds
        }
    }

    public static var namesForHelp: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

enum TimeUnit: String {
    case seconds = "s"
    case milliseconds = "ms"

    /// Units in one second (dividing by it converts exactly: 120 ms is 0.12 s to the last bit).
    var perSecond: Double { self == .seconds ? 1 : 1000 }
}
