import Accounting
import Control
import Packets
import Splitting
import Testing

@Suite("Packet trains and the adaptive controller")
struct ControllerTests {
    @Test("a train's third packet measures the bottleneck, whatever burst let the first two through")
    func trainMeasuresBottleneck() {
        var trains = PacketTrains()
        let size = 864
        let rate = 600_000.0
        // Packet 1 and most of packet 2 ride the token bucket; packet 3 waits its whole time.
        let stamps: [Int64] = [1_000_000, 3_000_000, 3_000_000 + Int64(Double(size * 8) / rate * 1e9)]
        for (index, stamp) in stamps.enumerated() {
            trains.record(pathSequence: Int64(index), sendTime: 40_000_000, bytes: size, stamp: stamp)
        }
        #expect(trains.samples == 0)  // the train is open until the next packet or finish()
        trains.record(pathSequence: 3, sendTime: 80_000_000, bytes: size, stamp: 50_000_000)
        #expect(trains.samples == 1)
        #expect(abs(trains.latestBitsPerSecond - rate) < rate * 0.001)
        // Two packets of a frame are no train; a gap in the sequence breaks one.
        trains.record(pathSequence: 4, sendTime: 80_000_000, bytes: size, stamp: 51_000_000)
        trains.record(pathSequence: 6, sendTime: 80_000_000, bytes: size, stamp: 60_000_000)
        trains.finish()
        #expect(trains.samples == 1)
        // Departures within a microsecond (a train that waited in the sender's pacing, the
        // stream's next packets in it) are one train; packets paced 25 ms apart are none.
        for (index, departure) in [120_000_000, 120_000_400, 120_000_999].enumerated() {
            trains.record(pathSequence: Int64(10 + index), sendTime: UInt64(departure), bytes: size, stamp: 100_000_000 + Int64(index) * 11_520_000)
        }
        trains.finish()
        #expect(trains.samples == 2 && abs(trains.latestBitsPerSecond - rate) < rate * 0.001)
        for index in 0..<4 {
            trains.record(pathSequence: Int64(20 + index), sendTime: 200_000_000 + UInt64(index) * 25_000_000, bytes: size, stamp: 200_000_000 + Int64(index) * 25_000_000)
        }
        trains.finish()
        #expect(trains.samples == 2)
    }

    /// A report as the receiver would send it for two paths.
    func report(_ sequence: UInt32, at time: UInt64, highest: [UInt32], capacity: [(UInt32, UInt32)] = [(0, 0), (0, 0)], delayUs: [Int32] = [0, 0])
        -> ReceiverReport
    {
        ReceiverReport(
            streamID: 1, reportSequence: sequence, reportTimeNanoseconds: time,
            paths: (0..<2).map { p in
                PathReport(
                    pathID: UInt8(p), highestSequencePlusOne: highest[p], packetsReceived: highest[p], bytesReceived: UInt64(highest[p]) * 800,
                    packetsLost: 0, packetsReordered: 0, packetsDuplicated: 0, delayMicroseconds: delayUs[p], jitterMicroseconds: 0,
                    capacityBitsPerSecond: capacity[p].0, capacitySamples: capacity[p].1)
            })
    }

