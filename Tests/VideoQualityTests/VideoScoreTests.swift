import Foundation
import TestSupport
import Testing
import VideoQuality

@Suite("video score: frames matched by time, frame copy, EvalVid's MOS")
struct VideoScoreTests {
    @Test("EvalVid's PSNR-to-MOS mapping, at its edges")
    func mosMapping() {
        #expect([100, 37.01, 37, 31.01, 31, 25.01, 25, 20.01, 20, 0].map(FrameScore.mos(psnr:)) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1])
    }

    @Test("received frames matched by time: a left-out frame shows the last decoded one, black before any, a stray frame matches nothing")
    func alignment() {
        let sent = (0..<8).map { Double($0) * 0.04 }
        // Frame 0 and frames 3-4 left out; a little timestamp jitter; one at 0.09 s, near frame 2 only, which is taken.
        let received = [0.0405, 0.08, 0.09, 0.2, 0.2395, 0.28]
        let match = FrameAlignment.match(sent: sent, received: received)
        #expect(match.unmatched == 1)
        #expect(match.shown.map(\.how) == [.missing, .decoded, .decoded, .copied, .copied, .decoded, .decoded, .decoded])
        #expect(match.shown.map(\.index) == [nil, 0, 1, 1, 1, 3, 4, 5])
        // A received frame near a sent frame already taken does not take it twice.
        let twice = FrameAlignment.match(sent: sent, received: [0, 0.001, 0.04])
        #expect(twice.unmatched == 1 && twice.shown.prefix(2).map(\.index) == [0, 2])
    }

    @Test("ffmpeg's statistics lines: the field read, inf as the ceiling, a line without it named")
    func statistics() throws {
        let psnr = """
            n:1 mse_avg:0.00 mse_y:0.00 mse_u:0.00 mse_v:0.00 psnr_avg:inf psnr_y:inf psnr_u:inf psnr_v:inf
            n:2 mse_avg:3.10 mse_y:4.02 mse_u:1.20 mse_v:1.30 psnr_avg:43.21 psnr_y:42.09 psnr_u:47.3 psnr_v:46.9

            """
        #expect(try FilterStatistics.values(psnr, key: "psnr_y") == [100, 42.09])
        let ssim = "n:1 Y:0.999237 U:0.999582 V:0.999696 All:0.999371 (32.016364)\n"
        #expect(try FilterStatistics.values(ssim, key: "All", ceiling: 1) == [0.999371])
        #expect(throws: VideoScoreError.self) { try FilterStatistics.values("n:1 Y:0.9\nn:2 Y:0.8 All:0.8", key: "All") }
    }

    @Test("intervals of the sent video's time: counts, mean and 5th-percentile PSNR, the MOS shares")
    func intervals() {
        let frames = (0..<30).map { index in
            FrameScore(
                frame: index, time: Double(index) * 0.04, type: index % 12 == 0 ? "I" : "P", shown: index >= 5 && index < 10 ? .copied : .decoded,
                psnrY: index >= 5 && index < 10 ? 24 : 40, ssim: index >= 5 && index < 10 ? 0.9 : 1)
        }
        let score = VideoScore(sent: "a", received: "b", width: 2, height: 2, unmatched: 0, intervalSeconds: 0.6, frames: frames)
        // 0.6 s holds 15 frames at 25 fps: frame 15 (0.6 s) opens the second interval.
        #expect(score.intervals.map(\.frames) == [15, 15])
        let first = score.intervals[0]
        #expect(first.decoded == 10 && first.copied == 5 && first.missing == 0)
        #expect(abs(first.meanPSNR - (10 * 40 + 5 * 24) / 15) < 1e-9 && first.p5PSNR == 24)
        #expect(first.mosSharePct.map { $0.rounded() } == [0, 33, 0, 0, 67] && abs(first.meanMOS - 4) < 1e-9)
        #expect(score.intervals[1].p5PSNR == 40 && score.total.frames == 30 && score.total.decoded == 25)
    }
}

/// Real ffmpeg: a test pattern encoded as the sent video, and received ones made from it.
@Suite("vnetstream score on real videos (ffmpeg)")
struct ScoreCommandTests {
    /// 2 s of ffmpeg's test pattern at 25 frames/s, H.264 with B frames, in an mp4.
    static func encode(_ directory: String) throws -> String {
        let path = directory + "/sent.mp4"
        let result = try runProcess([
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc=size=176x144:rate=25", "-t", "2",
            "-c:v", "libx264", "-g", "12", "-bf", "2", "-pix_fmt", "yuv420p", path,
        ])
        guard result.status == 0 else { throw TestSetupError("ffmpeg could not encode the test video: \(result.summary)") }
        return path
    }

