import Testing

@testable import Accounting
@testable import Packets

/// The receiver's side of recovery: playout deadlines, residual loss, NACKs.
@Suite("Playout deadline and NACKs (no I/O)")
struct PlayoutTests {
    let ms: UInt64 = 1_000_000
    /// The receiver's clock when the stream's time zero arrived (a 5 ms network delay).
    let zero: UInt64 = 1_000_000_000

    /// Packet `s` of a stream on two paths in turn, every 10 ms, from a sender that resends.
    func header(_ s: UInt32, resends: Bool = true) -> MediaHeader {
        var h = packet(s, path: UInt8(s % 2), pathSequence: s / 2, frame: s, seconds: Double(s) * 0.01)
        h.resends = resends
        return h
    }

    func arrival(_ s: UInt32, extra: UInt64 = 0) -> UInt64 { zero + UInt64(s) * 10 * ms + extra }

    func end(_ accounting: inout StreamAccounting, packets: UInt32, at t: UInt64) {
        accounting.record(
            StreamEnd(
                streamID: 1, streamPackets: packets, frameCount: packets, lastSendTimeNanoseconds: UInt64(packets - 1) * 10 * ms,
                paths: [.init(pathID: 0, packetsSent: (packets + 1) / 2), .init(pathID: 1, packetsSent: packets / 2)]),
            arrival: t)
    }

    @Test("a gap on a path is NACKed at once as a range, again after the retry time, and cleared by the retransmission")
    func nackAndAnswer() throws {
        var a = StreamAccounting(streamID: 1, intervalSeconds: 1, latencySeconds: 0.2)
        // Path 0 carries 0, 2, 4, ...: 4 and 6 (path sequences 2 and 3) are lost.
        for s: UInt32 in 0..<10 where s != 4 && s != 6 { a.record(header(s), bytes: 100, tos: 0, arrival: arrival(s)) }
        let now = arrival(9)
        let nackTaken = a.nack(now: now)
        let nack = try #require(nackTaken)
        #expect(nack.ranges == [Nack.Range(pathID: 0, first: 2, count: 2)] && nack.sequence == 0)
        // Nothing more until the retry time (50 ms before any recovery was timed).
        let early = a.nack(now: now + 10 * ms)
        #expect(early == nil)
        #expect(a.nextNackDue == now + 50 * ms)
        // The retransmission of 4 comes over path 1 (its path sequence there: 5) 8 ms later.
        var resent = header(4)
        resent.pathID = 1
        resent.pathSequence = 5
        resent.origin = MediaHeader.Origin(pathID: 0, pathSequence: 2)
        a.record(resent, bytes: 108, tos: 0, arrival: now + 8 * ms)
        #expect(a.nackList.answered == 1 && a.nackList.smoothedRecovery == 8 * ms)
        // Only 6 is asked again, after the retry time.
        let againTaken = a.nack(now: now + 50 * ms)
        let again = try #require(againTaken)
        #expect(again.ranges == [Nack.Range(pathID: 0, first: 3, count: 1)] && again.sequence == 1)
        end(&a, packets: 10, at: now + 60 * ms)
        let report = a.lossReport()
        // The network lost 2 of the 10; the viewer, after recovery, 1 (6 never came).
        #expect(report.total.lost == 2 && report.total.residualLost == 1 && report.total.recovered == 1)
        #expect(report.intervals[0].residualLost == 1 && report.intervals[0].recovered == 1 && report.intervals[0].late == 0)
        let recovery = try #require(report.recovery)
        #expect(recovery.nacks == 2 && recovery.asked == 2 && recovery.answered == 1 && recovery.latencyMs == 200)
        // The retransmission counts toward its path (it was sent there), not the stream's sent.
        #expect(report.total.sent == 10 && report.paths.first { $0.vnet == 2 }?.received == 6)
    }

