import Control
import Foundation
import Packets
import RunRecords
import Splitting
import Testing

@testable import Streaming

/// A stage that counts what passes through it, and optionally adds one copy of each frame's
/// last packet on VNet 2 (the way a parity stage adds packets), so the test sees that what a
/// stage adds reaches the writer with its own path sequence.
struct CountingStage: SenderStage {
    var packets = 0
    var batches = 0
    var reports = 0
    var addOne = false

    mutating func process(_ packets: inout [OutgoingPacket], now: UInt64) {
        self.packets += packets.count
        batches += 1
        if addOne, var extra = packets.last {
            extra.vnet = 1
            extra.copy = true
            packets.append(extra)
        }
    }

    mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64) { reports += 1 }
}

@Suite("The sender's core: frames in, packets with a VNet out (no I/O)")
struct SenderCoreTests {
    /// Feeds `frames` frames of `bytes` to a core, writes everything it hands out (all taken),
    /// and returns the stamped headers.
    func drive(_ core: inout SenderCore, frames: Int, bytes: Int) -> [(MediaHeader, OutgoingPacket)] {
        var written: [(MediaHeader, OutgoingPacket)] = []
        var out: [OutgoingPacket] = []
        for number in 0..<frames {
            out.removeAll()
            let now = UInt64(number) * 40_000_000
            core.packets(ofFrame: bytes, type: UInt8(ascii: "P"), number: UInt32(number), sendTime: now, now: now, into: &out)
            for packet in out {
                let header = core.stamp(packet)
                core.written(header, payloadBytes: packet.payloadBytes, copy: packet.copy, taken: true, now: now)
                written.append((header, packet))
            }
        }
        return written
    }

    @Test("pacing: a probe train waits for a full bucket, leaves whole with one departure, takes the stream waiting behind it for its copies, and the stream after it waits until the bottleneck drained it")
    func trainWaitsForAnEmptyQueue() {
        func packet(_ sequence: UInt32, train: Bool = false, copy: Bool = false, sentAt: UInt64 = 0) -> OutgoingPacket {
            let header = MediaHeader(
                streamID: 1, streamSequence: sequence, pathSequence: 0, frameNumber: sequence, sendTimeNanoseconds: sentAt, fragmentIndex: 0,
                fragmentCount: 1, pathID: 0, frameType: UInt8(ascii: "P"), mark: 0, shedBefore: 0, referencesFirst: false)
            // 1200 B of payload: 1228 B of IPv4, 9936 bits on the link.
            return OutgoingPacket(header: header, payloadBytes: 1200, vnet: 0, copy: copy, train: train)
        }
        let ms: UInt64 = 1_000_000
        // 115 kbit/s: one 9936-bit packet every 86.4 ms; the bucket is one full-size packet deep.
        var pacing = VNetPacing(vnets: 1, holdNanoseconds: 500 * ms)
        pacing.set(rates: [115_000], now: 0)
        var out: [OutgoingPacket] = []
        pacing.admit([packet(0)], exempt: { $0.copy }, now: 0, into: &out)
        #expect(out.count == 1, "a full bucket lets the first packet go")
        // A train right behind it: the bucket is empty, so the bottleneck still holds a packet.
        out.removeAll()
        pacing.admit([packet(1, train: true), packet(2, train: true), packet(2, train: true, copy: true)], exempt: { $0.copy }, now: 10 * ms, into: &out)
        #expect(out.isEmpty && pacing.waiting(0) == 3, "the train waits, its copy included")
        // The next frame's packet waits behind the train.
        pacing.admit([packet(3, sentAt: 40 * ms)], exempt: { $0.copy }, now: 40 * ms, into: &out)
        #expect(out.isEmpty && pacing.waiting(0) == 4)
        let release = pacing.nextRelease() ?? 0
        #expect(release >= 80 * ms && release <= 95 * ms, "when the bucket is full again, one packet time on (\(release / ms) ms)")
        pacing.due(now: 60 * ms, into: &out)
        #expect(out.isEmpty)
        pacing.due(now: release, into: &out)
        // Whole and in order, the waiting stream packet in place of the copy, which is dropped.
        #expect(out.map(\.header.streamSequence) == [1, 2, 3] && out.allSatisfy { $0.train && !$0.copy }, "\(out.map(\.header.streamSequence))")
        #expect(pacing.droppedCopies == 1 && pacing.waiting(0) == 0)
        // One departure (send time plus held time) for the three, to the microsecond, so the
        // receiver takes them for one train; the send times stay the frames'. The wait does not
        // read as queueing in the network.
        let departures = out.map(\.header.departureNanoseconds)
        #expect(departures.max()! - departures.min()! < 1000 && departures.min()! >= release - 10 * ms, "\(departures)")
        #expect(out.map(\.header.sendTimeNanoseconds) == [0, 0, 40 * ms])
        // The stream's next packet owes the train's three packets less the full bucket's one:
        // (3 - 1 + 1) x 9936 bits at 115 kbit/s, 240 ms after the train.
        out.removeAll()
        pacing.admit([packet(4)], exempt: { $0.copy }, now: release + 1 * ms, into: &out)
        #expect(out.isEmpty)
        let next = pacing.nextRelease() ?? 0
        #expect(next >= release + 230 * ms && next <= release + 250 * ms, "\((next - release) / ms) ms after the train")
        // On an idle VNet a train goes at once, copies and all.
        var idle = VNetPacing(vnets: 1, holdNanoseconds: 500 * ms)
        idle.set(rates: [115_000], now: 0)
        out.removeAll()
        idle.admit([packet(1, train: true), packet(2, train: true), packet(2, train: true, copy: true)], exempt: { $0.copy }, now: 5 * ms, into: &out)
        #expect(out.count == 3 && idle.droppedCopies == 0)
    }

