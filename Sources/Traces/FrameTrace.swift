/// The coding type of a video frame, as trace files spell it.
public enum FrameType: String, Sendable, Codable, CaseIterable, Comparable {
    case i = "I"
    case p = "P"
    case b = "B"
    /// EvalVid's `H`: the codec's configuration header (MPEG-4 VOS/VOL), sent ahead of the first frame.
    case header = "H"
    /// The trace does not say (TKN terse, CBR sources).
    case unknown = "-"

    /// Reads one letter, case-insensitively; `-` is unknown.
    public init?(letter: UInt8) {
        switch letter {
        case UInt8(ascii: "I"), UInt8(ascii: "i"): self = .i
        case UInt8(ascii: "P"), UInt8(ascii: "p"): self = .p
        case UInt8(ascii: "B"), UInt8(ascii: "b"): self = .b
        case UInt8(ascii: "H"), UInt8(ascii: "h"): self = .header
        case UInt8(ascii: "-"): self = .unknown
        default: return nil
        }
    }

    public static func < (lhs: FrameType, rhs: FrameType) -> Bool {
        let order: [FrameType] = [.header, .i, .p, .b, .unknown]
        return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }
}

/// One video frame: what the sender has to deliver, and when the viewer needs it.
public struct Frame: Sendable, Equatable {
    public var type: FrameType
    /// Display (presentation) time in seconds from the start of the trace.
    public var time: Double
    /// Size in bytes (always bytes in memory, whatever the file said).
    public var bytes: Int

    public init(type: FrameType, time: Double, bytes: Int) {
        self.type = type
        self.time = time
        self.bytes = bytes
    }
}

/// How a trace file states frame sizes.
public enum SizeUnit: String, Sendable, Codable, CaseIterable {
    case bytes
    case bits
}

/// A sequence of frames in coding order (the order an encoder emits them and a sender sends
/// them), each with its display time (which paces the stream).
///
/// For traces in display order (TKN terse, CBR) the two orders coincide.
public struct FrameTrace: Sendable {
    /// Frames in coding (= sending) order.
    public var frames: [Frame]
    /// The nominal frame rate: stated by the user, the format's default, or estimated from the times.
    public var framesPerSecond: Double
    /// The format the frames were read from (or `csv` for traces this project makes).
    public var format: TraceFormat
    /// The unit the file stated sizes in; sizes in `frames` are bytes regardless.
    public var sizeUnitInFile: SizeUnit
    /// How format, units, order and frame rate were decided, and anything else worth telling a
    /// user about this trace (one sentence each).
    public var notes: [String]
    /// Comment and header lines of the file, without their `#`, in order.
    public var header: [String]

    public init(
        frames: [Frame], framesPerSecond: Double, format: TraceFormat = .csv,
        sizeUnitInFile: SizeUnit = .bytes, notes: [String] = [], header: [String] = []
    ) {
        self.frames = frames
        self.framesPerSecond = framesPerSecond
        self.format = format
        self.sizeUnitInFile = sizeUnitInFile
        self.notes = notes
        self.header = header
    }

    /// Indices into `frames` sorted by display time (stable: equal times keep coding order).
    public var displayOrder: [Int] {
        frames.indices.sorted { a, b in
            frames[a].time != frames[b].time ? frames[a].time < frames[b].time : a < b
        }
    }

    /// True when some frame is displayed before one that was coded ahead of it (B frames).
    public var isReordered: Bool {
        zip(frames, frames.dropFirst()).contains { $0.time > $1.time }
    }

    /// When the sender hands each frame (in coding order) to the network, in seconds from the
    /// start: the k-th frame in coding order goes out at the k-th earliest display time. The
    /// schedule keeps coding order, never runs backwards, and keeps the display clock's rate,
    /// so a stream with B frames is paced exactly like one without.
    public var sendTimes: [Double] { frames.map(\.time).sorted() }
}
