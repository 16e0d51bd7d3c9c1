import Accounting
import Control
import Foundation
import Packets
import Recovery
import Units

/// One simulated hour of a 2-VNet stream with arq, no I/O: the sender keeps every packet in its
/// retransmission ring, the receiver loses 5 % at random (10 % on VNet 1) and NACKs each gap, and the
/// sender answers 1 ms after the NACK, over VNet 2 (5 ms one way), in path order with its stream. Prints the ring's fixed memory, the
/// peak resident size every 10 simulated minutes (it must stay flat), the packets per second one
/// core keeps, NACKs and accounts, and the loss before and after recovery (after: 0 expected).
func recoverySuite() {
    print("== recovery: one hour of a 2-VNet stream with arq, 1000 packets/s, 5 % loss (10 % of VNet 1's half): keep, NACK, resend, account")
    let ms: UInt64 = 1_000_000
    var sender = Retransmitter(mode: .arq, vnets: 2, latencySeconds: 0.2)
    var receiver = StreamAccounting(streamID: 1, intervalSeconds: 30, latencySeconds: 0.2)
    let outlook = [VNetOutlook(live: true), VNetOutlook(live: true)]
    var random = SplitMix64(seed: 0x5DEE_CE66_D1CE_4E5B)
    let packetsPerSecond = 1000
    let total = 3600 * packetsPerSecond
    var pathSequence: [UInt32] = [0, 0]
    // Answers the sender writes at `at` (stamped then, in path order with the stream), and what
    // is on its way to the receiver.
    var toWrite: [(at: UInt64, answer: Retransmitter.Resend)] = []
    var inFlight: [(at: UInt64, header: MediaHeader)] = []
    var resentCount = 0
    print("   the ring: \(sender.buffer.bytes / 1024) KiB for 2 VNets (\(sender.buffer.capacityPerVNet) packets each), fixed")
    let start = ContinuousClock.now
    for n in 0..<total {
        let now = UInt64(n) * ms
        let path = n % 2
        var header = MediaHeader(
            streamID: 1, streamSequence: UInt32(n), pathSequence: pathSequence[path], frameNumber: UInt32(n / 4),
            sendTimeNanoseconds: now, fragmentIndex: UInt16(n % 4), fragmentCount: 4, pathID: UInt8(path), frameType: UInt8(ascii: "P"),
            mark: 0xB8)
        header.resends = true
        while let first = toWrite.first, first.at <= now {
            var resent = first.answer.header
            resent.pathID = UInt8(first.answer.vnet)
            resent.pathSequence = pathSequence[first.answer.vnet]
            pathSequence[first.answer.vnet] += 1
            inFlight.append((first.at + 5 * ms, resent))
            toWrite.removeFirst()
            resentCount += 1
        }
        header.pathSequence = pathSequence[path]
        pathSequence[path] += 1
        sender.written(header, payloadBytes: 1250, copy: false, now: now)
        // Resends that arrive before this packet does.
        while let first = inFlight.first, first.at <= now + 5 * ms {
            receiver.record(first.header, bytes: 1258, tos: 0xB8, arrival: first.at)
            inFlight.removeFirst()
        }
        if path == 0 && random.next() % 10 == 0 { continue }  // 10 % of VNet 1's half: 5 % of the stream
        receiver.record(header, bytes: 1250, tos: 0xB8, arrival: now + 5 * ms)
        if let nack = receiver.nack(now: now + 5 * ms) {
            // The NACK takes 5 ms back; the sender answers at once, and writes 1 ms later.
            for answer in sender.received(nack, outlook: outlook, now: now + 10 * ms) { toWrite.append((now + 11 * ms, answer)) }
        }
        if n % (600 * packetsPerSecond) == 0 && n > 0 {
            print("   after \(n / packetsPerSecond / 60) simulated minutes: peak resident size \(peakResidentKilobytes()) kB")
        }
    }
    for late in toWrite { inFlight.append((late.at + 5 * ms, late.answer.header)) }
    for late in inFlight { receiver.record(late.header, bytes: 1258, tos: 0xB8, arrival: late.at) }
    let (report, seconds) = endOfTheHour(&receiver, packets: total, pathSequence: pathSequence, start: start)
    print(String(format: "   kept, NACKed and accounted %d packets (%d resent) in %.2f s: %.2f million packets/s on one core", total, resentCount, seconds, Double(total) / seconds / 1e6))
    print(String(format: "   network loss %.3f %%, after recovery %.3f %% (0 expected); %d NACKs", report.total.lossPct, report.total.residualLossPct ?? -1, report.recovery?.nacks ?? -1))
}

