import Units

/// Constant-bit-rate sources: the paper's CBR stream is 320 kbit/s at 25 frames/s, 1600-byte frames.
public enum CBRSource {
    /// `duration × fps` frames (rounded) at exact intervals. When the rate does not divide into
    /// whole bytes per frame, sizes alternate so that every prefix of the trace stays within one
    /// byte of the exact rate.
    public static func trace(rate: BitRate, framesPerSecond: Double, duration: Double) throws -> FrameTrace {
        guard framesPerSecond.isFinite, framesPerSecond > 0 else {
            throw SourceError("the frame rate must be a positive number, not \(framesPerSecond)")
        }
        guard duration.isFinite, duration > 0 else {
            throw SourceError("the duration must be a positive number of seconds, not \(duration)")
        }
        let count = Int((duration * framesPerSecond).rounded())
        guard count > 0 else { throw SourceError("\(duration) s at \(framesPerSecond) frames/s is no frame at all") }
        let bytesPerFrame = rate.bitsPerSecond / 8 / framesPerSecond
        guard bytesPerFrame >= 1 else {
            throw SourceError("\(rate) at \(formatted(framesPerSecond)) frames/s is under one byte per frame")
        }
        var frames: [Frame] = []
        frames.reserveCapacity(count)
        var sent = 0
        for index in 0..<count {
            let due = Int((Double(index + 1) * bytesPerFrame).rounded(.down))
            frames.append(Frame(type: .unknown, time: Double(index) / framesPerSecond, bytes: due - sent))
            sent = due
        }
        return FrameTrace(
            frames: frames, framesPerSecond: framesPerSecond, format: .csv,
            notes: ["CBR \(rate) at \(formatted(framesPerSecond)) frames/s for \(formatted(duration)) s"])
    }
}

/// A request for a synthetic or fitted trace that cannot be met; the message says why.
public struct SourceError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The part of a real trace that best matches an asked mean and 1-second peak, scaled to the mean.
public struct TraceFit: Sendable {
    /// The chosen part, re-timed at the source's frame rate from 0, sizes scaled; coding order kept.
    public var trace: FrameTrace
    /// Display index (0-based) of the part's first frame in the source.
    public var firstFrame: Int
    /// The source's display time of that frame, in seconds.
    public var startSeconds: Double
    /// The factor every frame size was multiplied by (before rounding to whole bytes).
    public var scale: Double
    public var askedPeakToMean: Double
    /// The chosen part's 1-second peak-to-mean ratio, before scaling.
    public var foundPeakToMean: Double
    public var statistics: TraceStatistics

    /// `#` lines for the written trace: where it came from and what it achieves.
    public func header(source: String) -> [String] {
        [
            "vnetstream trace fit: a part of a real trace, scaled (rows in coding order, time_ms = display time)",
            "source: \(source)",
            "first frame: \(firstFrame) (display order, 0-based), at \(formatted(startSeconds)) s in the source",
            "frames: \(statistics.frames) at \(formatted(statistics.framesPerSecond)) frames/s, \(formatted(statistics.durationSeconds)) s",
            "scale factor: \(scale)",
            "peak/mean over 1-second windows: asked \(rounded(askedPeakToMean, 4)), source part \(rounded(foundPeakToMean, 4))",
            "mean: \(rounded(statistics.meanKbps, 3)) kbit/s, peak over 1 s: \(rounded(statistics.peakKbps1s, 3)) kbit/s",
        ]
    }
}

public enum TraceFitter {
    /// Chooses, among all parts of `duration` seconds that start on a frame the viewer can
    /// decode from (an I frame, when the trace has types), the one whose peak-to-mean ratio over
    /// consecutive 1-second windows is closest to `peak / mean` (the earliest on a tie), and
    /// scales its sizes so that its mean is `mean`.
    ///
    /// Works in display order at the source's nominal frame rate (a constant-rate trace).
    public static func fit(_ source: FrameTrace, mean: BitRate, peak: BitRate, duration: Double) throws -> TraceFit {
        guard peak >= mean else { throw SourceError("the peak (\(peak)) must not be below the mean (\(mean))") }
        guard duration.isFinite, duration > 0 else {
            throw SourceError("the duration must be a positive number of seconds, not \(duration)")
        }
        let fps = source.framesPerSecond
        let length = Int((duration * fps).rounded())
        let order = source.displayOrder
        guard length >= 1, length <= order.count else {
            throw SourceError(
                "the source has \(order.count) frames (\(formatted(Double(order.count) / fps)) s at \(formatted(fps)) frames/s); "
                    + "\(formatted(duration)) s needs \(length)")
        }
        // prefix[r] = bytes of the first r frames in display order.
        var prefix = [Int](repeating: 0, count: order.count + 1)
        for (rank, index) in order.enumerated() { prefix[rank + 1] = prefix[rank] + source.frames[index].bytes }
        // Window k of a part covers display ranks [bounds[k], bounds[k+1]) from the part's start.
        var bounds: [Int] = []
        var second = 0
        while true {
            let rank = min(length, Int((Double(second) * fps - 1e-9).rounded(.up)))
            bounds.append(rank)
            if rank >= length { break }
            second += 1
        }
        let asked = peak.bitsPerSecond / mean.bitsPerSecond
        let hasTypes = source.frames.contains { $0.type == .i }
        var best: (start: Int, ratio: Double)?
        for start in 0...(order.count - length) {
            if hasTypes, source.frames[order[start]].type != .i { continue }
            let total = prefix[start + length] - prefix[start]
            guard total > 0 else { continue }
            var largest = 0
            for k in 0..<(bounds.count - 1) {
                largest = max(largest, prefix[start + bounds[k + 1]] - prefix[start + bounds[k]])
            }
            // Both in bits per second: the mean over the part, the peak over one second.
            let ratio = Double(largest) / (Double(total) / (Double(length) / fps))
            if best == nil || abs(ratio - asked) < abs(best!.ratio - asked) { best = (start, ratio) }
        }
        guard let best else {
            throw SourceError("no part of the source of \(formatted(duration)) s starts on an I frame and carries any bytes")
        }

        let partBytes = prefix[best.start + length] - prefix[best.start]
        let scale = mean.bitsPerSecond * (Double(length) / fps) / 8 / Double(partBytes)
        var rankOf = [Int](repeating: 0, count: order.count)
        for (rank, index) in order.enumerated() { rankOf[index] = rank }
        var frames: [Frame] = []
        frames.reserveCapacity(length)
        for (index, frame) in source.frames.enumerated() {
            let rank = rankOf[index]
            guard rank >= best.start, rank < best.start + length else { continue }
            frames.append(
                Frame(
                    type: frame.type, time: Double(rank - best.start) / fps,
                    bytes: Int((Double(frame.bytes) * scale).rounded())))
        }
        let trace = FrameTrace(
            frames: frames, framesPerSecond: fps, format: .csv,
            notes: ["fitted from display frame \(best.start) of a \(source.format.rawValue) trace, sizes × \(scale)"])
        return TraceFit(
            trace: trace, firstFrame: best.start, startSeconds: source.frames[order[best.start]].time,
            scale: scale, askedPeakToMean: asked, foundPeakToMean: best.ratio, statistics: TraceStatistics(trace))
    }
}

func rounded(_ value: Double, _ places: Int) -> String {
    var factor = 1.0
    for _ in 0..<places { factor *= 10 }
    return formatted((value * factor).rounded() / factor)
}