    /// The sent video's decoded frames less `dropped` (frame indices), losslessly re-encoded
    /// with their own timestamps: a received file that left those frames out.
    static func leaveOut(_ sent: String, _ dropped: String, to path: String) throws {
        let result = try runProcess([
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", sent, "-vf", "select='not(\(dropped))'", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-qp", "0", path,
        ])
        guard result.status == 0 else { throw TestSetupError("ffmpeg could not make the received video: \(result.summary)") }
    }

    struct Score: Decodable {
        struct Part: Decodable {
            var frames: Int
            var decoded: Int
            var copied: Int
            var missing: Int
            var mean_psnr_db: Double
            var p5_psnr_db: Double
            var mean_ssim: Double
            var mean_mos: Double
        }
        var intervals: [Part]
        var total: Part
        var unmatched: Int
    }

    @Test("the sent video scored against itself: every frame decoded, 100 dB, SSIM 1, MOS 5")
    func identical() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sent = try Self.encode(directory)
        let run = try vnetstream("score", sent, sent, "--json")
        #expect(run.status == 0, "\(run.summary)")
        let score = try JSONDecoder().decode(Score.self, from: Data(run.stdout.utf8))
        #expect(score.total.frames == 50 && score.total.decoded == 50 && score.intervals.count == 2)
        #expect(score.total.mean_psnr_db == 100 && score.total.mean_ssim > 0.9999 && score.total.mean_mos == 5)
    }

    @Test("frames left out of the received video: each shows the last decoded frame, scores below the decoded ones, and counts as copied in its interval")
    func framesLeftOut() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sent = try Self.encode(directory)
        let received = directory + "/received.mp4"
        // The first frame, 10-14 and 30-39.
        try Self.leaveOut(sent, "eq(n\\,0)+between(n\\,10\\,14)+between(n\\,30\\,39)", to: received)
        let csv = directory + "/frames.csv"
        let run = try vnetstream("score", sent, received, "--json", "--frames", csv)
        #expect(run.status == 0, "\(run.summary)")
        let score = try JSONDecoder().decode(Score.self, from: Data(run.stdout.utf8))
        #expect(score.unmatched == 0 && score.total.frames == 50 && score.total.decoded == 34)
        #expect(score.intervals.map(\.decoded) == [19, 15] && score.intervals.map(\.copied) == [5, 10] && score.intervals[0].missing == 1)
        // Losslessly re-encoded, the decoded frames are the sent ones (100 dB); a copy of a
        // frame before it is not, and less so the longer the run of copies.
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        #expect(rows.count == 50)
        let psnr = rows.map { Double($0[4]) ?? -1 }
        let shown = rows.map { String($0[3]) }
        #expect(shown[0] == "missing" && shown[1] == "decoded" && shown[10] == "copied" && shown[39] == "copied" && shown[40] == "decoded")
        #expect((1..<10).allSatisfy { psnr[$0] == 100 } && (10..<15).allSatisfy { psnr[$0] < 60 } && psnr[39] < psnr[30])
        #expect(psnr[0] < 20, "a black frame for the first, which nothing stood in for")
        #expect(score.total.p5_psnr_db < 40 && score.total.mean_mos < 5)
        let text = try vnetstream("score", sent, received)
        #expect(text.stdout.contains("| all | 50 | 34 | 16 |"), "\(text.stdout)")
    }

    @Test("bad input named: a missing file, a file that is no video, a received video of another size")
    func badInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sent = try Self.encode(directory)
        let missing = try vnetstream("score", sent, directory + "/nothing.mp4")
        #expect(missing.status == 1 && missing.stderr.contains("nothing.mp4: no such file"), "\(missing.summary)")
        let text = try writeFile(directory, "notes.mp4", "not a video\n")
        let garbage = try vnetstream("score", sent, text)
        #expect(garbage.status == 1 && garbage.stderr.contains("ffprobe") && garbage.stderr.contains("notes.mp4"), "\(garbage.summary)")
        let small = directory + "/small.mp4"
        let result = try runProcess(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", sent, "-vf", "scale=88:72", small])
        #expect(result.status == 0, "\(result.summary)")
        let other = try vnetstream("score", sent, small)
        #expect(other.status == 1 && other.stderr.contains("88x72") && other.stderr.contains("176x144"), "\(other.summary)")
        let interval = try vnetstream("score", sent, sent, "--interval", "0")
        #expect(interval.status == 64 && interval.stderr.contains("--interval"), "\(interval.summary)")
    }
}
