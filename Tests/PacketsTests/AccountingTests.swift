import Testing

@testable import Accounting
@testable import Packets
@testable import Splitting

/// A packet as a sender would have made it: stream and path sequence, frame, time.
func packet(
    _ streamSequence: UInt32, path: UInt8, pathSequence: UInt32, frame: UInt32, seconds: Double,
    fragment: UInt16 = 0, of count: UInt16 = 1, type: Character = "P"
) -> MediaHeader {
    MediaHeader(
        streamID: 1, streamSequence: streamSequence, pathSequence: pathSequence, frameNumber: frame,
        sendTimeNanoseconds: UInt64(seconds * 1e9), fragmentIndex: fragment, fragmentCount: count, pathID: path,
        frameType: UInt8(ascii: type.unicodeScalars.first!), mark: 0xB8)
}

@Suite("Receiver accounting")
struct AccountingTests {
    /// 20 packets, alternating paths, one per 0.5 s over 10 s; `lost` never arrive.
    func stream(lost: Set<UInt32>, order: [UInt32]? = nil, interval: Double = 5) -> StreamAccounting {
        var accounting = StreamAccounting(streamID: 1, intervalSeconds: interval)
        for s in order ?? Array(0..<20) where !lost.contains(s) {
            let header = packet(s, path: UInt8(s % 2), pathSequence: s / 2, frame: s, seconds: Double(s) * 0.5)
            accounting.record(header, bytes: 100, tos: 0xB8, arrival: UInt64(Double(s) * 0.5e9) + 10_000_000)
        }
        accounting.record(
            StreamEnd(streamID: 1, streamPackets: 20, frameCount: 20, lastSendTimeNanoseconds: 9_500_000_000,
                      paths: [.init(pathID: 0, packetsSent: 10), .init(pathID: 1, packetsSent: 10)]),
            arrival: 10_000_000_000)
        return accounting
    }

    @Test("losses are counted per path and per send-time interval, and add up to the total")
    func losses() {
        let report = stream(lost: [3, 4, 12]).lossReport()
        #expect(report.total.sent == 20 && report.total.lost == 3)
        #expect(report.intervals.count == 2)
        #expect(report.intervals[0].lost == 2 && report.intervals[1].lost == 1)
        let first = report.intervals[0]
        #expect(first.perVNet.map(\.lost) == [1, 1])  // 4 on path 0, 3 on path 1
        #expect(first.perVNet.map(\.sent) == [5, 5])
        #expect(first.perVNet.map(\.lossPctOfPath) == [20, 20])
        #expect(first.perVNet.map(\.lossPctOfAll) == [10, 10])
        #expect(first.perVNet.reduce(0) { $0 + $1.lost } == first.lost)
        #expect(report.paths.map(\.lost) == [2, 1])
        #expect(report.paths.allSatisfy { $0.tosMismatches == 0 && $0.tosSeen == ["184": $0.received] })
    }

    @Test("losses at the end of the stream count once the sender says how many it sent")
    func tail() {
        let report = stream(lost: [17, 18, 19]).lossReport()
        #expect(report.endReceived)
        #expect(report.total.lost == 3 && report.intervals[1].lost == 3)
        #expect(report.paths.map(\.lost) == [1, 2])  // 18 went on path 0; 17 and 19 on path 1
        var noEnd = StreamAccounting(streamID: 1, intervalSeconds: 5)
        noEnd.record(packet(0, path: 0, pathSequence: 0, frame: 0, seconds: 0), bytes: 1, tos: nil, arrival: 1)
        #expect(noEnd.lossReport().endReceived == false)
        #expect(noEnd.lossReport().markdown.contains("end-of-stream message did not arrive"))
    }

    @Test("a packet that arrives late is not lost, it is reordered; one that arrives twice is a duplicate")
    func reorderAndDuplicates() {
        var order = Array(UInt32(0)..<20)
        order.swapAt(4, 8)  // path 0: 0 1 4(seq 2..) -> seq 4 arrives before 2 and 3
        let report = stream(lost: [], order: order).lossReport()
        #expect(report.total.lost == 0)
        #expect(report.paths[0].reordered == 2)  // path sequences 2 and 3 arrived after 4
        var accounting = stream(lost: [])
        accounting.record(packet(5, path: 1, pathSequence: 2, frame: 5, seconds: 2.5), bytes: 100, tos: 0xB8, arrival: 11_000_000_000)
        let twice = accounting.lossReport()
        #expect(twice.paths[1].duplicates == 1 && twice.total.lost == 0 && twice.paths[1].received == 10)
    }

    @Test("a gap across an interval boundary is split by send time")
    func gapAcrossBoundary() {
        // Path 0 carries stream packets 0, 2, 4, ... at 0.5 s steps; lose path-0 packets 3..7
        // (stream 6..14, sent 3.0-7.0 s): 3 and 4 fall before the 5 s boundary, 5, 6, 7 after.
        let report = stream(lost: [6, 8, 10, 12, 14]).lossReport()
        #expect(report.intervals[0].perVNet[0].lost == 2)
        #expect(report.intervals[1].perVNet[0].lost == 3)
        #expect(report.total.lost == 5)
    }

