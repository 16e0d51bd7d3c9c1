import Foundation
import TestSupport
import Testing
import Units

@testable import Traces

@Suite("Statistics, CBR and fitting on real traces")
struct TraceStatisticsTests {
    static let jurassic = sharedTrace("Terse_Jurassic.dat")

    @Test("the TKN Jurassic Park trace reads as published: 89,998 frames, 16,745 bytes at most, 766.3 kbit/s")
    func jurassic() throws {
        let trace = try TraceReader.read(contentsOf: Self.jurassic)
        let stats = TraceStatistics(trace)
        #expect(trace.format == .tknTerse)
        #expect(stats.frames == 89_998)
        #expect(stats.maxFrameBytes == 16_745)
        #expect(abs(stats.meanKbps - 766.3) < 0.05, "mean \(stats.meanKbps)")
        #expect(abs(stats.meanFrameBytes - 3831.5) < 0.05)
        #expect(abs(stats.durationSeconds - 3599.92) < 1e-6)
        #expect(stats.framesPerSecond == 25)
        #expect(stats.order == "display")
        // The peak is a real 1-second window's bits, so it is at least the mean and at most
        // 25 of the largest frames.
        #expect(stats.peakKbps1s > stats.meanKbps && stats.peakKbps1s <= 25 * 16_745 * 8 / 1000)
        let windows = TraceStatistics.oneSecondWindows(trace)
        #expect(windows.count == 3600)
        #expect(windows.reduce(0, +) == stats.totalBytes)
        #expect(Double(windows.max()!) * 8 / 1000 == stats.peakKbps1s)
    }

    @Test("trace fit of Jurassic to 320 kbit/s mean, 620 kbit/s peak, 150 s lands within 1 % and 5 %")
    func fit() throws {
        let source = try TraceReader.read(contentsOf: Self.jurassic)
        let fit = try TraceFitter.fit(source, mean: .kbit(320), peak: .kbit(620), duration: 150)
        let stats = fit.statistics
        #expect(stats.frames == 3750)
        #expect(abs(stats.durationSeconds - 150) < 1e-9)
        #expect(abs(stats.meanKbps / 320 - 1) < 0.01, "mean \(stats.meanKbps)")
        #expect(abs(stats.peakKbps1s / 620 - 1) < 0.05, "peak \(stats.peakKbps1s)")
        // The part is where the header says it is: its sizes are the source's, scaled.
        for offset in [0, 1, 1000, 3749] {
            let original = source.frames[fit.firstFrame + offset].bytes
            #expect(fit.trace.frames[offset].bytes == Int((Double(original) * fit.scale).rounded()))
        }
        // Written and read back, the header tells the same story and the numbers survive.
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/fit.csv"
        try TraceWriter.write(fit.trace, header: fit.header(source: Self.jurassic), to: path)
        let back = try TraceReader.read(contentsOf: path)
        #expect(back.frames == fit.trace.frames)
        #expect(TraceStatistics(back).meanKbps == stats.meanKbps)
        #expect(back.header.contains("first frame: \(fit.firstFrame) (display order, 0-based), at \(formatted(fit.startSeconds)) s in the source"))
        #expect(back.header.contains("scale factor: \(fit.scale)"))
    }

    @Test("fit refuses what cannot be met")
    func fitErrors() throws {
        let source = try CBRSource.trace(rate: .kbit(320), framesPerSecond: 25, duration: 10)
        #expect(throws: SourceError.self) { try TraceFitter.fit(source, mean: .kbit(320), peak: .kbit(620), duration: 11) }
        #expect(throws: SourceError.self) { try TraceFitter.fit(source, mean: .kbit(620), peak: .kbit(320), duration: 5) }
    }

    @Test("fit starts parts on I frames when the trace has types, and keeps coding order")
    func fitOnIFrames() throws {
        // Coding order I P B B, repeated; display order I B B P.
        var frames: [Frame] = []
        for gop in 0..<40 {
            let base = Double(gop * 4) / 25
            let big = gop == 20 ? 9000 : 3000
            frames += [
                Frame(type: .i, time: base, bytes: big), Frame(type: .p, time: base + 0.12, bytes: 1500),
                Frame(type: .b, time: base + 0.04, bytes: 500), Frame(type: .b, time: base + 0.08, bytes: 500),
            ]
        }
        let trace = FrameTrace(frames: frames, framesPerSecond: 25)
        let fit = try TraceFitter.fit(trace, mean: .kbit(100), peak: .kbit(400), duration: 2)
        #expect(fit.firstFrame % 4 == 0)
        #expect(fit.trace.frames.count == 50)
        #expect(fit.trace.frames.first?.type == .i)
        #expect(fit.trace.isReordered)
    }

    @Test("CBR 320 kbit/s at 25 frames/s for 150 s is 3750 frames of 1600 bytes")
    func cbr() throws {
        let trace = try CBRSource.trace(rate: .kbit(320), framesPerSecond: 25, duration: 150)
        #expect(trace.frames.count == 3750)
        #expect(trace.frames.allSatisfy { $0.bytes == 1600 })
        #expect(trace.frames[3749].time == 149.96)
        let stats = TraceStatistics(trace)
        #expect(stats.meanKbps == 320 && stats.peakKbps1s == 320)
    }

    @Test("CBR at a rate that is not whole bytes per frame stays within a byte of exact")
    func cbrUneven() throws {
        let trace = try CBRSource.trace(rate: .kbit(100), framesPerSecond: 30, duration: 10)
        let exact = 100_000.0 / 8 / 30
        var total = 0
        for (index, frame) in trace.frames.enumerated() {
            total += frame.bytes
            #expect(abs(Double(total) - exact * Double(index + 1)) < 1)
        }
        #expect(Set(trace.frames.map(\.bytes)) == [416, 417])
        #expect(throws: SourceError.self) { try CBRSource.trace(rate: .kbit(320), framesPerSecond: 0, duration: 1) }
        #expect(throws: SourceError.self) { try CBRSource.trace(rate: BitRate(bitsPerSecond: 100), framesPerSecond: 25, duration: 1) }
    }

    @Test("rates read as tc spells them and refuse tc's bytes-per-second")
    func rates() throws {
        #expect(try BitRate(parsing: "320kbit").bitsPerSecond == 320_000)
        #expect(try BitRate(parsing: "1.5mbit").bitsPerSecond == 1_500_000)
        #expect(try BitRate(parsing: "640000").bitsPerSecond == 640_000)
        #expect(try BitRate(parsing: "320k").bitsPerSecond == 320_000)
        #expect(try BitRate(parsing: "2gbit").bitsPerSecond == 2e9)
        #expect(BitRate.kbit(320).description == "320kbit")
        #expect(BitRate.mbit(1.5).description == "1.5mbit")
        #expect(BitRate(bitsPerSecond: 999).description == "999bit")
        for bad in ["320kbps", "fast", "", "-5kbit", "0", "inf"] {
            #expect(throws: BitRate.ParseError.self, "\(bad)") { try BitRate(parsing: bad) }
        }
    }

    @Test("written milliseconds are exact to the microsecond and read back")
    func milliseconds() throws {
        #expect(TraceWriter.milliseconds(0) == "0")
        #expect(TraceWriter.milliseconds(0.04) == "40")
        #expect(TraceWriter.milliseconds(1.0 / 30) == "33.333")
        #expect(TraceWriter.milliseconds(0.0005) == "0.5")
        #expect(TraceWriter.milliseconds(0.000001) == "0.001")
        #expect(TraceWriter.milliseconds(149.96) == "149960")
    }
}