    @Test("a static 1:1 split alternates by bytes, path sequences run without gaps per VNet, and a stage sees every packet")
    func staticSplitThroughAStage() throws {
        var core = SenderCore(
            streamID: 7, mark: try TrafficMark(parsing: "EF"), mtu: 1500, vnets: 2, mode: .fixed(SplitRatio(weights: [1, 1])),
            adaptive: .init(), stages: [CountingStage()])
        let written = drive(&core, frames: 100, bytes: 3000)
        // 3000 B at a 1500 B MTU: 1500 - 28 - 40 = 1432 B of media a packet, so 3 packets a frame.
        #expect(written.count == 300)
        let stage = try #require(core.stages.first as? CountingStage)
        #expect(stage.packets == 300 && stage.batches == 100)
        for vnet in 0..<2 {
            let sequences = written.filter { Int($0.0.pathID) == vnet }.map(\.0.pathSequence)
            #expect(sequences == Array(0..<UInt32(sequences.count)), "VNet \(vnet + 1)'s path sequences")
        }
        let bytes = (0..<2).map { vnet in written.filter { Int($0.0.pathID) == vnet }.map(\.1.payloadBytes).reduce(0, +) }
        #expect(abs(Double(bytes[0]) / Double(bytes[0] + bytes[1]) - 0.5) < 0.01, "\(bytes)")
        #expect(written.allSatisfy { $0.0.streamID == 7 && $0.0.mark == 0xb8 })
        #expect(Set(written.map(\.0.streamSequence)).count == 300 && core.streamSequence == 300)
        let end = core.end(frames: 100, lastSendTime: 0)
        #expect(end.paths.map(\.packetsSent).reduce(0, +) == 300)
    }

