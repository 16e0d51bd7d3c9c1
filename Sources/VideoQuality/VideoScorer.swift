import Foundation
import Lab

/// Scores a received video against the one sent, as EvalVid does, with ffmpeg as the real tool:
/// 1. ffprobe lists both files' frames (presentation time, picture type) and the sent size;
/// 2. ffmpeg decodes the received file to raw YUV 4:2:0, and the frames are matched to the sent
///    ones by time (`FrameAlignment`); a sent frame the received file lacks shows the last
///    decoded frame (frame copy), or black before any;
/// 3. ffmpeg's `psnr` and `ssim` filters compare the decoded original with what was shown,
///    frame by frame.
/// The raw frames are written to a scratch folder (removed afterwards): two copies of the
/// received video's frames at the sent size.
public struct VideoScorer: Sendable {
    /// Seconds per interval of the report.
    public var intervalSeconds: Double
    /// The limit for each ffmpeg and ffprobe call, seconds.
    public var timeout: Double

    public init(intervalSeconds: Double = 1, timeout: Double = 3600) {
        self.intervalSeconds = intervalSeconds
        self.timeout = timeout
    }

    /// A video file's frames, as ffprobe lists them.
    struct Probe {
        var width: Int
        var height: Int
        var times: [Double]
        var types: [String?]
    }

