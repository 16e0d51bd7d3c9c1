import Accounting
import Packets
import Shedding
import Testing
import Traces
import Units

/// A GoP of 12 in display order (IBBPBBPBBPBB), and the same frames in coding order (each B
/// after the anchor it precedes in display): frame types and sizes (I 8000, P 3000, B 1000 bytes).
func groups(_ count: Int, codingOrder: Bool) -> [FrameType] {
    let display = Array("IBBPBBPBBPBB")
    let coding = Array("IPBBPBBPBBBB")  // I0 P3 B1 B2 P6 B4 B5 P9 B7 B8 B10 B11
    let letters = codingOrder ? coding : display
    return (0..<count).flatMap { _ in letters.map { FrameType(letter: UInt8(ascii: $0.unicodeScalars.first!))! } }
}

func size(_ type: FrameType) -> Int {
    switch type {
    case .i: 8000
    case .p: 3000
    default: 1000
    }
}

/// Bytes per second of a stream of these groups at 25 frames/s: 25,000 bytes per 12 frames.
let streamBytesPerSecond = 25_000.0 * 25 / 12

func shed(_ types: [FrameType], rate: (Int) -> Double?, codingOrder: Bool, headroom: Double = 1) -> (sent: [Bool], shedder: FrameShedder) {
    var shedder = FrameShedder(types: types, wireBytes: types.map(size), framesPerSecond: 25, referencesFirst: codingOrder, headroom: headroom)
    let sent = types.indices.map { shedder.decide($0, deliverableBitsPerSecond: rate($0)) }
    return (sent, shedder)
}

/// Whether every frame that was sent has its references sent (what the receiver could decode
/// if everything sent arrived); `forward`: also a display-order B frame's anchor after it.
func referencesKept(_ types: [FrameType], _ sent: [Bool], codingOrder: Bool, forward: Bool = true) -> Bool {
    let anchors = types.indices.filter { types[$0] == .i || types[$0] == .p }
    for index in types.indices where sent[index] {
        let before = anchors.filter { $0 < index }
        switch types[index] {
        case .p: if let last = before.last, !sent[last] { return false }
        case .b:
            if codingOrder {
                if before.suffix(2).contains(where: { !sent[$0] }) { return false }
            } else {
                if let last = before.last, !sent[last] { return false }
                if forward, let next = anchors.first(where: { $0 > index }), !sent[next] { return false }
            }
        default: break
        }
    }
    return true
}

@Suite("Shedding frames by priority when the VNets together fall short")
struct ShedderTests {
    @Test("with room for the stream, or no rate known, nothing is shed", arguments: [false, true])
    func nothingShed(codingOrder: Bool) {
        let types = groups(20, codingOrder: codingOrder)
        let ample = shed(types, rate: { _ in streamBytesPerSecond * 8 * 1.01 }, codingOrder: codingOrder)
        #expect(ample.sent.allSatisfy { $0 })
        let unknown = shed(types, rate: { _ in nil }, codingOrder: codingOrder)
        #expect(unknown.sent.allSatisfy { $0 })
    }

    @Test("B frames go first, then P frames from the end of the group, never an I frame", arguments: [false, true])
    func order(codingOrder: Bool) {
        let types = groups(10, codingOrder: codingOrder)
        // 80 % of the stream: shedding the group's B frames (8,000 of 25,000 bytes) is enough.
        let mild = shed(types, rate: { _ in streamBytesPerSecond * 8 * 0.8 }, codingOrder: codingOrder)
        #expect(types.indices.allSatisfy { mild.sent[$0] || types[$0] == .b }, "only B frames are shed at 80 %")
        #expect(mild.shedder.shedFrames[.b, default: 0] >= 10 * 5)
        // 48 % (12,000 bytes of a group's 25,000): all B frames and the last two P frames of a
        // group (the first P frame goes along when what earlier groups left over covers it).
        let hard = shed(types, rate: { _ in streamBytesPerSecond * 8 * 0.48 }, codingOrder: codingOrder)
        var keptBytes = 0
        for group in 0..<10 {
            let range = group * 12..<(group + 1) * 12
            let sentTypes = range.filter { hard.sent[$0] }.map { types[$0] }
            #expect(sentTypes == [.i, .p] || sentTypes == [.i, .p, .p], "group \(group) sends \(sentTypes)")
            keptBytes += range.filter { hard.sent[$0] }.reduce(0) { $0 + size(types[$1]) }
        }
        #expect(keptBytes <= 10 * 12_000 + 1 && keptBytes >= 10 * 11_000, "\(keptBytes) bytes in 10 groups of a 12,000-byte budget")
        // No capacity at all: the I frames still go, nothing else.
        let none = shed(types, rate: { _ in 0 }, codingOrder: codingOrder)
        #expect(types.indices.allSatisfy { none.sent[$0] == (types[$0] == .i) })
        #expect(none.shedder.shedFrames[.i] == nil)
    }

