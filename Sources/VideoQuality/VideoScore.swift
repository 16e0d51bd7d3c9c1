import Units

/// What the viewer saw of one frame of the sent video, in the sent video's presentation order.
public struct FrameScore: Sendable, Equatable, Codable {
    /// How the frame was shown.
    public enum Shown: String, Sendable, Codable {
        /// The decoder produced it from what arrived.
        case decoded
        /// It did not come out of the decoder; the last decoded frame stood in (frame copy, as a
        /// player shows it).
        case copied
        /// Nothing had been decoded yet: a black frame stood in.
        case missing
    }

    /// Index in the sent video, from 0.
    public var frame: Int
    /// Seconds since the sent video's first frame.
    public var time: Double
    /// The original's picture type (I, P, B), when the decoder says.
    public var type: String?
    public var shown: Shown
    /// PSNR of the luma plane, dB, at most `VideoScore.psnrCeiling` (identical frames).
    public var psnrY: Double
    /// SSIM over all planes (ffmpeg's `All`), 0-1.
    public var ssim: Double

    public init(frame: Int, time: Double, type: String?, shown: Shown, psnrY: Double, ssim: Double) {
        self.frame = frame
        self.time = time
        self.type = type
        self.shown = shown
        self.psnrY = psnrY
        self.ssim = ssim
    }

    /// EvalVid's PSNR-to-MOS mapping (Klaue et al.): above 37 dB 5, above 31 4, above 25 3,
    /// above 20 2, else 1.
    public static func mos(psnr: Double) -> Int {
        switch psnr {
        case let value where value > 37: return 5
        case let value where value > 31: return 4
        case let value where value > 25: return 3
        case let value where value > 20: return 2
        default: return 1
        }
    }

    public var mos: Int { Self.mos(psnr: psnrY) }
}

/// Scores of a span of frames: one interval, or the whole video.
public struct FramesScore: Sendable, Equatable, Codable {
    public var startSeconds: Double
    public var endSeconds: Double
    public var frames: Int
    /// Frames the decoder produced from what arrived (EvalVid's decodable frames).
    public var decoded: Int
    /// Frames a copy of the last decoded one stood in for, and frames shown black before any.
    public var copied: Int
    public var missing: Int
    public var meanPSNR: Double
    /// The 5th percentile (nearest rank): 95 % of the frames were at least this good.
    public var p5PSNR: Double
    public var meanSSIM: Double
    /// The mean of the frames' MOS (EvalVid's mapping).
    public var meanMOS: Double
    /// Of the frames, % with MOS 1, 2, 3, 4 and 5.
    public var mosSharePct: [Double]

    enum CodingKeys: String, CodingKey {
        case startSeconds = "start_s", endSeconds = "end_s", frames, decoded, copied, missing
        case meanPSNR = "mean_psnr_db", p5PSNR = "p5_psnr_db", meanSSIM = "mean_ssim", meanMOS = "mean_mos"
        case mosSharePct = "mos_share_pct"
    }

    /// No frames: zeros throughout.
    public init(_ scores: some Collection<FrameScore>, startSeconds: Double, endSeconds: Double) {
        let count = Double(max(1, scores.count))
        self.startSeconds = startSeconds
        self.endSeconds = endSeconds
        frames = scores.count
        decoded = scores.count { $0.shown == .decoded }
        copied = scores.count { $0.shown == .copied }
        missing = scores.count { $0.shown == .missing }
        meanPSNR = scores.reduce(0) { $0 + $1.psnrY } / count
        p5PSNR = nearestRank(0.05, ofSorted: scores.map(\.psnrY).sorted()) ?? 0
        meanSSIM = scores.reduce(0) { $0 + $1.ssim } / count
        meanMOS = Double(scores.reduce(0) { $0 + $1.mos }) / count
        mosSharePct = (1...5).map { mos in Double(scores.count { $0.mos == mos }) * 100 / count }
    }
}

/// How a received video scores against the one sent: per frame, per interval and in all.
public struct VideoScore: Sendable, Equatable, Codable {
    /// PSNR of identical frames (infinite) is reported as this.
    public static let psnrCeiling = 100.0

