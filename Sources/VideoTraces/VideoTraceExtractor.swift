import CFFmpeg
import Traces

/// A libavformat or libavcodec call that failed, with the library's own reason.
public struct VideoTraceError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var call: String
    public var code: Int32
    public var reason: String

    init(file: String, call: String, code: Int32) {
        self.file = file
        self.call = call
        self.code = code
        var buffer = [CChar](repeating: 0, count: 256)
        av_strerror(code, &buffer, buffer.count)
        self.reason = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    init(file: String, reason: String) {
        self.file = file
        self.call = ""
        self.code = 0
        self.reason = reason
    }

    public var description: String {
        call.isEmpty ? "\(file): \(reason)" : "\(file): \(call) failed: \(reason) (\(code))"
    }
}

/// A frame trace taken from a real video file, and how.
public struct ExtractedTrace: Sendable {
    public var trace: FrameTrace
    /// libavcodec's name of the video codec (`h264`, `mpeg4`, ...).
    public var codec: String
    /// libavformat's name of the container (`mov,mp4,m4a,3gp,3g2,mj2`, `matroska,webm`, ...).
    public var container: String
    /// Where the frame types came from: `parser` (libavcodec's parser told I/P/B) or
    /// `key flag` (key frames are I, the rest unknown).
    public var typesFrom: String

    public func header(source: String) -> [String] {
        let stats = TraceStatistics(trace)
        return [
            "vnetstream trace extract: one row per video packet, in decoding (coding) order; time_ms = display time",
            "source: \(source) (\(container), codec \(codec))",
            "frames: \(stats.frames) at \(stats.framesPerSecond) frames/s; types from \(typesFrom)",
            "mean: \((stats.meanKbps * 1000).rounded() / 1000) kbit/s, peak over 1 s: \((stats.peakKbps1s * 1000).rounded() / 1000) kbit/s",
        ]
    }
}

