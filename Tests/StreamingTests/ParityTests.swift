import Accounting
import Control
import Packets
import Recovery
import Splitting
import Testing

@testable import Streaming

/// FEC from the sender's core to the receiver's accounting, with no network: the packets the
/// core writes, some of them dropped, the rest and the parity through the wire encoding.
@Suite("FEC: parity from the sender's core, rebuilt by the receiver's accounting")
struct ParityTests {
    struct Written {
        var header: MediaHeader
        var packet: OutgoingPacket
    }

    /// `frames` one-packet frames, 2 ms apart (a 4 Mbit/s stream: a 4x4 block spans 30 ms, less than
    /// the quarter of the latency a row or column may wait), and the parity they make (with the tail's at
    /// the end), as the device writer stamps and writes them.
    func stream(_ core: inout SenderCore, frames: Int, bytes: Int = 1000) -> [Written] {
        var written: [Written] = []
        func write(_ packets: [OutgoingPacket], now: UInt64) {
            for packet in packets {
                let header = core.stamp(packet)
                core.written(header, payloadBytes: packet.payloadBytes, copy: packet.copy, taken: true, parity: packet.parity != nil, now: now)
                written.append(Written(header: header, packet: packet))
            }
        }
        var now: UInt64 = 0
        for number in 0..<frames {
            now = UInt64(number) * 2_000_000
            var out: [OutgoingPacket] = []
            core.packets(ofFrame: bytes, type: UInt8(ascii: "P"), number: UInt32(number), sendTime: now, now: now, into: &out)
            write(out, now: now)
            // The parity those packets completed waits for `due`, as the sender's loop takes it.
            while let due = core.nextDue, due <= now {
                var extra: [OutgoingPacket] = []
                core.due(now: now, into: &extra)
                if extra.isEmpty { break }
                write(extra, now: now)
            }
        }
        core.finishParity(now: now)
        var tail: [OutgoingPacket] = []
        core.due(now: now, into: &tail)
        write(tail, now: now)
        return written
    }

    /// What the receiver makes of `written` less the stream packets `lost` drops, each arriving
    /// 5 ms after it was written (parity through its wire encoding, as the device writer fills it).
    /// `slower`: stream packets that take 30 ms longer (a slower VNet).
    func receive(_ written: [Written], lost: (UInt32) -> Bool, slower: Set<UInt32> = [], latency: Double = 0.2) throws -> LossReport {
        var accounting = StreamAccounting(streamID: 1, intervalSeconds: 10, latencySeconds: latency)
        var end: (frames: Int, last: UInt64) = (0, 0)
        var paths: [UInt8: UInt32] = [:]
        func arrival(_ item: Written) -> UInt64 {
            item.header.departureNanoseconds + 5_000_000 + (item.packet.parity == nil && slower.contains(item.header.streamSequence) ? 30_000_000 : 0)
        }
        for item in written.sorted(by: { arrival($0) < arrival($1) }) {
            paths[item.header.pathID] = max(paths[item.header.pathID] ?? 0, item.header.pathSequence + 1)
            let arrival = arrival(item)
            if var parity = item.packet.parity {
                parity.pathID = item.header.pathID
                parity.pathSequence = item.header.pathSequence
                parity.heldMicroseconds = item.header.heldMicroseconds
                let decoded = try Parity.decode(parity.encoded).get()
                accounting.record(decoded, bytes: decoded.payloadBytes, tos: 0, arrival: arrival)
            } else {
                end = (max(end.frames, Int(item.header.frameNumber) + 1), max(end.last, item.header.sendTimeNanoseconds))
                if lost(item.header.streamSequence) { continue }
                accounting.record(item.header, bytes: item.packet.payloadBytes, tos: 0, arrival: arrival)
            }
        }
        accounting.record(
            StreamEnd(
                streamID: 1, streamPackets: UInt32(end.frames), frameCount: UInt32(end.frames), lastSendTimeNanoseconds: end.last,
                paths: paths.sorted { $0.key < $1.key }.map { StreamEnd.Path(pathID: $0.key, packetsSent: $0.value) }),
            arrival: end.last + 10_000_000)
        return accounting.lossReport()
    }