    @Test("what a stage adds is written with its own path sequence and counted as a copy; reports reach the stage")
    func stageAddsPackets() throws {
        var core = SenderCore(
            streamID: 1, mark: .bestEffort, mtu: 1500, vnets: 2, mode: .uni(1), adaptive: .init(),
            stages: [CountingStage(addOne: true)])
        let written = drive(&core, frames: 10, bytes: 1000)
        #expect(written.count == 20)
        #expect(written.filter { $0.0.pathID == 1 }.map(\.0.pathSequence) == Array(0..<10))
        #expect(core.vnets[1].copies == 10 && core.vnets[0].packets == 10 && core.vnets[0].copies == 0)
        core.received(ReceiverReport(streamID: 1, reportSequence: 0, reportTimeNanoseconds: 0, paths: []), over: 0, now: 0)
        #expect((core.stages.first as? CountingStage)?.reports == 1 && core.vnets[0].reportsReceived == 1)
    }

    @Test("with --recovery arq: packets say the sender resends and leave room for the origin; a NACK's packet goes again on the other VNet, charged to it")
    func recoveryThroughTheCore() throws {
        var core = SenderCore(
            streamID: 1, mark: .bestEffort, mtu: 1500, vnets: 2, mode: .fixed(SplitRatio(weights: [1, 1])), adaptive: .init(),
            recovery: .arq, latencySeconds: 0.2)
        let written = drive(&core, frames: 10, bytes: 3000)
        #expect(written.allSatisfy { $0.0.resends })
        // 1500 - 28 - 40 - 8: every packet, with its origin added, still fits the MTU.
        #expect(written.allSatisfy { $0.1.ipv4Bytes + MediaHeader.originSize <= 1500 } && written.count == 30)
        let lost = try #require(written.first { $0.0.pathID == 0 && $0.0.pathSequence == 4 })
        // Its frame's time (frame 2 or 3: 80 or 120 ms) plus 200 ms, less the 20 ms margin, is later.
        let now: UInt64 = 150_000_000
        #expect(lost.0.frameNumber <= 3)
        core.received(Nack(streamID: 1, sequence: 0, ranges: Nack.ranges(pathID: 0, sequences: [4])), now: now)
        #expect(core.nextDue == 0)
        var out: [OutgoingPacket] = []
        core.due(now: now, into: &out)
        let resend = try #require(out.first)
        #expect(out.count == 1 && resend.vnet == 1 && !resend.copy)
        #expect(resend.header.origin == MediaHeader.Origin(pathID: 0, pathSequence: 4) && resend.header.streamSequence == lost.0.streamSequence)
        #expect(resend.payloadBytes == lost.1.payloadBytes + MediaHeader.originSize)
        let header = core.stamp(resend)
        core.written(header, payloadBytes: resend.payloadBytes, copy: false, taken: true, now: now)
        #expect(header.pathID == 1 && header.pathSequence == 15 && core.vnets[1].resent == 1 && core.vnets[1].packets == 16)
        #expect(core.retransmitter?.tally.resent == 1 && core.retransmitter?.tally.resentElsewhere == 1)
        // Without recovery: no flag, no room kept, and a NACK changes nothing.
        var plain = SenderCore(streamID: 1, mark: .bestEffort, mtu: 1500, vnets: 2, mode: .fixed(SplitRatio(weights: [1, 1])), adaptive: .init())
        let sent = drive(&plain, frames: 1, bytes: 1432)
        #expect(sent.count == 1 && !sent[0].0.resends && plain.retransmitter == nil)
        plain.received(Nack(streamID: 1, sequence: 0, ranges: Nack.ranges(pathID: 0, sequences: [0])), now: 0)
        #expect(plain.nextDue == nil)
    }