/// One simulated hour of a 2-VNet stream with FEC (4x4 blocks), no I/O: the encoder makes a
/// parity per row and column of what was written, on the VNet it picks; VNet 1 loses 10 % at
/// random (parity included); the receiver accounts and rebuilds. Prints the peak resident size
/// every 10 simulated minutes (flat expected: the decoder's window and pending list are fixed),
/// packets per second one core encodes, accounts and rebuilds, the parity's share, and the loss
/// before and after FEC.
func fecSuite() {
    print("== fec: one hour of a 2-VNet stream with 4x4 XOR parity, 1000 packets/s, 10 % loss on VNet 1 (parity too): encode, account, rebuild")
    let ms: UInt64 = 1_000_000
    var encoder = ParityEncoder(shape: FECShape(columns: 4, rows: 4), streamID: 1, vnets: 2, latencySeconds: 0.2)
    var receiver = StreamAccounting(streamID: 1, intervalSeconds: 30, latencySeconds: 0.2)
    let outlook = [VNetOutlook(live: true), VNetOutlook(live: true)]
    var random = SplitMix64(seed: 0x0F3C_5EED_0000_0001)
    let packetsPerSecond = 1000
    let total = 3600 * packetsPerSecond
    var pathSequence: [UInt32] = [0, 0]
    var parities = 0
    var parityLost = 0
    let start = ContinuousClock.now
    for n in 0..<total {
        let now = UInt64(n) * ms
        let path = n % 2
        let header = MediaHeader(
            streamID: 1, streamSequence: UInt32(n), pathSequence: pathSequence[path], frameNumber: UInt32(n / 4),
            sendTimeNanoseconds: now, fragmentIndex: UInt16(n % 4), fragmentCount: 4, pathID: UInt8(path), frameType: UInt8(ascii: "P"),
            mark: 0xB8)
        pathSequence[path] += 1
        if !(path == 0 && random.next() % 10 == 0) { receiver.record(header, bytes: 1290, tos: 0xB8, arrival: now + 5 * ms) }
        for var ready in encoder.written(header, payloadBytes: 1290, frameTime: now, outlook: outlook, now: now) {
            ready.parity.pathID = UInt8(ready.vnet)
            ready.parity.pathSequence = pathSequence[ready.vnet]
            pathSequence[ready.vnet] += 1
            parities += 1
            if ready.vnet == 0 && random.next() % 10 == 0 {
                parityLost += 1
                continue
            }
            receiver.record(ready.parity, bytes: ready.parity.payloadBytes, tos: 0xB8, arrival: now + 5 * ms)
        }
        if n % (600 * packetsPerSecond) == 0 && n > 0 {
            print("   after \(n / packetsPerSecond / 60) simulated minutes: peak resident size \(peakResidentKilobytes()) kB")
        }
    }
    let (report, seconds) = endOfTheHour(&receiver, packets: total, pathSequence: pathSequence, start: start)
    print(String(format: "   encoded, accounted and rebuilt %d packets and %d parities (%d of them lost) in %.2f s: %.2f million packets/s on one core",
        total, parities, parityLost, seconds, Double(total) / seconds / 1e6))
    print(String(format: "   parity %.1f %% of the packets (the shape says 50); network loss %.3f %%, after FEC %.3f %%; %d rebuilt",
        Double(parities) / Double(total) * 100, report.total.lossPct, report.total.residualLossPct ?? -1, report.recovery?.rebuilt ?? -1))
}

/// The end of a simulated hour of 1 ms packets, 4 per frame, on 2 VNets: the end message, the
/// report, the seconds it took, and the final resident size printed.
func endOfTheHour(_ receiver: inout StreamAccounting, packets total: Int, pathSequence: [UInt32], start: ContinuousClock.Instant) -> (LossReport, Double) {
    let ms: UInt64 = 1_000_000
    receiver.record(
        StreamEnd(
            streamID: 1, streamPackets: UInt32(total), frameCount: UInt32(total / 4), lastSendTimeNanoseconds: UInt64(total - 1) * ms,
            paths: [.init(pathID: 0, packetsSent: pathSequence[0]), .init(pathID: 1, packetsSent: pathSequence[1])]),
        arrival: UInt64(total) * ms + 10 * ms)
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let report = receiver.lossReport()
    print("   after 60 simulated minutes: peak resident size \(peakResidentKilobytes()) kB")
    return (report, seconds)
}