/// Reads the video stream of a media file with libavformat: one frame per demuxed packet, its
/// size in bytes, its presentation time as the display time, in decoding order. Frame types
/// come from libavcodec's parser for the codec where it tells them (H.264, HEVC, MPEG-4 part 2,
/// MPEG-1/2, ...), else from the key-frame flag.
public enum VideoTraceExtractor {
    public static func extract(path: String) throws -> ExtractedTrace {
        var format: UnsafeMutablePointer<AVFormatContext>?
        var code = avformat_open_input(&format, path, nil, nil)
        guard code == 0, let context = format else {
            throw VideoTraceError(file: path, call: "avformat_open_input", code: code)
        }
        defer { avformat_close_input(&format) }
        // Containers such as AVI store no presentation times for reordered (B-frame) streams;
        // let libavformat derive them from the bitstream rather than pacing by decoding time.
        context.pointee.flags |= AVFMT_FLAG_GENPTS
        code = avformat_find_stream_info(context, nil)
        guard code >= 0 else { throw VideoTraceError(file: path, call: "avformat_find_stream_info", code: code) }
        let streamIndex = av_find_best_stream(context, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard streamIndex >= 0 else { throw VideoTraceError(file: path, reason: "no video stream in the file") }
        let stream = context.pointee.streams[Int(streamIndex)]!
        let parameters = stream.pointee.codecpar!
        let timeBase = stream.pointee.time_base
        let codecID = parameters.pointee.codec_id

        var types = FrameTypeParser(codecID: codecID, parameters: parameters)
        defer { types.close() }

        var packet = av_packet_alloc()
        guard packet != nil else { throw VideoTraceError(file: path, reason: "out of memory (av_packet_alloc)") }
        defer { av_packet_free(&packet) }

        var frames: [Frame] = []
        var stamps: [Int64] = []
        var parserTold = 0
        while true {
            code = av_read_frame(context, packet)
            if code == vns_averror_eof() { break }
            guard code >= 0 else { throw VideoTraceError(file: path, call: "av_read_frame", code: code) }
            defer { av_packet_unref(packet) }
            let p = packet!.pointee
            guard p.stream_index == streamIndex else { continue }
            // AV_NOPTS_VALUE is INT64_MIN; some containers give only a decoding time stamp.
            let stamp = p.pts != Int64.min ? p.pts : p.dts
            guard stamp != Int64.min else {
                throw VideoTraceError(
                    file: path, reason: "video packet \(frames.count) has neither a presentation nor a decoding time")
            }
            var type = types.type(of: packet!)
            if type != .unknown {
                parserTold += 1
            } else if p.flags & AV_PKT_FLAG_KEY != 0 {
                type = .i
            }
            frames.append(Frame(type: type, time: 0, bytes: Int(p.size)))
            stamps.append(stamp)
        }
        guard let origin = stamps.min() else { throw VideoTraceError(file: path, reason: "the video stream has no packets") }
        let unit = Double(timeBase.num) / Double(timeBase.den)
        for index in frames.indices { frames[index].time = Double(stamps[index] - origin) * unit }

        let rate = stream.pointee.avg_frame_rate
        let fps = rate.num > 0 && rate.den > 0 ? Double(rate.num) / Double(rate.den) : estimatedRate(frames)
        let typesFrom = parserTold == frames.count ? "parser" : parserTold == 0 ? "key flag" : "parser and key flag"
        let container = String(cString: context.pointee.iformat.pointee.name)
        let trace = FrameTrace(
            frames: frames, framesPerSecond: fps, format: .csv,
            notes: ["extracted with libavformat \(versionString(avformat_version())) from \(container); frame types from \(typesFrom)"])
        return ExtractedTrace(
            trace: trace, codec: String(cString: avcodec_get_name(codecID)), container: container, typesFrom: typesFrom)
    }

    private static func estimatedRate(_ frames: [Frame]) -> Double {
        let times = frames.map(\.time).sorted()
        let steps = zip(times, times.dropFirst()).map { $1 - $0 }.filter { $0 > 0 }.sorted()
        guard !steps.isEmpty else { return TraceReader.defaultFramesPerSecond }
        return 1 / steps[steps.count / 2]
    }

    /// libavformat's version, e.g. `59.27.100`.
    public static var libraryVersion: String { versionString(avformat_version()) }

    private static func versionString(_ version: UInt32) -> String {
        "\(version >> 16).\((version >> 8) & 0xFF).\(version & 0xFF)"
    }
}

/// libavcodec's bitstream parser for one codec, used only to read each packet's picture type.
private struct FrameTypeParser {
    private var parser: UnsafeMutablePointer<AVCodecParserContext>?
    private var codec: UnsafeMutablePointer<AVCodecContext>?

    init(codecID: AVCodecID, parameters: UnsafeMutablePointer<AVCodecParameters>) {
        parser = av_parser_init(Int32(bitPattern: codecID.rawValue))
        guard let parser else { return }
        // Each demuxed packet is one whole frame: parse it at once rather than waiting for the next.
        parser.pointee.flags |= PARSER_FLAG_COMPLETE_FRAMES
        codec = avcodec_alloc_context3(nil)
        // The extradata (avcC, hvcC, ...) tells the parser how NAL units are framed in this file.
        if codec == nil || avcodec_parameters_to_context(codec, parameters) < 0 { close() }
    }

    func type(of packet: UnsafeMutablePointer<AVPacket>) -> FrameType {
        guard let parser, let codec else { return .unknown }
        var output: UnsafeMutablePointer<UInt8>?
        var outputSize: Int32 = 0
        let p = packet.pointee
        parser.pointee.pict_type = Int32(AV_PICTURE_TYPE_NONE.rawValue)
        _ = av_parser_parse2(parser, codec, &output, &outputSize, p.data, p.size, p.pts, p.dts, p.pos)
        switch AVPictureType(rawValue: UInt32(bitPattern: parser.pointee.pict_type)) {
        case AV_PICTURE_TYPE_I, AV_PICTURE_TYPE_SI: return .i
        case AV_PICTURE_TYPE_P, AV_PICTURE_TYPE_SP: return .p
        case AV_PICTURE_TYPE_B, AV_PICTURE_TYPE_BI: return .b
        default: return .unknown
        }
    }

    mutating func close() {
        if let parser { av_parser_close(parser) }
        parser = nil
        avcodec_free_context(&codec)
    }
}
