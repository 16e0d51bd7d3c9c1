import Foundation
import TestSupport
import Testing

@testable import Traces

/// A trace file as its tools write it, with the frames it must read as (bytes, display time in
/// seconds, coding order).
struct Sample: CustomStringConvertible {
    var format: TraceFormat
    var name: String
    var text: String
    var frames: [Frame]
    var framesPerSecond: Double
    var sizeUnit: SizeUnit
    /// A copy of `text` with one row broken, and the 1-based line that row is on.
    var broken: (text: String, line: Int, message: String)

    var description: String { name }
}

private func f(_ type: FrameType, _ ms: Double, _ bytes: Int) -> Frame {
    Frame(type: type, time: ms / 1000, bytes: bytes)
}

let samples: [Sample] = [
    Sample(
        format: .tknTerse, name: "TKN terse",
        text: "16745\n1536\n1433\n4125\n1520\n0\n3901\n",
        frames: [f(.unknown, 0, 16745), f(.unknown, 40, 1536), f(.unknown, 80, 1433), f(.unknown, 120, 4125),
                 f(.unknown, 160, 1520), f(.unknown, 200, 0), f(.unknown, 240, 3901)],
        framesPerSecond: 25, sizeUnit: .bytes,
        broken: ("16745\n1536\n\n1433\n41 25\n", 5, "expected 1 columns (bytes) for tkn-terse, found 2: '41 25'")),
    Sample(
        format: .tknVerbose, name: "TKN verbose",
        text: """
            Jurassic Park I, MPEG-4, high quality
            Frame   Type  Time[ms]  Length[byte]
            0       I     0         16745
            3       P     120       4125
            1       B     40        1536
            2       B     80        1433
            6       P     240       3901
            4       B     160       1520
            5       B     200       1399

            """,
        frames: [f(.i, 0, 16745), f(.p, 120, 4125), f(.b, 40, 1536), f(.b, 80, 1433), f(.p, 240, 3901),
                 f(.b, 160, 1520), f(.b, 200, 1399)],
        framesPerSecond: 25, sizeUnit: .bytes,
        broken: ("Frame Type Time[ms] Length[byte]\n0 I 0 16745\n3 P 120 4125\n1 X 40 1536\n", 4,
                 "frame type 'X' is not one of I, P, B, H (or - for unknown)")),
    Sample(
        format: .asu, name: "ASU MPEG-4 verbose, sizes in bits",
        text: """
            # Frame No.\tTime[ms]\tFrame Type\tFrame Size[byte]\tPSNR-Y\tPSNR-U\tPSNR-V
            # Sequence: Silence of the Lambs, QCIF, quantizer 4
            0\t0.0\tI\t133816\t36.1203\t40.8701\t41.2214
            3\t100.0\tP\t44032\t35.9811\t40.8103\t41.1902
            1\t33.3\tB\t11728\t35.4127\t40.7188\t41.0511
            2\t66.7\tB\t12456\t35.4400\t40.7022\t41.0723
            6\t200.0\tP\t40960\t35.9020\t40.7799\t41.1866
            4\t133.3\tB\t12000\t35.3911\t40.6964\t41.0420
            5\t166.7\tB\t11840\t35.4031\t40.7010\t41.0388

            """,
        frames: [f(.i, 0, 16727), f(.p, 100, 5504), f(.b, 33.3, 1466), f(.b, 66.7, 1557), f(.p, 200, 5120),
                 f(.b, 133.3, 1500), f(.b, 166.7, 1480)],
        framesPerSecond: 30.03, sizeUnit: .bits,
        broken: ("# Frame No.\tTime[ms]\tFrame Type\tFrame Size\n0\t0.0\tI\t133816\t36.1\t40.8\t41.2\n3\t100.0\tP\t-44032\t35.9\t40.8\t41.1\n", 3,
                 "frame size -44032 is negative")),
    Sample(
        format: .ns3, name: "ns-3 UdpTraceClient",
        text: "1\tI\t0\t534\n2\tP\t120\t1542\n3\tB\t40\t134\n4\tB\t80\t390\n5\tP\t240\t765\n6\tB\t160\t407\n7\tB\t200\t504\n",
        frames: [f(.i, 0, 534), f(.p, 120, 1542), f(.b, 40, 134), f(.b, 80, 390), f(.p, 240, 765),
                 f(.b, 160, 407), f(.b, 200, 504)],
        framesPerSecond: 25, sizeUnit: .bytes,
        broken: ("1\tI\t0\t534\n2\tP\t120\t1542.5\n", 2, "frame size '1542.5' is not a whole number")),
    Sample(
        format: .evalvid, name: "EvalVid st",
        text: """
            0\tH\t24\t1\t0.000
            1\tI\t9496\t7\t0.000
            2\tP\t2127\t2\t0.040
            3\tB\t1029\t1\t0.080
            4\tB\t1105\t1\t0.120
            5\tP\t2283\t2\t0.160
            6\tB\t1051\t1\t0.200

            """,
        frames: [f(.header, 0, 24), f(.i, 0, 9496), f(.p, 40, 2127), f(.b, 80, 1029), f(.b, 120, 1105),
                 f(.p, 160, 2283), f(.b, 200, 1051)],
        framesPerSecond: 25, sizeUnit: .bytes,
        broken: ("0\tH\t24\t1\t0.000\n1\tI\t9496\tseven\t0.000\n", 2, "packet count 'seven' is not a whole number")),
    Sample(
        format: .csv, name: "CSV",
        text: """
            # written by hand
            time_ms,bytes,type
            0,4989,I
            120,2089,P
            40,1074,B
            80,923,B

            """,
        frames: [f(.i, 0, 4989), f(.p, 120, 2089), f(.b, 40, 1074), f(.b, 80, 923)],
        framesPerSecond: 25, sizeUnit: .bytes,
        broken: ("time_ms,bytes,type\n0,4989,I\n# a comment\n\n40,abc,B\n", 5, "frame size 'abc' is not a whole number")),
]