    @Test("trains of 600 and 200 kbit/s give a 3:1 split; a probe train is planned for each VNet in turn")
    func splitFollowsCapacity() {
        var controller = AdaptiveController(vnets: 2)
        let ms: UInt64 = 1_000_000
        var trained: [Int] = []
        var now: UInt64 = 0
        for _ in 0..<40 {
            let plan = controller.plan(fragmentBytes: [864, 864], now: now)
            if let train = plan.train {
                trained.append(train)
                #expect(plan.trainPackets == 3)
            }
            now += 40 * ms
        }
        #expect(Set(trained) == [0, 1])
        controller.received(report(0, at: now, highest: [0, 0], capacity: [(600_000, 1), (200_000, 1)]), over: 0, now: now)
        let total = controller.weights.reduce(0, +)
        #expect(abs(controller.weights[0] / total - 0.75) < 0.01)
        // A report repeated over the other VNet changes nothing; one odd train moves nothing either.
        controller.received(report(0, at: now, highest: [0, 0], capacity: [(600_000, 1), (200_000, 1)]), over: 1, now: now)
        controller.received(report(1, at: now, highest: [0, 0], capacity: [(600_000, 2), (200_000, 2)]), over: 0, now: now)
        controller.received(report(2, at: now, highest: [0, 0], capacity: [(50_000, 3), (200_000, 2)]), over: 0, now: now)
        #expect(abs(controller.weights[0] / controller.weights.reduce(0, +) - 0.75) < 0.01)
        // But the odd train asks for a second one soon (0.3 s), not a probe interval later; when
        // that one agrees with it, the estimate follows.
        var confirming: UInt64?
        var at = now
        while at < now + 900 * ms, confirming == nil {
            at += 40 * ms
            if let train = controller.plan(fragmentBytes: [864, 864], now: at).train, train == 0 { confirming = at }
        }
        let soon = confirming.map { $0 - now }
        #expect(soon.map { $0 >= 280 * ms && $0 <= 360 * ms } == true, "\(String(describing: soon.map { $0 / ms })) ms later")
        controller.received(report(3, at: at, highest: [0, 0], capacity: [(52_000, 4), (200_000, 2)]), over: 0, now: at)
        #expect(abs((controller.estimates[0] ?? 0) - 51_000) < 1, "\(controller.estimates)")
    }

    @Test("the estimate from train samples: one, two that agree (their mean), two that disagree (the first stands), three (the median)")
    func trainSampleEstimate() {
        #expect(AdaptiveController.estimate(from: [200_000]) == 200_000)
        #expect(AdaptiveController.estimate(from: [200_000, 210_000]) == 205_000)
        #expect(AdaptiveController.estimate(from: [197_000, 348_000]) == 197_000, "one odd train moves nothing")
        #expect(AdaptiveController.estimate(from: [197_000, 348_000, 201_000]) == 201_000)
        #expect(AdaptiveController.estimate(from: [600_000, 400_000, 390_000]) == 395_000, "a shift seen twice")
    }

    @Test("a reservation caps the capacity estimate: trains through a shaped access link's burst read more than it carries")
    func reservationCeiling() {
        var controller = AdaptiveController(vnets: 2, ceilings: [300_000, nil])
        let now: UInt64 = 2_000_000_000
        controller.received(report(0, at: now, highest: [0, 0], capacity: [(600_000, 1), (200_000, 1)]), over: 0, now: now)
        #expect(controller.estimates[0] == 300_000 && controller.estimates[1] == 200_000, "\(controller.estimates)")
        #expect(abs(controller.weights[0] / controller.weights.reduce(0, +) - 0.6) < 0.01, "3:2, not 3:1")
        #expect(controller.deliverableRate == 500_000)
        // Below the ceiling, a train's estimate stands.
        controller.received(report(1, at: now, highest: [0, 0], capacity: [(250_000, 2), (200_000, 1)]), over: 0, now: now)
        controller.received(report(2, at: now, highest: [0, 0], capacity: [(250_000, 3), (200_000, 1)]), over: 0, now: now)
        #expect(controller.estimates[0] == 250_000, "\(controller.estimates)")
    }