    @Test("a frame is lost when any of its packets is, counted by type")
    func frames() {
        var accounting = StreamAccounting(streamID: 1, intervalSeconds: 30, frameTypes: Array("IPB".utf8))
        // Frame 0 (I): two fragments, both arrive. Frame 1 (P): one of two arrives. Frame 2 (B): nothing arrives.
        accounting.record(packet(0, path: 0, pathSequence: 0, frame: 0, seconds: 0, fragment: 0, of: 2, type: "I"), bytes: 1, tos: 0, arrival: 1)
        accounting.record(packet(1, path: 0, pathSequence: 1, frame: 0, seconds: 0, fragment: 1, of: 2, type: "I"), bytes: 1, tos: 0, arrival: 2)
        accounting.record(packet(2, path: 0, pathSequence: 2, frame: 1, seconds: 0.04, fragment: 0, of: 2, type: "P"), bytes: 1, tos: 0, arrival: 3)
        accounting.record(
            StreamEnd(streamID: 1, streamPackets: 5, frameCount: 3, lastSendTimeNanoseconds: 80_000_000, paths: [.init(pathID: 0, packetsSent: 5)]),
            arrival: 4)
        let frames = Dictionary(uniqueKeysWithValues: accounting.lossReport().frames.map { ($0.type, ($0.frames, $0.lost)) })
        #expect(frames["I"]! == (1, 0))
        #expect(frames["P"]! == (1, 1))
        #expect(frames["B"]! == (1, 1))
    }

    @Test("garbage is counted by reason and changes nothing else")
    func garbage() {
        var accounting = stream(lost: [3])
        let before = accounting.lossReport()
        accounting.drop(.foreign)
        accounting.drop(.short)
        accounting.drop(.short)
        // A packet of ours whose send time is absurdly far in the future is not believed.
        accounting.record(packet(21, path: 0, pathSequence: 4_000_000_000, frame: 21, seconds: 1e7), bytes: 100, tos: 0xB8, arrival: 10_500_000_000)
        let after = accounting.lossReport()
        #expect(after.dropped == ["foreign": 1, "short": 2, "garbled": 1])
        #expect(after.intervals == before.intervals && after.total == before.total && after.paths == before.paths)
    }

    @Test("memory stays bounded: a huge sequence jump costs no more than the window")
    func hugeJump() {
        var accounting = StreamAccounting(streamID: 1, intervalSeconds: 30)
        accounting.record(packet(0, path: 0, pathSequence: 0, frame: 0, seconds: 0), bytes: 1, tos: nil, arrival: 1)
        accounting.record(packet(4_000_000_000, path: 0, pathSequence: 4_000_000_000, frame: 4_000_000_000, seconds: 1), bytes: 1, tos: nil, arrival: 2)
        let report = accounting.lossReport()
        #expect(report.total.lost == 3_999_999_999)
        #expect(report.frames.reduce(0) { $0 + $1.frames } == 4_000_000_001)
    }
}

@Suite("Splitter")
struct SplitterTests {
    func picks(_ weights: [Double], _ count: Int) -> [Int] {
        var splitter = WeightedSplitter(weights: weights)
        return (0..<count).map { _ in splitter.next() }
    }

    @Test("1:1 alternates, 1:0 never uses the second path, 3:1 spreads the minority evenly")
    func ratios() {
        #expect(picks([1, 1], 6) == [0, 1, 0, 1, 0, 1])
        #expect(picks([1, 0], 50).allSatisfy { $0 == 0 })
        let threeToOne = picks([3, 1], 400)
        #expect(threeToOne.filter { $0 == 1 }.count == 100)
        // Between two picks of path 1 there are always exactly three of path 0: no bursts.
        let ones = threeToOne.indices.filter { threeToOne[$0] == 1 }
        #expect(zip(ones, ones.dropFirst()).allSatisfy { $1 - $0 == 4 })
    }

    @Test("any ratio stays within one packet of exact at every prefix")
    func smooth() {
        for weights in [[1.0, 1.0], [2, 1], [0.7, 0.3], [1, 2, 3]] {
            var splitter = WeightedSplitter(weights: weights)
            var counts = Array(repeating: 0, count: weights.count)
            let total = weights.reduce(0, +)
            for n in 1...1000 {
                counts[splitter.next()] += 1
                for (i, w) in weights.enumerated() { #expect(abs(Double(counts[i]) - Double(n) * w / total) < 1, "\(weights) at \(n)") }
            }
        }
    }

    @Test("split ratios read as written")
    func parse() {
        #expect(SplitRatio("1:1")?.weights == [1, 1])
        #expect(SplitRatio("3:1")?.weights == [3, 1])
        #expect(SplitRatio("1:0")?.weights == [1, 0])
        #expect(SplitRatio("0:0") == nil && SplitRatio("a:b") == nil && SplitRatio("-1:2") == nil)
    }

    @Test("delay percentiles come from the histogram, negative relative delays included, to 3 significant digits")
    func delayPercentiles() {
        var histogram = DelayHistogram()
        #expect(histogram.percentile(50) == nil)
        // 100 delays: -4.0 ms ten times, then 1 ms to 90 ms.
        for _ in 0..<10 { histogram.record(nanoseconds: -4_000_000) }
        for ms in 1...90 { histogram.record(nanoseconds: Int64(ms) * 1_000_000) }
        #expect(histogram.count == 100)
        #expect(abs((histogram.percentile(5) ?? 0) + 4) < 0.01)
        #expect(abs((histogram.percentile(50) ?? 0) - 40) < 0.05)
        #expect(abs((histogram.percentile(99) ?? 0) - 89) < 0.1)
        #expect(abs((histogram.percentile(100) ?? 0) - 90) < 0.1)
        histogram.reset()
        #expect(histogram.count == 0)
    }
}