@Suite("Trace formats")
struct TraceFormatTests {
    /// LF as written, CRLF, and no final newline: all read the same.
    static func variants(_ text: String) -> [(String, String)] {
        let lf = text.hasSuffix("\n") ? text : text + "\n"
        var trimmed = lf
        trimmed.removeLast()
        return [("LF", lf), ("CRLF", lf.replacingOccurrences(of: "\n", with: "\r\n")), ("no final newline", trimmed)]
    }

    @Test("reads every format, detected and named, in every line-end variant", arguments: samples)
    func readsSample(_ sample: Sample) throws {
        for (variant, text) in Self.variants(sample.text) {
            for named in [nil, sample.format] {
                let trace = try TraceReader.parse(
                    Array(text.utf8), file: "sample", options: TraceReadOptions(format: named))
                #expect(trace.format == sample.format, "\(variant)")
                #expect(trace.sizeUnitInFile == sample.sizeUnit, "\(variant)")
                #expect(trace.frames.count == sample.frames.count, "\(variant)")
                for (got, want) in zip(trace.frames, sample.frames) {
                    #expect(got.type == want.type && got.bytes == want.bytes, "\(variant): \(got) vs \(want)")
                    #expect(abs(got.time - want.time) < 1e-9, "\(variant): \(got) vs \(want)")
                }
                #expect(abs(trace.framesPerSecond - sample.framesPerSecond) < 0.01, "\(variant)")
            }
        }
    }

