import ArgumentParser
import Foundation
import Units
import VideoQuality

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Score a received video against the one sent: PSNR, SSIM and MOS per frame and per interval.",
        discussion: """
            As EvalVid does: the received file's frames are matched to the sent file's by \
            presentation time, so a received video that left out the frames whose packets did not \
            all arrive keeps its place. A frame the received file lacks shows the last decoded one \
            (frame copy, as a player shows it), or black before any. ffmpeg's psnr and ssim filters \
            compare the decoded original with what was shown; PSNR is of the luma plane (identical \
            frames count as 100 dB), SSIM of all planes. MOS is EvalVid's mapping of each frame's \
            PSNR: above 37 dB 5, above 31 4, above 25 3, above 20 2, else 1.

            Both files need timestamps (mp4, mkv, MPEG-TS; a raw .h264 stream has none) and the \
            same size. Needs ffmpeg and ffprobe (apt-get install ffmpeg).
            """)

    @Argument(help: ArgumentHelp("The video that was sent.", valueName: "sent"), completion: .file())
    var sent: String

    @Argument(help: ArgumentHelp("The video as it was received.", valueName: "received"), completion: .file())
    var received: String

    @Option(help: ArgumentHelp("The report's interval, of the sent video's time (default: 1s).", valueName: "time"), transform: timeSeconds)
    var interval: Double = 1

    @Option(
        help: ArgumentHelp("Write every frame's score to this CSV file (frame,time_s,type,shown,psnr_y_db,ssim,mos).", valueName: "file"),
        completion: .file(extensions: ["csv"]))
    var frames: String?

    @OptionGroup(title: "Output") var output: OutputOptions

    func validate() throws {
        if !(interval > 0) || interval > 86400 { throw ValidationError("--interval must be above 0 and at most 86400 seconds.") }
    }

    func run() throws {
        let result: (score: VideoScore, frames: [FrameScore])
        do { result = try VideoScorer(intervalSeconds: interval).score(sent: sent, received: received) } catch let error as VideoScoreError {
            throw RuntimeError("score: \(error)")
        }
        if let frames {
            var csv = "frame,time_s,type,shown,psnr_y_db,ssim,mos\n"
            for frame in result.frames {
                csv += "\(frame.frame),\(frame.time.plainText(places: 6)),\(frame.type ?? ""),\(frame.shown.rawValue),"
                csv += "\(frame.psnrY.plainText(places: 3)),\(frame.ssim.plainText(places: 6)),\(frame.mos)\n"
            }
            try writeText(csv, to: frames)
        }
        try output.emit(result.score)
        output.say(Self.markdown(result.score))
    }

    static func markdown(_ score: VideoScore) -> String {
        func row(_ label: String, _ part: FramesScore) -> String {
            "| \(label) | \(part.frames) | \(part.decoded) | \(part.copied + part.missing) | \(part.meanPSNR.plainText(places: 2)) | "
                + "\(part.p5PSNR.plainText(places: 2)) | \(part.meanSSIM.plainText(places: 4)) | \(part.meanMOS.plainText(places: 2)) |"
        }
        var lines = [
            "\(score.received) against \(score.sent) (\(score.width)x\(score.height))" + (score.unmatched > 0 ? ", \(score.unmatched) received frames matched no sent frame" : ""),
            "",
            "| interval (s) | frames | decoded | copied | mean PSNR (dB) | p5 PSNR (dB) | mean SSIM | mean MOS |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for part in score.intervals { lines.append(row("\(part.startSeconds.plainText)-\(part.endSeconds.plainText)", part)) }
        lines.append(row("all", score.total))
        let shares = score.total.mosSharePct.enumerated().map { "\($0.offset + 1): \($0.element.plainText(places: 1)) %" }
        lines.append("")
        lines.append("MOS of the frames: " + shares.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