    @Test("an entry is given up at its deadline; an original after its deadline is late, lost to the viewer, not to the network")
    func deadlines() throws {
        var a = StreamAccounting(streamID: 1, intervalSeconds: 1, latencySeconds: 0.1)
        for s: UInt32 in 0..<6 where s != 2 { a.record(header(s), bytes: 100, tos: 0, arrival: arrival(s)) }
        let asked = a.nack(now: arrival(5))
        #expect(asked != nil)
        // Packet 4's deadline (the gap's upper bound): zero + 40 ms + 100 ms.
        let expired = a.nack(now: zero + 140 * ms)
        #expect(expired == nil && a.nackList.gaveUp == 1 && a.nackList.count == 0 && a.nextNackDue == nil)
        // Packet 2 arrives 150 ms late: the network delivered it, the playout could not use it.
        a.record(header(2), bytes: 100, tos: 0, arrival: arrival(2, extra: 150 * ms))
        end(&a, packets: 6, at: zero + 300 * ms)
        let report = a.lossReport()
        #expect(report.total.lost == 0 && report.total.residualLost == 1 && report.total.late == 1)
    }

    @Test("a sender that does not resend is never NACKed; residual loss is still reported")
    func noResends() {
        var a = StreamAccounting(streamID: 1, intervalSeconds: 1)
        for s: UInt32 in 0..<10 where s != 4 { a.record(header(s, resends: false), bytes: 100, tos: 0, arrival: arrival(s)) }
        let none = a.nack(now: arrival(9))
        #expect(none == nil && a.nextNackDue == nil)
        end(&a, packets: 10, at: arrival(9) + 10 * ms)
        let report = a.lossReport()
        #expect(report.recovery == nil && report.total.lost == 1 && report.total.residualLost == 1 && report.total.residualLossPct == 10)
    }

    @Test("a late original after its retransmission was delivered counts once toward frames and clears nothing twice")
    func spuriousResend() {
        var a = StreamAccounting(streamID: 1, intervalSeconds: 1)
        for s: UInt32 in 0..<6 where s != 2 { a.record(header(s), bytes: 100, tos: 0, arrival: arrival(s)) }
        _ = a.nack(now: arrival(5))
        var resent = header(2)
        resent.pathID = 1
        resent.pathSequence = 3
        resent.origin = MediaHeader.Origin(pathID: 0, pathSequence: 1)
        a.record(resent, bytes: 108, tos: 0, arrival: arrival(5, extra: 5 * ms))
        a.record(header(2), bytes: 100, tos: 0, arrival: arrival(5, extra: 6 * ms))
        end(&a, packets: 6, at: arrival(5) + 20 * ms)
        let report = a.lossReport()
        #expect(report.total.lost == 0 && report.total.residualLost == 0 && report.total.recovered == 1)
        let frames = report.frames.first { $0.type == "P" }
        #expect(frames?.lost == 0 && frames?.decodable == 6 && frames?.decodableBytes == 6 * 60, "\(String(describing: frames))")
    }

    @Test("a gap longer than the list holds keeps the newest entries; one NACK holds at most its ranges, the rest follow")
    func bounds() throws {
        var list = NackList()
        list.missing(pathID: 0, first: 0, count: NackList.capacity + 100, deadline: 1000 * ms, now: 0)
        #expect(list.count == NackList.capacity && list.gaveUp == 100)
        // Every other sequence on path 1: one range each.
        var many = NackList()
        for k in 0..<200 { many.missing(pathID: 1, first: UInt32(2 * k), count: 1, deadline: 1000 * ms, now: 0) }
        let firstTaken = many.due(streamID: 1, now: 0)
        let first = try #require(firstTaken)
        #expect(first.ranges.count == Nack.maximumRanges)
        #expect(many.nextDue == 0)
        let secondTaken = many.due(streamID: 1, now: 0)
        let second = try #require(secondTaken)
        #expect(second.ranges.count == 200 - Nack.maximumRanges && second.ranges.first?.first == UInt32(2 * Nack.maximumRanges))
    }
}