    func core(_ shape: FECShape, recovery: RecoveryMode = .fec) -> SenderCore {
        SenderCore(
            streamID: 1, mark: .bestEffort, mtu: 1500, vnets: 2, mode: .fixed(SplitRatio(weights: [1, 1])), adaptive: .init(),
            recovery: recovery, latencySeconds: 0.2, fec: shape)
    }

    @Test("one loss per row: the row parity rebuilds each; residual loss 0 where the network lost 5 packets")
    func oneLossPerRow() throws {
        var sender = core(FECShape(columns: 4, rows: 4))
        let written = stream(&sender, frames: 64)
        let parities = written.filter { $0.packet.parity != nil }
        // 64 packets: 16 rows and 16 columns, each one parity.
        #expect(parities.count == 32 && sender.parityEncoder?.tally.partial == 0)
        // Every packet left room for the parity's fixed part: the parity fits the MTU too.
        #expect(written.allSatisfy { $0.packet.ipv4Bytes <= 1500 })
        let report = try receive(written) { [3, 10, 17, 24, 31].contains($0) }
        #expect(report.total.lost == 5)
        #expect(report.total.residualLost == 0 && report.total.recoveredFEC == 5)
        #expect(report.recovery?.rebuilt == 5 && report.recovery?.parities == 32)
        // Without the parity, the same loss is the viewer's.
        let unprotected = try receive(written.filter { $0.packet.parity == nil }) { [3, 10, 17, 24, 31].contains($0) }
        #expect(unprotected.total.residualLost == 5 && unprotected.recovery == nil)
    }

    @Test("a burst that takes a whole row: the column parity rebuilds it; two losses in a row and a column: rebuilt in turns")
    func burstAndTurns() throws {
        var sender = core(FECShape(columns: 4, rows: 4))
        let written = stream(&sender, frames: 48)
        // Block 1 (16-31): its row 20-23 whole. Block 2 (32-47): 32 and 33 (one row), 36 (column 0 with 32).
        let lost: Set<UInt32> = [20, 21, 22, 23, 32, 33, 36]
        let report = try receive(written) { lost.contains($0) }
        #expect(report.total.lost == 7 && report.total.residualLost == 0 && report.total.recoveredFEC == 7)
        // Rows only cannot rebuild a row lost whole.
        var rowsOnly = core(FECShape(columns: 4, rows: 1, layout: .rows))
        let rowWritten = stream(&rowsOnly, frames: 48)
        let rowReport = try receive(rowWritten) { lost.contains($0) }
        #expect(rowReport.total.residualLost == 6 && rowReport.total.recoveredFEC == 1)
    }

    @Test("each parity goes on the VNet that carried the fewest of its packets; the tail of a stream cut mid-block is protected by partial parity")
    func placementAndTail() throws {
        var sender = core(FECShape(columns: 4, rows: 4))
        let written = stream(&sender, frames: 22)
        let onVNet = Dictionary(uniqueKeysWithValues: written.filter { $0.packet.parity == nil }.map { ($0.header.streamSequence, $0.header.pathID) })
        for item in written {
            guard let parity = item.packet.parity else { continue }
            let carriers = parity.positions.map { onVNet[parity.streamSequence(at: $0)]! }
            let mine = carriers.filter { $0 == item.header.pathID }.count
            #expect(mine * 2 <= carriers.count, "parity at \(parity.firstStreamSequence) stride \(parity.stride)")
        }
        // Packets 16-21: rows 4 (16-19, whole) and 5 (20, 21), and four columns of one or two.
        #expect((sender.parityEncoder?.tally.partial ?? 0) == 5)
        let report = try receive(written) { $0 == 21 }
        #expect(report.total.lost == 1 && report.total.residualLost == 0)
    }