    @Test("whatever the rate does, a frame is sent only with its references, and a group's kept frames fit its budget", arguments: [false, true])
    func consistent(codingOrder: Bool) {
        let types = groups(200, codingOrder: codingOrder)
        var random = SplitMix64(seed: codingOrder ? 7 : 11)
        var rates: [Double] = []
        var level = 0.7
        for index in types.indices {
            if index % 5 == 0 { level = Double.random(in: 0.1...1.3, using: &random) }
            rates.append(streamBytesPerSecond * 8 * level)
        }
        let result = shed(types, rate: { rates[$0] }, codingOrder: codingOrder)
        // (In display order a B frame goes before the anchor after it, which a rate that falls
        // later may shed: only the references before a frame are sure.)
        let kept = referencesKept(types, result.sent, codingOrder: codingOrder, forward: false)
        #expect(kept)
        #expect(result.sent.contains(false) && result.sent.contains(true))
        // A rate that holds for each group: what the group sends fits what the rate allows over
        // its frame slots (or is its I frame alone).
        let groupRates = (0..<200).map { _ in streamBytesPerSecond * 8 * Double.random(in: 0.1...1.3, using: &random) }
        let steady = shed(types, rate: { groupRates[$0 / 12] }, codingOrder: codingOrder)
        let steadyKept = referencesKept(types, steady.sent, codingOrder: codingOrder)
        #expect(steadyKept)
        var keptTotal = 0.0
        var usable = 0.0
        for group in 0..<200 {
            let range = group * 12..<(group + 1) * 12
            let kept = range.filter { steady.sent[$0] }.reduce(0) { $0 + size(types[$1]) }
            let allowed = groupRates[group] / 8 * 12 / 25
            // What the group may use: its own allowance, what the last one left (two slots at
            // most), or its I frame alone.
            #expect(Double(kept) <= max(allowed * (1 + 2.0 / 12), 8000) + 1, "group \(group): \(kept) bytes kept, \(allowed) allowed")
            keptTotal += Double(kept)
            usable += min(allowed, 25_000)
        }
        #expect(keptTotal >= 0.9 * usable, "\(keptTotal) bytes kept of \(usable) the rates allowed: more shed than needed")
    }

    @Test("shedding ends when the rate covers the stream again")
    func resumes() {
        let types = groups(20, codingOrder: true)
        let result = shed(types, rate: { $0 < 120 ? streamBytesPerSecond * 8 * 0.6 : streamBytesPerSecond * 8 * 1.05 }, codingOrder: true)
        #expect(result.sent[0..<120].contains(false))
        #expect(result.sent[120...].allSatisfy { $0 }, "every frame from the first group after the rate came back")
    }

    @Test("GoP patterns: read, refused with the reason, laid over an untyped trace in display order")
    func pattern() throws {
        #expect(try GoPPattern("ibbp").description == "IBBP")
        #expect(throws: GoPPatternError.self) { try GoPPattern("") }
        #expect(throws: GoPPatternError.self) { try GoPPattern("PBB") }
        #expect(throws: GoPPatternError.self) { try GoPPattern("IBBIBB") }
        #expect(throws: GoPPatternError.self) { try GoPPattern("IBX") }
        let trace = FrameTrace(frames: (0..<25).map { Frame(type: .unknown, time: Double($0) / 25, bytes: 100) }, framesPerSecond: 25)
        #expect(!trace.hasFrameTypes)
        let typed = trace.assigning(.mpeg4)
        #expect(typed.frames.map(\.type.rawValue).joined() == "IBBPBBPBBPBBIBBPBBPBBPBBI")
        #expect(typed.hasFrameTypes)
    }
}

/// Feeds a receiver's accounting with the packets of `frames` (type letter and packet count),
/// leaving out the packets in `lose` (frame number, fragment index) and the frames in `shedFrames`.
/// `typed`: the receiver was given the trace's frame types.
func account(_ frames: [(Character, Int)], lose: Set<[Int]> = [], shedFrames: Set<Int> = [], codingOrder: Bool, intervalSeconds: Double = 100, typed: Bool = false) -> LossReport {
    let types = typed ? frames.map { UInt8(ascii: $0.0.unicodeScalars.first!) } : nil
    var accounting = StreamAccounting(streamID: 1, intervalSeconds: intervalSeconds, frameTypes: types)
    var sequence: UInt32 = 0
    var shedRun = 0
    var arrival: UInt64 = 1_000_000_000
    for (number, frame) in frames.enumerated() {
        if shedFrames.contains(number) {
            shedRun += 1
            continue
        }
        for fragment in 0..<frame.1 {
            let header = MediaHeader(
                streamID: 1, streamSequence: sequence, pathSequence: sequence, frameNumber: UInt32(number),
                sendTimeNanoseconds: UInt64(number) * 40_000_000, fragmentIndex: UInt16(fragment), fragmentCount: UInt16(frame.1), pathID: 0,
                frameType: UInt8(ascii: frame.0.unicodeScalars.first!), mark: 0, shedBefore: UInt8(shedRun), referencesFirst: codingOrder)
            sequence += 1
            arrival += 40_000_000 / UInt64(frame.1)
            if !lose.contains([number, fragment]) {
                accounting.record(header, bytes: MediaHeader.size + 1000, tos: 0, arrival: arrival)
            }
        }
        shedRun = 0
    }
    accounting.record(
        StreamEnd(
            streamID: 1, streamPackets: sequence, frameCount: UInt32(frames.count), lastSendTimeNanoseconds: UInt64(frames.count) * 40_000_000,
            paths: [.init(pathID: 0, packetsSent: sequence)]), arrival: arrival + 1)
    return accounting.lossReport()
}

