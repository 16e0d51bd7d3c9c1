import Control
import Packets
import Recovery
import Testing

@Suite("Retransmission across VNets (no I/O)")
struct RetransmitterTests {
    let ms: UInt64 = 1_000_000

    /// `count` packets of frame time `t0 + k ms` written on `vnet`, path sequences from 0.
    func write(_ r: inout Retransmitter, vnet: Int, count: Int, from t0: UInt64, copyEvery: Int = 0) {
        for k in 0..<count {
            let header = MediaHeader(
                streamID: 1, streamSequence: UInt32(2 * k + vnet), pathSequence: UInt32(k), frameNumber: UInt32(k),
                sendTimeNanoseconds: UInt64(k) * ms, fragmentIndex: 0, fragmentCount: 1, pathID: UInt8(vnet), frameType: UInt8(ascii: "P"),
                mark: 0)
            r.written(header, payloadBytes: 1000, copy: copyEvery > 0 && k % copyEvery == 0, now: t0 + UInt64(k) * ms)
        }
    }

    let clean = [VNetOutlook(live: true), VNetOutlook(live: true)]

    @Test("a NACKed packet still in time goes again, once, with its origin and its departure")
    func resendInTime() throws {
        var r = Retransmitter(mode: .arq, vnets: 2, latencySeconds: 0.2)
        write(&r, vnet: 0, count: 50, from: 1000 * ms)
        let nack = Nack(streamID: 1, sequence: 0, ranges: Nack.ranges(pathID: 0, sequences: [10, 11]))
        let out = r.received(nack, outlook: clean, now: 1060 * ms)
        #expect(out.count == 2)
        let first = try #require(out.first)
        #expect(first.header.origin == MediaHeader.Origin(pathID: 0, pathSequence: 10))
        #expect(first.header.streamSequence == 20 && first.payloadBytes == 1000 + MediaHeader.originSize)
        // Written at 1010 ms with frame time 10 ms; resent at 1060 ms: it left 50 ms after its frame time.
        #expect(first.header.heldMicroseconds == 50_000)
        // On a tie the other VNet: the one that lost it may lose again.
        #expect(first.vnet == 1 && r.tally.resentElsewhere == 2)
        // The NACK's copy over the other VNet shares its sequence: nothing more.
        #expect(r.received(nack, outlook: clean, now: 1061 * ms).isEmpty)
        // A new NACK for the same packet right away is too soon; after the gap it goes again.
        let again = Nack(streamID: 1, sequence: 1, ranges: Nack.ranges(pathID: 0, sequences: [10]))
        #expect(r.received(again, outlook: clean, now: 1065 * ms).isEmpty && r.tally.recent == 1)
        let later = Nack(streamID: 1, sequence: 2, ranges: Nack.ranges(pathID: 0, sequences: [10]))
        #expect(r.received(later, outlook: clean, now: 1080 * ms).count == 1)
        #expect(r.tally.nacks == 3 && r.tally.resent == 3 && r.tally.resentBytes == 3 * 1008)
    }

    @Test("past its deadline (less the margin), a copy, or a slot reused: not resent, and counted")
    func refusals() {
        var r = Retransmitter(mode: .arq, vnets: 2, latencySeconds: 0.2, capacityPerVNet: 64)
        write(&r, vnet: 0, count: 200, from: 0, copyEvery: 50)
        // Packet 151 (frame time 151 ms) at 331 ms: 200 ms latency less a 20 ms margin is 331.
        #expect(r.received(Nack(streamID: 1, sequence: 0, ranges: Nack.ranges(pathID: 0, sequences: [151])), outlook: clean, now: 331 * ms).isEmpty)
        #expect(r.received(Nack(streamID: 1, sequence: 9, ranges: Nack.ranges(pathID: 0, sequences: [152])), outlook: clean, now: 331 * ms).count == 1)
        #expect(r.tally.tooLate == 1)
        // 150 is a probe copy; 10 is long overwritten (the ring holds 64).
        #expect(r.received(Nack(streamID: 1, sequence: 10, ranges: Nack.ranges(pathID: 0, sequences: [150, 10])), outlook: clean, now: 200 * ms).isEmpty)
        #expect(r.tally.notHeld == 2)
        #expect(r.buffer.held == 64 && r.buffer.bytes == 2 * 64 * MemoryLayout<RetransmissionBuffer.Entry?>.stride)
    }

    @Test("arq avoids a dead, lossy or full VNet; arq-same stays on the one that lost it; none sends nothing")
    func choice() {
        let lossy = [VNetOutlook(live: true, lossRate: 0.05), VNetOutlook(live: true)]
        #expect(Retransmitter.choose(lost: 0, mode: .arq, outlook: lossy) == 1)
        #expect(Retransmitter.choose(lost: 1, mode: .arq, outlook: lossy) == 1, "the clean VNet lost it, the other loses at random")
        let full = [VNetOutlook(live: true), VNetOutlook(live: true, full: true), VNetOutlook(live: true, lossRate: 0.02)]
        #expect(Retransmitter.choose(lost: 1, mode: .arq, outlook: full) == 0)
        let dead = [VNetOutlook(live: false), VNetOutlook(live: true, lossRate: 0.2)]
        #expect(Retransmitter.choose(lost: 0, mode: .arq, outlook: dead) == 1)
        #expect(Retransmitter.choose(lost: 0, mode: .arqSame, outlook: dead) == 0)
        #expect(Retransmitter.choose(lost: 0, mode: .none, outlook: dead) == nil)
        var none = Retransmitter(mode: .none, vnets: 2, latencySeconds: 0.2)
        write(&none, vnet: 0, count: 10, from: 0)
        #expect(none.received(Nack(streamID: 1, sequence: 0, ranges: Nack.ranges(pathID: 0, sequences: [3])), outlook: clean, now: 20 * ms).isEmpty)
        #expect(none.buffer.held == 0)
    }

    @Test("a VNet declared dead has what no report covered resent elsewhere, once, and only what is still in time")
    func deadTail() {
        var r = Retransmitter(mode: .arq, vnets: 2, latencySeconds: 0.2)
        write(&r, vnet: 0, count: 300, from: 0)
        // The last report showed packets up to 249 arrived; 250..299 were sent 250-299 ms.
        r.received(
            ReceiverReport(
                streamID: 1, reportSequence: 5, reportTimeNanoseconds: 0,
                paths: [
                    PathReport(
                        pathID: 0, highestSequencePlusOne: 250, packetsReceived: 250, bytesReceived: 0, packetsLost: 0, packetsReordered: 0,
                        packetsDuplicated: 0, delayMicroseconds: 0, jitterMicroseconds: 0)
                ]))
        #expect(r.follow(clean, now: 300 * ms).isEmpty, "nothing died")
        // Declared dead at 420 ms: packets with frame times up to 240 ms are past 420 + 20 - 200.
        let out = r.follow([VNetOutlook(live: false), VNetOutlook(live: true)], now: 420 * ms)
        #expect(out.count == 300 - 250)
        #expect(out.allSatisfy { $0.vnet == 1 } && out.first?.header.origin?.pathSequence == 250)
        #expect(r.tally.deadTail == 50)
        #expect(r.follow([VNetOutlook(live: false), VNetOutlook(live: true)], now: 430 * ms).isEmpty, "it stays dead: once")
        let late = r.follow([VNetOutlook(live: true), VNetOutlook(live: true)], now: 500 * ms) + r.follow([VNetOutlook(live: false), VNetOutlook(live: true)], now: 530 * ms)
        #expect(late.isEmpty, "dead again later, past every deadline")
    }
}