    /// Per frame and summed; throws naming the file and ffmpeg's stderr when a step fails.
    public func score(sent: String, received: String) throws -> (score: VideoScore, frames: [FrameScore]) {
        for path in [sent, received] where !FileManager.default.isReadableFile(atPath: path) {
            throw VideoScoreError("\(path): no such file (or not readable)")
        }
        let ffmpeg = try Command.locate("ffmpeg")
        let original = try probe(sent)
        let arrived = try probe(received)
        guard !original.times.isEmpty else { throw VideoScoreError("\(sent): ffprobe found no video frames") }
        guard arrived.times.isEmpty || (arrived.width, arrived.height) == (original.width, original.height) else {
            throw VideoScoreError(
                "\(received) is \(arrived.width)x\(arrived.height) and \(sent) is \(original.width)x\(original.height): a received video is scored at the size it was sent")
        }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("vnetstream-score-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        let frameBytes = original.width * original.height * 3 / 2
        let decoded = "\(scratch)/received.yuv"
        let shown = "\(scratch)/shown.yuv"
        if !arrived.times.isEmpty {
            try tool([ffmpeg, "-nostdin", "-v", "error", "-i", received, "-map", "0:v:0", "-fps_mode", "passthrough", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-y", decoded])
            let bytes = (try FileManager.default.attributesOfItem(atPath: decoded)[.size] as? Int) ?? 0
            guard bytes == arrived.times.count * frameBytes else {
                throw VideoScoreError("\(received): ffmpeg decoded \(bytes / frameBytes) frames where ffprobe listed \(arrived.times.count)")
            }
        }
        let match = FrameAlignment.match(sent: original.times, received: arrived.times)
        try writeShown(match, from: decoded, to: shown, frameBytes: frameBytes, width: original.width, height: original.height)

        // Both inputs in frame order: the decoded original's pictures, and the shown raw frames.
        let psnrLog = "\(scratch)/psnr.log"
        let ssimLog = "\(scratch)/ssim.log"
        let graph =
            "[0:v]format=yuv420p,settb=1/25,setpts=N[sent];[1:v]settb=1/25,setpts=N[shown];[sent]split[s1][s2];[shown]split[r1][r2];"
            + "[s1][r1]psnr=stats_file=\(psnrLog)[p];[s2][r2]ssim=stats_file=\(ssimLog)[q]"
        try tool([
            ffmpeg, "-nostdin", "-v", "error", "-i", sent,
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "\(original.width)x\(original.height)", "-framerate", "25", "-i", shown,
            "-filter_complex", graph, "-map", "[p]", "-map", "[q]", "-f", "null", "-",
        ])
        let psnr = try FilterStatistics.values(try String(contentsOfFile: psnrLog, encoding: .utf8), key: "psnr_y")
        let ssim = try FilterStatistics.values(try String(contentsOfFile: ssimLog, encoding: .utf8), key: "All", ceiling: 1)
        guard psnr.count == original.times.count, ssim.count == original.times.count else {
            throw VideoScoreError(
                "\(sent): ffmpeg compared \(min(psnr.count, ssim.count)) frames where ffprobe listed \(original.times.count) (a stream whose frames ffmpeg decodes differently from ffprobe?)")
        }
        let first = original.times[0]
        let frames = original.times.indices.map { index in
            FrameScore(
                frame: index, time: original.times[index] - first, type: original.types[index], shown: match.shown[index].how,
                psnrY: psnr[index], ssim: ssim[index])
        }
        let score = VideoScore(
            sent: sent, received: received, width: original.width, height: original.height, unmatched: match.unmatched,
            intervalSeconds: intervalSeconds, frames: frames)
        return (score, frames)
    }

    /// One frame after another as the viewer saw them: the matched received frame, else the
    /// last one shown, else black.
    private func writeShown(_ match: FrameAlignment.Match, from decoded: String, to path: String, frameBytes: Int, width: Int, height: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw VideoScoreError("cannot create \(path)") }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? output.close() }
        let input = FileManager.default.fileExists(atPath: decoded) ? try FileHandle(forReadingFrom: URL(fileURLWithPath: decoded)) : nil
        defer { try? input?.close() }
        var black = Data(repeating: 16, count: width * height)
        black.append(Data(repeating: 128, count: frameBytes - width * height))
        var cached: (index: Int, data: Data)?
        for (index, _) in match.shown {
            guard let index, let input else {
                try output.write(contentsOf: black)
                continue
            }
            if cached?.index != index {
                try input.seek(toOffset: UInt64(index * frameBytes))
                cached = (index, try input.read(upToCount: frameBytes) ?? Data())
            }
            try output.write(contentsOf: cached!.data)
        }
    }

    private func probe(_ path: String) throws -> Probe {
        struct Document: Decodable {
            struct Stream: Decodable {
                var width: Int?
                var height: Int?
            }
            struct Frame: Decodable {
                var best_effort_timestamp_time: String?
                var pict_type: String?
            }
            var streams: [Stream]?
            var frames: [Frame]?
        }
        let ffprobe = try Command.locate("ffprobe")
        let text = try tool([
            ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height:frame=best_effort_timestamp_time,pict_type",
            "-of", "json", path,
        ])
        let document: Document
        do { document = try JSONDecoder().decode(Document.self, from: Data(text.utf8)) } catch {
            throw VideoScoreError("\(path): ffprobe's frame list could not be read: \(error)")
        }
        guard let stream = document.streams?.first, let width = stream.width, let height = stream.height else {
            throw VideoScoreError("\(path) has no video stream")
        }
        guard width > 0, height > 0, width % 2 == 0, height % 2 == 0 else {
            throw VideoScoreError("\(path) is \(width)x\(height): scoring takes even sizes (4:2:0)")
        }
        var times: [Double] = []
        var types: [String?] = []
        for (index, frame) in (document.frames ?? []).enumerated() {
            guard let text = frame.best_effort_timestamp_time, let time = Double(text) else {
                throw VideoScoreError("\(path): frame \(index) has no presentation time (a raw stream with no timestamps? remux it into .mp4 or .mkv)")
            }
            times.append(time)
            types.append(frame.pict_type.flatMap { $0 == "?" ? nil : $0 })
        }
        // Presentation order: what ffprobe lists is the decoder's output order already, but a
        // stream whose timestamps go back would be matched wrongly.
        if zip(times.dropFirst(), times).contains(where: { $0 <= $1 }) {
            throw VideoScoreError("\(path): frame times do not increase (duplicated or reordered timestamps); remux it with fresh timestamps")
        }
        return Probe(width: width, height: height, times: times, types: types)
    }

    @discardableResult
    private func tool(_ argv: [String]) throws -> String {
        do { return try Command.run(argv, timeout: timeout) } catch let failure as Command.Failure {
            throw VideoScoreError("\(failure)")
        }
    }
}
