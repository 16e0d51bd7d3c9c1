import Foundation
import TestSupport
import Testing
import Traces
import VideoTraces

/// A packet as ffprobe reports it: the reference extraction is checked against.
struct ProbedPacket: Equatable {
    var seconds: Double
    var bytes: Int
    var key: Bool
}

/// Encodes `seconds` of ffmpeg's test pattern at 25 frames/s with the given encoder options.
func encodeTestVideo(_ path: String, seconds: Int, _ codecOptions: [String]) throws {
    let result = try runProcess(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
         "-i", "testsrc2=size=320x240:rate=25", "-t", String(seconds)] + codecOptions + [path])
    guard result.status == 0 else { throw TestSetupError("ffmpeg could not encode the test video: \(result.summary)") }
}

/// ffprobe's view of the first video stream: packets in file order, and decoded picture types.
func probe(_ path: String) throws -> (packets: [ProbedPacket], pictureTypes: [String: Int]) {
    let packets = try runProcess(
        ["ffprobe", "-v", "error", "-fflags", "+genpts", "-select_streams", "v:0", "-show_entries", "packet=pts_time,size,flags",
         "-of", "csv=p=0", path])
    guard packets.status == 0 else { throw TestSetupError(packets.summary) }
    let probed = packets.stdout.split(separator: "\n").map { line -> ProbedPacket in
        let fields = line.split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count == 3, let seconds = Double(fields[0]), let bytes = Int(fields[1]) else {
            Issue.record("ffprobe printed a packet line this test cannot read: \(line)")
            return ProbedPacket(seconds: -1, bytes: -1, key: false)
        }
        return ProbedPacket(seconds: seconds, bytes: bytes, key: fields[2].hasPrefix("K"))
    }
    let frames = try runProcess(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pict_type", "-of", "csv=p=0", path])
    guard frames.status == 0 else { throw TestSetupError(frames.summary) }
    var types: [String: Int] = [:]
    for line in frames.stdout.split(separator: "\n") { types[String(line.prefix(1)), default: 0] += 1 }
    return (probed, types)
}

@Suite("Traces from video files (libavformat)", .serialized)
struct VideoTraceExtractorTests {
    @Test("MPEG-4 part 2 in AVI: every packet, its size, time and key flag, as ffprobe sees them", .timeLimit(.minutes(2)))
    func mpeg4InAVI() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let video = directory + "/pattern.avi"
        try encodeTestVideo(video, seconds: 3, ["-c:v", "mpeg4", "-q:v", "5", "-g", "12", "-bf", "2"])
        let (packets, pictureTypes) = try probe(video)
        let extracted = try VideoTraceExtractor.extract(path: video)
        let frames = extracted.trace.frames
        #expect(extracted.codec == "mpeg4")
        #expect(frames.count == 75)
        #expect(frames.count == packets.count)
        #expect(frames.map(\.bytes) == packets.map(\.bytes))
        let origin = packets.map(\.seconds).min()!
        for (frame, packet) in zip(frames, packets) {
            #expect(abs(frame.time - (packet.seconds - origin)) < 0.0005)
            if packet.key { #expect(frame.type == .i) }
        }
        // The parser's picture types agree with what a decoder reports for the whole stream.
        var extractedTypes: [String: Int] = [:]
        for frame in frames { extractedTypes[frame.type.rawValue, default: 0] += 1 }
        #expect(extractedTypes == pictureTypes)
        #expect(extractedTypes["B", default: 0] > 0, "the encoder was asked for B frames")
        #expect(extracted.trace.isReordered)
    }

    @Test("a file with no video stream, and a file that is no media at all, are refused with the file named")
    func notVideo() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let audio = directory + "/tone.wav"
        let made = try runProcess(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i",
             "sine=frequency=440:duration=1", audio])
        #expect(made.status == 0, "\(made.summary)")
        let noVideo = #expect(throws: VideoTraceError.self) { try VideoTraceExtractor.extract(path: audio) }
        #expect(noVideo?.description == "\(audio): no video stream in the file")

        let text = try writeFile(directory, "notes.txt", "these are not frames\n")
        let garbage = #expect(throws: VideoTraceError.self) { try VideoTraceExtractor.extract(path: text) }
        #expect(garbage?.description.hasPrefix("\(text): avformat_open_input failed: ") == true)

        let missing = #expect(throws: VideoTraceError.self) { try VideoTraceExtractor.extract(path: directory + "/none.mp4") }
        #expect(missing?.description.contains("No such file or directory") == true)
    }
}