    @Test("a bad row stops the parse with FILE:LINE and says what is wrong", arguments: samples)
    func badRow(_ sample: Sample) throws {
        for (variant, text) in Self.variants(sample.broken.text) {
            let error = #expect(throws: TraceError.self, "\(variant)") {
                try TraceReader.parse(Array(text.utf8), file: "bad.trace", options: TraceReadOptions(format: sample.format))
            }
            #expect(error?.line == sample.broken.line, "\(variant)")
            #expect(error?.description == "bad.trace:\(sample.broken.line): \(sample.broken.message)", "\(variant)")
        }
    }

    @Test("comments, blank lines and trailing comments are not frames")
    func comments() throws {
        let text = "# TKN terse\n\n100 # first\n  200\t\n# middle\n300\n\n"
        let trace = try TraceReader.parse(Array(text.utf8), file: "c")
        #expect(trace.frames.map(\.bytes) == [100, 200, 300])
        #expect(trace.header == ["TKN terse", "first", "middle"])
    }

    @Test("ASU sizes that are not all multiples of 8 are bytes; --units overrides either way")
    func asuUnits() throws {
        let text = "0\t0.0\tI\t16745\t36.1\t40.8\t41.2\n1\t33.3\tP\t4125\t35.9\t40.8\t41.1\n"
        let bytes = try TraceReader.parse(Array(text.utf8), file: "a")
        #expect(bytes.format == .asu && bytes.sizeUnitInFile == .bytes)
        #expect(bytes.frames.map(\.bytes) == [16745, 4125])
        let bits = try TraceReader.parse(Array(text.utf8), file: "a", options: TraceReadOptions(sizeUnit: .bits))
        #expect(bits.frames.map(\.bytes) == [2094, 516])  // rounded up to whole bytes
        #expect(bits.notes.contains { $0.contains("rounded up") })
        let asBytes = try TraceReader.parse(Array(samples[2].text.utf8), file: "a", options: TraceReadOptions(sizeUnit: .bytes))
        #expect(asBytes.frames[0].bytes == 133816)
    }

    @Test("a CSV header names bits and seconds")
    func csvUnits() throws {
        let text = "time_s,bits\n0,8000\n0.04,16000\n"
        let trace = try TraceReader.parse(Array(text.utf8), file: "c")
        #expect(trace.frames.map(\.bytes) == [1000, 2000])
        #expect(trace.frames[1].time == 0.04)
    }

    @Test("times in seconds where milliseconds are expected are recognised")
    func secondsForMilliseconds() throws {
        let text = "1 I 0.00 534\n2 P 0.12 1542\n3 B 0.04 134\n4 B 0.08 390\n"
        let trace = try TraceReader.parse(Array(text.utf8), file: "n", options: TraceReadOptions(format: .ns3))
        #expect(abs(trace.frames[1].time - 0.12) < 1e-12)
        #expect(trace.framesPerSecond == 25)
        #expect(trace.notes.contains { $0.contains("times read as seconds") })
    }

    @Test("--fps re-times frames at exact intervals in display order, keeping coding order")
    func retime() throws {
        let trace = try TraceReader.parse(
            Array(samples[1].text.utf8), file: "v", options: TraceReadOptions(framesPerSecond: 50))
        #expect(trace.framesPerSecond == 50)
        #expect(trace.frames.map(\.time) == [0, 0.06, 0.02, 0.04, 0.12, 0.08, 0.1])
    }

    @Test("send times keep coding order and the display clock, and never run backwards")
    func sendTimes() throws {
        let trace = try TraceReader.parse(Array(samples[3].text.utf8), file: "n")
        #expect(trace.isReordered)
        let times = trace.sendTimes
        #expect(times == [0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24])
    }

    @Test("files that are not traces say why, naming the file")
    func notTraces() throws {
        for (text, message) in [
            ("", "empty: no frames: the file has no data rows"),
            ("# only a comment\n\n", "empty: no frames: the file has no data rows"),
            ("hello world\n", "empty: no frames: no row starts with a number"),
        ] {
            let error = #expect(throws: TraceError.self) { try TraceReader.parse(Array(text.utf8), file: "empty") }
            #expect(error?.description == message)
        }
        let undetectable = #expect(throws: TraceError.self) {
            try TraceReader.parse(Array("1 2 3\n".utf8), file: "odd")
        }
        #expect(undetectable?.description.hasPrefix("odd:1: cannot tell the trace format") == true)
        let missing = #expect(throws: TraceError.self) { try TraceReader.read(contentsOf: "/nonexistent/trace.dat") }
        #expect(missing?.description == "/nonexistent/trace.dat: cannot open: No such file or directory")
    }

    @Test("every frame at the same time cannot be paced without --fps")
    func sameTimes() throws {
        let error = #expect(throws: TraceError.self) {
            try TraceReader.parse(Array("time_ms,bytes\n0,10\n0,20\n".utf8), file: "t")
        }
        #expect(error?.description.contains("--fps") == true)
        let trace = try TraceReader.parse(
            Array("time_ms,bytes\n0,10\n0,20\n".utf8), file: "t", options: TraceReadOptions(framesPerSecond: 10))
        #expect(trace.frames.map(\.time) == [0, 0.1])
    }

    @Test("zero-size frames are kept and counted")
    func zeroSize() throws {
        let trace = try TraceReader.parse(Array(samples[0].text.utf8), file: "z")
        let stats = TraceStatistics(trace)
        #expect(stats.frames == 7 && stats.zeroSizeFrames == 1)
        #expect(trace.notes.contains { $0.contains("zero-size") })
    }
}