    @Test("a packet that comes after its row's parity and the rest of its row is rebuilt first, then overtaken: the network delivered it, not FEC")
    func overtakenByTheOriginal() throws {
        var sender = core(FECShape(columns: 4, rows: 4))
        let written = stream(&sender, frames: 32)
        let report = try receive(written, lost: { $0 == 9 }, slower: [2, 17])
        #expect(report.total.lost == 1 && report.total.residualLost == 0)
        #expect(report.total.recoveredFEC == 1 && report.recovery?.rebuiltOvertaken == 2, "\(String(describing: report.recovery))")
    }

    @Test("a parity that comes after its packets' deadline rebuilds nothing in time; a parity wrong for what arrived is refused, not believed")
    func lateAndWrongParity() throws {
        var sender = core(FECShape(columns: 4, rows: 4))
        let written = stream(&sender, frames: 16)
        var delayed = written
        for index in delayed.indices where delayed[index].packet.parity != nil {
            delayed[index].header.heldMicroseconds += 400_000
        }
        let report = try receive(delayed) { $0 == 5 }
        #expect(report.total.residualLost == 1 && report.total.recoveredFEC == 0)
        var wrong = written
        for index in wrong.indices where wrong[index].packet.parity != nil {
            wrong[index].packet.parity!.protected ^= ProtectedFields(wrong[0].header, payloadBytes: 1)
        }
        let refused = try receive(wrong) { $0 == 5 }
        #expect(refused.total.residualLost == 1 && (refused.recovery?.parityUnusable ?? 0) >= 1)
    }

    @Test("parity comes out of spare capacity only: with what was offered near what the VNets carry, a parity due is skipped and counted")
    func budget() {
        var encoder = ParityEncoder(shape: FECShape(columns: 2, rows: 1, layout: .rows), streamID: 1, vnets: 2, latencySeconds: 0.2)
        let outlook = [VNetOutlook(live: true), VNetOutlook(live: true)]
        func header(_ sequence: UInt32) -> MediaHeader {
            MediaHeader(
                streamID: 1, streamSequence: sequence, pathSequence: sequence / 2, frameNumber: sequence, sendTimeNanoseconds: 0,
                fragmentIndex: 0, fragmentCount: 1, pathID: UInt8(sequence % 2), frameType: UInt8(ascii: "P"), mark: 0)
        }
        let now: UInt64 = 990_000_000
        // 1 Mbit over the last second: 100 packets of 1250 bytes.
        for k in 0..<100 { encoder.offered(ipv4Bytes: 1250, now: UInt64(k) * 10_000_000) }
        #expect(encoder.recentRate(now: now) == 1_000_000)
        encoder.deliverable = 2_000_000
        var ready = encoder.written(header(0), payloadBytes: 1000, frameTime: now, outlook: outlook, now: now)
        ready += encoder.written(header(1), payloadBytes: 1000, frameTime: now, outlook: outlook, now: now)
        #expect(ready.count == 1 && encoder.tally.skipped == 0)
        encoder.deliverable = 1_000_000
        ready = encoder.written(header(2), payloadBytes: 1000, frameTime: now, outlook: outlook, now: now)
        ready += encoder.written(header(3), payloadBytes: 1000, frameTime: now, outlook: outlook, now: now)
        #expect(ready.isEmpty && encoder.tally.skipped == 1 && encoder.tally.parities == 1)
        // A second later the quarter-second slots have rolled over: room again.
        #expect(encoder.recentRate(now: now + 1_000_000_000) == 0)
    }

    @Test("--fec shapes parse, and a wrong one is named")
    func shapes() throws {
        #expect(try FECShape(parsing: "cols=10,rows=5") == FECShape(columns: 10, rows: 5, layout: .both))
        #expect(try FECShape(parsing: "cols=8,rows=1") == FECShape(columns: 8, rows: 1, layout: .rows))
        #expect(try FECShape(parsing: "rows=4,layout=columns").overhead == 0.25)
        for bad in ["cols=0,rows=5", "cols=40", "rows=x", "cols=5,rows=1,layout=columns", "colz=4", "cols"] {
            #expect(throws: FECShapeError.self, "\(bad)") { try FECShape(parsing: bad) }
        }
    }
}