func figures(_ report: LossReport, _ type: String) -> LossReport.FrameFigures? { report.frames.first { $0.type == type } }

@Suite("Decodable frames at the receiver")
struct DecodableFrameTests {
    let coding: [(Character, Int)] = Array("IPBBPBBIPBBPBB").map { ($0, $0 == "I" ? 3 : 1) }
    let display: [(Character, Int)] = Array("IBBPBBPIBBPBBP").map { ($0, $0 == "I" ? 3 : 1) }

    @Test("everything arrived: every frame decodable, its bytes counted")
    func all() {
        let report = account(coding, codingOrder: true)
        #expect(report.frames.allSatisfy { $0.decodable == $0.frames && $0.lost == 0 && $0.shed == 0 })
        #expect(report.frames.reduce(0) { $0 + $1.decodableBytes } == 2 * 3000 + 12 * 1000)
    }

    @Test("a lost P frame takes the frames that refer to it along, until the next I frame (coding order)")
    func lostP() {
        // Frame 1 is the first P: its B frames (2, 3), the next P (4) and its B frames (5, 6) go too.
        let report = account(coding, lose: [[1, 0]], codingOrder: true, typed: true)
        #expect(figures(report, "I")?.decodable == 2)
        #expect(figures(report, "P")?.decodable == 2 && figures(report, "P")?.lost == 1)
        #expect(figures(report, "B")?.decodable == 4, "only the second group's B frames")
        // Losing one packet of the second group's I frame: all of that group.
        let lostI = account(coding, lose: [[7, 2]], codingOrder: true, typed: true)
        #expect(figures(lostI, "I")?.decodable == 1 && figures(lostI, "P")?.decodable == 2 && figures(lostI, "B")?.decodable == 4)
    }

    @Test("display order: a B frame needs the anchor after it")
    func displayOrder() {
        // Frame 3 is the P after frames 1 and 2: they cannot be decoded, nor P 6 and B 4, 5.
        let report = account(display, lose: [[3, 0]], codingOrder: false, typed: true)
        #expect(figures(report, "B")?.decodable == 4, "\(report.frames)")
        #expect(figures(report, "P")?.decodable == 2)
    }

    @Test("shed frames are counted as shed, not lost, and their dependants were not sent")
    func shedCounted() {
        // The first group's B frames and its last P (4, then 5 and 6 with it) are shed.
        let report = account(coding, shedFrames: [2, 3, 4, 5, 6], codingOrder: true, typed: true)
        #expect(figures(report, "B")?.shed == 4 && figures(report, "B")?.lost == 0)
        #expect(figures(report, "P")?.shed == 1 && figures(report, "P")?.lost == 0)
        #expect(report.total.lost == 0, "no packet is missing")
        #expect(figures(report, "I")?.decodable == 2 && figures(report, "P")?.decodable == 3 && figures(report, "B")?.decodable == 4)
        // Shed frames at the very end of the stream (no frame after them to say so) are lost.
        let tail = account(coding, shedFrames: [13], codingOrder: true, typed: true)
        // Without the trace the receiver knows them only as frames of unknown type.
        let untyped = account(coding, shedFrames: [2, 3], codingOrder: true)
        #expect(figures(untyped, "-")?.shed == 2 && untyped.total.lost == 0)
        #expect(figures(tail, "B")?.lost == 1 && figures(tail, "B")?.shed == 0)
    }

    @Test("without the trace, a frame of which nothing arrived is taken for a lost reference")
    func untypedMissing() {
        // Frame 2 is a B frame; the receiver cannot know, so the frames after it up to the next
        // I frame are not counted decodable. With the trace, only frame 2 itself is lost.
        let untyped = account(coding, lose: [[2, 0]], codingOrder: true)
        #expect(untyped.frames.reduce(0) { $0 + $1.decodable } == 2 + 7, "\(untyped.frames)")
        let typed = account(coding, lose: [[2, 0]], codingOrder: true, typed: true)
        #expect(typed.frames.reduce(0) { $0 + $1.decodable } == 13)
    }

    @Test("per interval: frames fall in their send time's interval")
    func intervals() {
        // 14 frames at 40 ms, intervals of 0.28 s: seven frames each.
        let report = account(coding, lose: [[8, 0]], codingOrder: true, intervalSeconds: 0.28)
        let perInterval = report.intervals.map { ($0.frames ?? []).reduce(0) { $0 + $1.decodable } }
        #expect(perInterval == [7, 1], "\(perInterval)")
    }
}