    public var sent: String
    public var received: String
    public var width: Int
    public var height: Int
    /// Frames decoded from the received file that match no sent frame's time.
    public var unmatched: Int
    public var intervalSeconds: Double
    public var intervals: [FramesScore]
    public var total: FramesScore

    enum CodingKeys: String, CodingKey {
        case sent, received, width, height, unmatched, intervalSeconds = "interval_s", intervals, total
    }

    /// Groups frame scores into intervals of the sent video's time.
    public init(sent: String, received: String, width: Int, height: Int, unmatched: Int, intervalSeconds: Double, frames: [FrameScore]) {
        self.sent = sent
        self.received = received
        self.width = width
        self.height = height
        self.unmatched = unmatched
        self.intervalSeconds = intervalSeconds
        let end = frames.map(\.time).max() ?? 0
        var byInterval: [Int: [FrameScore]] = [:]
        // A hair over the quotient, so that a frame at 0.6 s is in 0.6-0.8 and not in 0.4-0.6.
        for frame in frames { byInterval[Int(frame.time / intervalSeconds + 1e-9), default: []].append(frame) }
        intervals = byInterval.keys.sorted().map { index in
            FramesScore(byInterval[index]!, startSeconds: Double(index) * intervalSeconds, endSeconds: Double(index + 1) * intervalSeconds)
        }
        total = FramesScore(frames, startSeconds: 0, endSeconds: end)
    }
}

/// Which received frame stands for each sent frame: frames are matched by presentation time
/// (within half the sent video's typical frame interval), so a received file that left frames
/// out (EvalVid's way: frames whose packets did not all arrive) keeps its place. A sent frame
/// with no match shows the last matched one before it.
public enum FrameAlignment {
    public struct Match: Sendable, Equatable {
        /// Per sent frame: the received frame shown (nil: none yet) and how.
        public var shown: [(index: Int?, how: FrameScore.Shown)]
        /// Received frames that match no sent frame.
        public var unmatched: Int

        public static func == (a: Match, b: Match) -> Bool {
            a.unmatched == b.unmatched && a.shown.elementsEqual(b.shown) { $0.index == $1.index && $0.how == $1.how }
        }
    }

    /// `sent` and `received`: presentation times, seconds, each ascending.
    public static func match(sent: [Double], received: [Double]) -> Match {
        var matched: [Int?] = Array(repeating: nil, count: sent.count)
        var unmatched = 0
        let steps = zip(sent.dropFirst(), sent).map { $0 - $1 }.filter { $0 > 0 }.sorted()
        let tolerance = max(0.0005, (nearestRank(0.5, ofSorted: steps) ?? 0.04) / 2)
        var cursor = 0
        for (index, time) in received.enumerated() {
            while cursor + 1 < sent.count, sent[cursor + 1] <= time { cursor += 1 }
            let nearest = [cursor, cursor + 1].filter { sent.indices.contains($0) }.min { abs(sent[$0] - time) < abs(sent[$1] - time) }
            guard let nearest, abs(sent[nearest] - time) <= tolerance, matched[nearest] == nil else {
                unmatched += 1
                continue
            }
            matched[nearest] = index
        }
        var last: Int?
        let shown: [(index: Int?, how: FrameScore.Shown)] = matched.map { match in
            if let match {
                last = match
                return (match, .decoded)
            }
            return (last, last == nil ? .missing : .copied)
        }
        return Match(shown: shown, unmatched: unmatched)
    }
}

/// ffmpeg's per-frame statistics files (`psnr=stats_file=`, `ssim=stats_file=`): lines of
/// `key:value` fields, one per frame in order.
public enum FilterStatistics {
    /// The `key` field of each line, in order (`inf` as `ceiling`); throws naming the line that
    /// lacks it.
    public static func values(_ text: String, key: String, ceiling: Double = VideoScore.psnrCeiling) throws -> [Double] {
        var values: [Double] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            let field = line.split(separator: " ").first { $0.hasPrefix(key + ":") }
            let text = field.map { String($0.dropFirst(key.count + 1)) }
            if text == "inf" {
                values.append(ceiling)
            } else if let text, let value = Double(text), value.isFinite {
                values.append(min(value, ceiling))
            } else {
                throw VideoScoreError("ffmpeg's statistics, line \(number + 1): no number for \(key) in `\(line)`")
            }
        }
        return values
    }
}

public struct VideoScoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
