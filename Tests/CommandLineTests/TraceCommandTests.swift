import Foundation
import TestSupport
import Testing
import Traces

/// The `vnetstream trace` commands, run as a user runs them: the built binary, real files.
@Suite("vnetstream trace", .serialized)
struct TraceCommandTests {
    static let jurassic = sharedTrace("Terse_Jurassic.dat")

    @Test("trace stats --json gives the documented keys with Jurassic's known values")
    func statsJSON() throws {
        let result = try vnetstream("trace", "stats", Self.jurassic, "--json")
        #expect(result.status == 0, "\(result.summary)")
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        #expect(object?["format"] as? String == "tkn-terse")
        #expect(object?["frames"] as? Int == 89_998)
        #expect(object?["max_frame_bytes"] as? Int == 16_745)
        #expect(abs((object?["mean_kbps"] as? Double ?? 0) - 766.3) < 0.05)
        #expect(abs((object?["duration_s"] as? Double ?? 0) - 3599.92) < 1e-6)
        #expect((object?["peak_kbps_1s"] as? Double ?? 0) > 766.3)
    }

    @Test("trace stats prints a table a person can read")
    func statsTable() throws {
        let result = try vnetstream("trace", "stats", Self.jurassic)
        #expect(result.status == 0, "\(result.summary)")
        #expect(result.stdout.contains("frames            89998"))
        #expect(result.stdout.contains("mean rate         766.300 kbit/s"))
        #expect(result.stdout.contains("largest frame     16745 bytes"))
    }

    @Test("a bad line stops the command with FILE:LINE on stderr and a failing exit status")
    func badLine() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try writeFile(directory, "bad.dat", "# TKN terse\n100\n200\n2x0\n")
        let result = try vnetstream("trace", "stats", path)
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(path):4: frame size '2x0' is not a whole number"), "\(result.summary)")
        #expect(result.stdout.isEmpty)
    }

    @Test("trace cbr writes the paper's CBR source, and bad rates are refused with the spelling to use")
    func cbr() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/cbr.csv"
        let result = try vnetstream("trace", "cbr", "--rate", "320kbit", "--fps", "25", "--duration", "150", "-o", path)
        #expect(result.status == 0, "\(result.summary)")
        let trace = try TraceReader.read(contentsOf: path)
        #expect(trace.frames.count == 3750 && trace.frames.allSatisfy { $0.bytes == 1600 })
        #expect(TraceStatistics(trace).meanKbps == 320)

        let bad = try vnetstream("trace", "cbr", "--rate", "320kbps", "-o", path)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("tc reads 'kbps' as kilobytes per second"), "\(bad.summary)")
    }

    @Test("trace fit on Jurassic prints and writes a part within 1 % of the mean and 5 % of the peak")
    func fit() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vbr.csv"
        let result = try vnetstream(
            "trace", "fit", Self.jurassic, "--mean", "320kbit", "--peak", "620kbit", "--duration", "150", "-o", path)
        #expect(result.status == 0, "\(result.summary)")
        #expect(result.stdout.contains("mean  "), "\(result.stdout)")
        let stats = TraceStatistics(try TraceReader.read(contentsOf: path))
        #expect(abs(stats.meanKbps / 320 - 1) < 0.01)
        #expect(abs(stats.peakKbps1s / 620 - 1) < 0.05)
        #expect(stats.frames == 3750)
        let header = try String(contentsOfFile: path, encoding: .utf8)
        #expect(header.contains("# source: \(Self.jurassic)"))
        #expect(header.contains("# scale factor: "))
    }

    @Test("trace extract finds every frame of an H.264 video ffmpeg encodes now, with ffprobe's sizes", .timeLimit(.minutes(2)))
    func extract() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let video = directory + "/pattern.mp4"
        let encoded = try runProcess(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi",
             "-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-c:v", "libx264", "-g", "25", "-bf", "2",
             "-pix_fmt", "yuv420p", video])
        #expect(encoded.status == 0, "\(encoded.summary)")
        let probed = try runProcess(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,size",
             "-of", "csv=p=0", video])
        let packets = probed.stdout.split(separator: "\n").map { $0.split(separator: ",") }
        let output = directory + "/pattern.csv"
        let result = try vnetstream("trace", "extract", video, "-o", output)
        #expect(result.status == 0, "\(result.summary)")
        let trace = try TraceReader.read(contentsOf: output)
        #expect(trace.frames.count == 100)
        #expect(trace.frames.count == packets.count)
        #expect(trace.frames.map(\.bytes) == packets.map { Int($0[1])! })
        let origin = packets.map { Double($0[0])! }.min()!
        for (frame, packet) in zip(trace.frames, packets) {
            #expect(abs(frame.time - (Double(packet[0])! - origin)) < 0.0005)
        }
        #expect(Set(trace.frames.map(\.type)) == [.i, .p, .b], "H.264's parser tells I, P and B")
        #expect(trace.isReordered)
    }

    @Test("help lists the trace subcommands with one sentence each")
    func help() throws {
        let result = try vnetstream("trace", "--help")
        #expect(result.status == 0)
        for name in ["stats", "cbr", "fit", "extract"] { #expect(result.stdout.contains("  \(name) ")) }
        let version = try vnetstream("--version")
        #expect(version.stdout.contains("libavformat") && version.stdout.contains("libpcap"))
    }
}
