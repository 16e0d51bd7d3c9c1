/// What a trace offers a network: the figures `vnetstream trace stats` prints.
///
/// Rates are in kbit/s of 1000 bit/s. The duration runs from the first frame's display time to
/// one frame interval past the last one (N frames at F frames/s last N/F seconds). The peak is
/// the largest number of bits displayed in one of the consecutive 1-second windows [0,1),
/// [1,2), ... from time 0; a last, partial window counts its bits per whole second too.
public struct TraceStatistics: Codable, Sendable, Equatable {
    public var format: String
    public var frames: Int
    public var durationSeconds: Double
    public var framesPerSecond: Double
    /// Frames of each type present, by letter (`-` for unknown).
    public var frameTypes: [String: Int]
    public var meanKbps: Double
    public var peakKbps1s: Double
    /// Start of the 1-second window that holds the peak.
    public var peakWindowStartSeconds: Double
    public var maxFrameBytes: Int
    public var meanFrameBytes: Double
    public var totalBytes: Int
    public var zeroSizeFrames: Int
    public var sizeUnitInFile: SizeUnit
    /// `coding` when some frame is displayed before one coded ahead of it, else `display`.
    public var order: String
    public var notes: [String]

    enum CodingKeys: String, CodingKey {
        case format, frames, order, notes
        case durationSeconds = "duration_s"
        case framesPerSecond = "frames_per_second"
        case frameTypes = "frame_types"
        case meanKbps = "mean_kbps"
        case peakKbps1s = "peak_kbps_1s"
        case peakWindowStartSeconds = "peak_window_start_s"
        case maxFrameBytes = "max_frame_bytes"
        case meanFrameBytes = "mean_frame_bytes"
        case totalBytes = "total_bytes"
        case zeroSizeFrames = "zero_size_frames"
        case sizeUnitInFile = "size_unit_in_file"
    }

    public init(_ trace: FrameTrace) {
        let frames = trace.frames
        var total = 0
        var largest = 0
        var zero = 0
        var lastTime = 0.0
        var types: [String: Int] = [:]
        for frame in frames {
            total += frame.bytes
            largest = max(largest, frame.bytes)
            if frame.bytes == 0 { zero += 1 }
            lastTime = max(lastTime, frame.time)
            types[frame.type.rawValue, default: 0] += 1
        }
        let duration = frames.isEmpty ? 0 : lastTime + 1 / trace.framesPerSecond
        let windows = Self.oneSecondWindows(trace)
        let peakIndex = windows.indices.max { windows[$0] < windows[$1] } ?? 0

        self.format = trace.format.rawValue
        self.frames = frames.count
        self.durationSeconds = duration
        self.framesPerSecond = trace.framesPerSecond
        self.frameTypes = types
        self.meanKbps = duration > 0 ? Double(total) * 8 / duration / 1000 : 0
        self.peakKbps1s = windows.isEmpty ? 0 : Double(windows[peakIndex]) * 8 / 1000
        self.peakWindowStartSeconds = Double(peakIndex)
        self.maxFrameBytes = largest
        self.meanFrameBytes = frames.isEmpty ? 0 : Double(total) / Double(frames.count)
        self.totalBytes = total
        self.zeroSizeFrames = zero
        self.sizeUnitInFile = trace.sizeUnitInFile
        self.order = trace.isReordered ? "coding" : "display"
        self.notes = trace.notes
    }

    /// Bytes displayed in each consecutive 1-second window from time 0.
    public static func oneSecondWindows(_ trace: FrameTrace) -> [Int] {
        var windows: [Int] = []
        for frame in trace.frames {
            // Frame times are k/F or whole milliseconds; a microsecond of slack keeps a frame
            // at exactly 3.0 s (computed as 2.9999999999999996) in the window it belongs to.
            let index = Int((frame.time + 1e-6).rounded(.down))
            if index >= windows.count { windows.append(contentsOf: repeatElement(0, count: index + 1 - windows.count)) }
            windows[index] += frame.bytes
        }
        return windows
    }
}