    @Test("a VNet whose sequence stalls while reports arrive is dead within the threshold, probed with copies, and comes back")
    func deadAndBack() throws {
        var controller = AdaptiveController(vnets: 2)
        let ms: UInt64 = 1_000_000
        var sent: [UInt32] = [0, 0]
        var splitter = WeightedSplitter(weights: [1, 1])
        var now: UInt64 = 1000 * ms
        var sequence: UInt32 = 0
        var failedAt: UInt64?
        var deadAt: UInt64?
        // 50 packets/s split 1:1, reports every 50 ms; VNet 0 stops delivering at 3 s.
        var delivered: [UInt32] = [0, 0]
        var sentTimes: [[UInt64]] = [[], []]
        while now < 6000 * ms {
            if now % (20 * ms) == 0 {
                _ = controller.plan(fragmentBytes: [864], now: now)
                let vnet = splitter.next()
                controller.sent(vnet: vnet, pathSequence: sent[vnet], bytes: 864, now: now)
                sentTimes[vnet].append(now)
                sent[vnet] += 1
                for event in controller.takeEvents() where event.kind == .dead && deadAt == nil { deadAt = now }
                splitter.setWeights(controller.weights)
            }
            if now % (50 * ms) == 0 {
                // Delivered: everything sent more than 5 ms ago, except on VNet 0 after the failure.
                for v in 0..<2 {
                    let cutoff = v == 0 && now >= 3000 * ms ? 3000 * ms : now - 5 * ms
                    delivered[v] = UInt32(sentTimes[v].filter { $0 <= cutoff }.count)
                }
                if now >= 3000 * ms && failedAt == nil { failedAt = 3000 * ms }
                controller.received(report(sequence, at: now, highest: delivered), over: 1, now: now + 2 * ms)
                sequence += 1
                for event in controller.takeEvents() where event.kind == .dead && deadAt == nil { deadAt = now }
                splitter.setWeights(controller.weights)
            }
            now += 10 * ms
        }
        let dead = try #require(deadAt)
        let failed = try #require(failedAt)
        let detection = Double(dead - failed) / 1e6
        #expect(detection <= 250, "dead after \(detection) ms")
        #expect(controller.weights[0] == 0)
        #expect(controller.dead == [true, false])
        // Copies on the dead VNet, and back once one of them arrives.
        let plan = controller.plan(fragmentBytes: [864], now: now + 200 * ms)
        #expect(plan.copiesOn == [0])
        controller.sent(vnet: 0, pathSequence: sent[0], bytes: 864, now: now + 200 * ms)
        controller.received(report(sequence, at: now, highest: [sent[0] + 1, sent[1]]), over: 1, now: now + 210 * ms)
        #expect(controller.dead == [false, false])
        #expect(controller.weights[0] > 0)
    }

    @Test("the controller learns the report period from the reports and stretches its freshness and rate window to it")
    func reportPeriod() {
        let ms: UInt64 = 1_000_000
        var fast = AdaptiveController(vnets: 2)
        var slow = AdaptiveController(vnets: 2)
        for n in 0..<20 {
            fast.received(report(UInt32(n), at: UInt64(n) * 50 * ms, highest: [0, 0]), over: 0, now: UInt64(n) * 50 * ms)
            // Every other report of the slow receiver is lost: the period still comes out at 400 ms.
            let k = UInt64(2 * n)
            slow.received(report(UInt32(k), at: k * 400 * ms, highest: [0, 0]), over: 0, now: k * 400 * ms)
        }
        #expect(abs((fast.reportPeriod ?? 0) / 1e6 - 50) < 0.01)
        #expect(abs((slow.reportPeriod ?? 0) / 1e6 - 400) < 0.01)
        // At 50 ms the parameters hold as they are; at 400 ms they stretch to 6 periods.
        #expect(fast.reportFreshnessSeconds == 0.3 && fast.rateWindowSeconds == 0.3)
        #expect(abs(slow.reportFreshnessSeconds - 2.4) < 1e-9 && abs(slow.rateWindowSeconds - 2.4) < 1e-9)
    }

    @Test("a train taken out of the split still counts toward its VNet's share")
    func takeKeepsShares() {
        var splitter = WeightedSplitter(weights: [3, 1])
        var counts = [0, 0]
        for n in 0..<4000 {
            if n % 25 == 0 {
                splitter.take(1)
                counts[1] += 1
            } else {
                counts[splitter.next()] += 1
            }
        }
        #expect(abs(Double(counts[0]) / 4000 - 0.75) < 0.005)
    }
}