    @Test("duplicate mode puts every packet on every VNet; an unpaced bundle for one segmented write stays on one VNet")
    func duplicateAndBundles() {
        var core = SenderCore(streamID: 1, mark: .bestEffort, mtu: 1500, vnets: 3, mode: .duplicate, adaptive: .init())
        let written = drive(&core, frames: 5, bytes: 2000)
        #expect(written.count == 5 * 2 * 3)
        #expect((0..<3).allSatisfy { vnet in written.filter { Int($0.0.pathID) == vnet }.count == 10 })
        var bundleCore = SenderCore(streamID: 1, mark: .bestEffort, mtu: 1500, vnets: 2, mode: .fixed(SplitRatio(weights: [1, 1])), adaptive: .init())
        var out: [OutgoingPacket] = []
        bundleCore.bundle(count: 64, payloadBytes: 1200, oneVNet: true, sendTime: 0, now: 0, into: &out)
        #expect(out.count == 64 && Set(out.map(\.vnet)).count == 1)
        // Split one by one, the next 64 make up for the bundle: 64 packets on each VNet in all.
        bundleCore.bundle(count: 64, payloadBytes: 1200, oneVNet: false, sendTime: 0, now: 0, into: &out)
        #expect(out.filter { $0.vnet == 0 }.count == 64)
        #expect(out.map(\.header.streamSequence) == Array(0..<128))
    }

    @Test("every packet-log row has its header's column count, local drops included, and reads back as written")
    func packetLogRows() throws {
        let rows = [
            SentPacket(t: 0.02, streamSequence: 0, vnet: 1, pathSequence: 0, frame: 0, bytes: 1200, copy: false, localDrop: false),
            SentPacket(t: 0.0213, streamSequence: 1, vnet: 2, pathSequence: 0, frame: 0, bytes: 1200, copy: false, localDrop: true),
            SentPacket(t: 0.04, streamSequence: 1, vnet: 2, pathSequence: 1, frame: 0, bytes: 300, copy: true, localDrop: false),
        ]
        for row in rows { #expect(row.csvRow.split(separator: ",", omittingEmptySubsequences: false).count == SentPacket.csvColumns) }
        let received = ReceivedPacket(
            monotonicNanoseconds: 5, streamSequence: 1, vnet: 1, pathSequence: 2, frame: 3, bytes: 64, tos: nil, stream: 1)
        #expect(received.csvRow.split(separator: ",", omittingEmptySubsequences: false).count == ReceivedPacket.csvColumns)
        let marked = MarkedPacket(monotonicNanoseconds: 5, stream: 1, sequence: 0, bytes: 256, tos: 184, localDrop: true)
        #expect(marked.csvRow.split(separator: ",", omittingEmptySubsequences: false).count == MarkedPacket.csvColumns)
        let path = NSTemporaryDirectory() + "vnetstream-rows-\(UUID().uuidString).csv"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try ([SentPacket.csvHeader] + rows.map(\.csvRow)).joined(separator: "\n").appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try CSVLog.read(SentPacket.self, from: path) == rows)
        // A row missing a column is refused with the file and line.
        try (SentPacket.csvHeader + "\n0.1,0,1,0,0,1200,0\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RecordError.self) { try CSVLog.read(SentPacket.self, from: path) }
        do { _ = try CSVLog.read(SentPacket.self, from: path) } catch { #expect("\(error)".contains("\(path):2:")) }
    }

    @Test("the sender's log lines are JSON that reads back as the same event")
    func senderLogEvents() {
        let events: [SenderLogEvent] = [
            .sent(.init(tS: 1.001, vnet: 1, tun: "tun0", packets: 30, bytes: 40000, weight: 0.5, reports: 20)),
            .report(.init(tS: 1.2, overVNet: 2, reportSequence: 9, paths: [.init(vnet: 1, highest: 10, received: 9, lost: 1, delayUs: -3, jitterUs: 4)])),
            .control(.init(tS: 2, vnet: 1, event: .dead, kbitS: nil, detail: "stalled 90 ms", weights: [0, 1])),
        ]
        for event in events {
            #expect(!event.line.contains("\n"))
            #expect(SenderLogEvent(line: event.line) == event, "\(event.line)")
        }
        #expect(events[0].line.contains(#""kind":"sent""#) && events[2].line.contains(#""event":"dead""#))
        #expect(SenderLogEvent(line: #"{"kind":"sent","t_s":1"#) == nil)
    }
}
