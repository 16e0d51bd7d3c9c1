import Control
import Packets
import Splitting
import Testing

/// The loss estimator, the placement objective and the controller that uses them, as values.
@Suite("Random loss: estimate, placement, and the controller's use of them")
struct LossPlacementTests {
    @Test("Wilson intervals: honest with no loss and few packets, inside [0, 1], narrowing with packets")
    func wilson() {
        let none = LossEstimator.wilson(lost: 0, of: 100)
        #expect(none.lower == 0 && abs(none.upper - 0.0370) < 0.0005, "\(none)")
        let five = LossEstimator.wilson(lost: 5, of: 100)
        #expect(abs(five.lower - 0.0215) < 0.0005 && abs(five.upper - 0.1118) < 0.0005, "\(five)")
        let many = LossEstimator.wilson(lost: 50, of: 1000)
        #expect(many.upper - many.lower < five.upper - five.lower)
        #expect(LossEstimator.wilson(lost: 0, of: 0) == (0, 1))
        #expect(LossEstimator.wilson(lost: 3, of: 3).upper == 1)
    }

    @Test("the estimator forgets samples older than its window")
    func window() {
        var estimator = LossEstimator(windowSeconds: 2)
        let s: UInt64 = 1_000_000_000
        estimator.add(time: 1 * s, packets: 100, lost: 10)
        estimator.add(time: 2 * s, packets: 100, lost: 0)
        #expect(estimator.packets == 200 && estimator.lost == 10 && abs(estimator.rate - 0.05) < 1e-9)
        estimator.add(time: 3 * s + 1, packets: 100, lost: 0)
        #expect(estimator.packets == 200 && estimator.lost == 0, "the sample at 1 s is out of the window at 3 s")
        estimator.forget(before: 10 * s)
        #expect(estimator.packets == 0 && estimator.interval() == (0, 1))
    }

    @Test("placement: capacity-proportional without loss whatever the stream's rate; the clean VNet first when it has room")
    func placement() {
        let clean = [Placement.VNet(capacity: 600_000), Placement.VNet(capacity: 200_000)]
        for stream in [100_000.0, 320_000, 700_000, 2_000_000] {
            let rates = Placement.rates(clean, stream: stream)
            #expect(abs(rates[0] / rates.reduce(0, +) - 0.75) < 1e-9, "stream \(stream): \(rates)")
            #expect(abs(rates.reduce(0, +) - stream) < 1e-6)
        }
        // VNet 0 loses 3 % at random; VNet 1 is clean and can take the stream under its headroom.
        let lossy = [Placement.VNet(capacity: 400_000, cost: 0.03), Placement.VNet(capacity: 400_000)]
        #expect(Placement.rates(lossy, stream: 320_000) == [0, 320_000])
        // The clean VNet cannot: it is filled to 90 % and the rest goes to the lossy one.
        let short = [Placement.VNet(capacity: 400_000, cost: 0.03), Placement.VNet(capacity: 200_000)]
        let rates = Placement.rates(short, stream: 320_000)
        #expect(abs(rates[1] - 180_000) < 1e-6 && abs(rates[0] - 140_000) < 1e-6, "\(rates)")
        // The objective: this placement loses less than 1:1 and than capacity-proportional.
        let best = Placement.expectedLoss(short, rates: rates)
        #expect(best < Placement.expectedLoss(short, rates: [160_000, 160_000]))
        #expect(best < Placement.expectedLoss(short, rates: [213_333, 106_667]))
        #expect(abs(best - 140_000 * 0.03 / 320_000) < 1e-9)
        // Overload: all VNets filled, the excess spread by capacity; a dead VNet gets nothing;
        // costs within the tier margin share by capacity.
        let over = Placement.rates(short, stream: 900_000)
        #expect(abs(over[0] / over[1] - 2) < 1e-9 && abs(over.reduce(0, +) - 900_000) < 1e-6)
        #expect(Placement.rates([.init(capacity: 400_000, live: false), .init(capacity: 400_000)], stream: 100_000) == [0, 100_000])
        let near = Placement.rates([.init(capacity: 300_000, cost: 0.010), .init(capacity: 100_000, cost: 0.012)], stream: 200_000)
        #expect(abs(near[0] / near[1] - 3) < 1e-9, "\(near)")
        // A lossy VNet never shares the clean tier, however small its loss.
        #expect(Placement.tiers([0, 1], costs: [0.001, 0], margin: 0.005) == [[1], [0]])
        // Without the stream's rate yet: the cleanest tier by capacity.
        #expect(Placement.rates(lossy, stream: nil) == [0, 400_000])
    }

    @Test("the tiered splitter: one tier is the weighted split; two fill the first tier to its budget and send the overflow of a burst on")
    func tieredSplitter() {
        var plain = WeightedSplitter(weights: [3, 1])
        var tiered = TieredSplitter(weights: [3, 1])
        let picks = (0..<40).map { n in tiered.next(bytes: 1000, now: UInt64(n) * 1_000_000) }
        #expect(picks == (0..<40).map { _ in plain.next(bytes: 1000) })
        // VNet 1 first with 200 kbit/s for 0.08 s deep (2000 bytes), VNet 0 after it.
        tiered.set(weights: [1, 1], tiers: [[1], [0]], budgets: [0, 200_000])
        // A burst of ten 1000-byte packets at one instant: two fit VNet 1's bucket, eight overflow.
        let burst = (0..<10).map { _ in tiered.next(bytes: 1000, now: 1_000_000_000) }
        #expect(burst.filter { $0 == 1 }.count == 2 && burst.filter { $0 == 0 }.count == 8, "\(burst)")
        // A steady 160 kbit/s (one packet every 50 ms) fits VNet 1's budget: all of it goes there.
        let steady = (1...40).map { n in tiered.next(bytes: 1000, now: 1_000_000_000 + UInt64(n) * 50_000_000) }
        #expect(steady.allSatisfy { $0 == 1 }, "\(steady)")
        // Back to one tier: the weighted split as if the tiers had never been (no catching up).
        tiered.set(weights: [1, 1])
        let after = (0..<8).map { n in tiered.next(bytes: 1000, now: 4_000_000_000 + UInt64(n)) }
        #expect(after.filter { $0 == 0 }.count == 4, "\(after)")
    }

    /// Two VNets of `capacity` (trains say so), reports every 50 ms, a packet of 1000 B every
    /// 25 ms (320 kbit/s) split by the controller; `drops(vnet, pathSequence)` loses packets.
    struct Simulation {
        var controller = AdaptiveController(vnets: 2)
        var splitter = TieredSplitter(weights: [1, 1])
        var sent: [UInt32] = [0, 0]
        var received: [UInt32] = [0, 0]
        /// The receiver's view: the highest path sequence arrived + 1; lost = the gaps below it.
        var highest: [UInt32] = [0, 0]
        var lost: [UInt32] { [highest[0] - received[0], highest[1] - received[1]] }
        var trainCount: [UInt32] = [0, 0]
        var now: UInt64 = 1_000_000_000
        var reportSequence: UInt32 = 0
        var carried: [Int] = [0, 0]
        var trains: [FramePlan] = []
        /// Send the copies of trains of copies (a lossy VNet's trains) too, and lose the last
        /// packet of each.
        var sendTrainsOfCopies = false
        var loseLastOfTrains = false

        mutating func arrive(_ vnet: Int) {
            received[vnet] += 1
            highest[vnet] = sent[vnet] + 1
        }

        mutating func run(seconds: Double, capacity: [UInt32], drops: (Int, UInt32) -> Bool) {
            let ms: UInt64 = 1_000_000
            let end = now + UInt64(seconds * 1e9)
            var tick = 0
            while now < end {
                let plan = controller.plan(fragmentBytes: [1000], now: now)
                if plan.train != nil { trains.append(plan) }
                if sendTrainsOfCopies, let train = plan.train, plan.trainOfCopies {
                    for n in 0..<plan.trainPackets {
                        controller.sent(vnet: train, pathSequence: sent[train], bytes: 1000, now: now)
                        let last = n == plan.trainPackets - 1
                        if !drops(train, sent[train]) && !(loseLastOfTrains && last) { arrive(train) }
                        sent[train] += 1
                    }
                }
                for copy in plan.copiesOn {
                    controller.sent(vnet: copy, pathSequence: sent[copy], bytes: 1000, now: now)
                    if !drops(copy, sent[copy]) { arrive(copy) }
                    sent[copy] += 1
                }
                splitter.set(weights: controller.weights, tiers: controller.tiers, budgets: controller.budgets)
                let vnet = splitter.next(bytes: 1000, now: now)
                controller.sent(vnet: vnet, pathSequence: sent[vnet], bytes: 1000, now: now)
                if !drops(vnet, sent[vnet]) { arrive(vnet) }
                sent[vnet] += 1
                carried[vnet] += 1
                now += 25 * ms
                tick += 1
                if tick % 2 == 0 {
                    if tick % 40 == 0 { trainCount = trainCount.map { $0 + 1 } }
                    let report = ReceiverReport(
                        streamID: 1, reportSequence: reportSequence, reportTimeNanoseconds: now,
                        paths: (0..<2).map { p in
                            PathReport(
                                pathID: UInt8(p), highestSequencePlusOne: highest[p], packetsReceived: received[p],
                                bytesReceived: UInt64(received[p]) * 972, packetsLost: lost[p], packetsReordered: 0, packetsDuplicated: 0,
                                delayMicroseconds: 10_000, jitterMicroseconds: 0, capacityBitsPerSecond: capacity[p],
                                capacitySamples: trainCount[p])
                        })
                    reportSequence += 1
                    controller.received(report, over: 1, now: now + 5 * ms)
                }
            }
        }
    }

    @Test("a VNet with 5 % random loss at a flat queue turns lossy, keeps its capacity, and carries only what the clean VNet cannot")
    func controllerAvoidsRandomLoss() {
        var simulation = Simulation()
        // 5 % loss on VNet 0 (every 20th packet), none on VNet 1; both 400 kbit/s.
        simulation.run(seconds: 6, capacity: [400_000, 400_000]) { vnet, sequence in vnet == 0 && sequence % 20 == 7 }
        let controller = simulation.controller
        #expect(controller.lossy == [true, false], "\(controller.lossEstimates)")
        #expect(controller.estimates.map { $0 ?? 0 } == [400_000, 400_000], "random loss is not congestion: the capacity stands")
        #expect(controller.tiers == [[1], [0]] && controller.budgets == [360_000, 360_000], "\(String(describing: controller.tiers))")
        // The clean VNet has room for all of it: over the last second VNet 0 carried nothing.
        simulation.carried = [0, 0]
        simulation.run(seconds: 1, capacity: [400_000, 400_000]) { vnet, sequence in vnet == 0 && sequence % 20 == 7 }
        #expect(simulation.carried[0] == 0, "\(simulation.carried)")
        // Its capacity is still measured, by trains of copies: none of the stream's own packets.
        simulation.trains = []
        simulation.run(seconds: 2, capacity: [400_000, 400_000]) { vnet, sequence in vnet == 0 && sequence % 20 == 7 }
        let trains = simulation.trains
        #expect(trains.contains { $0.train == 0 } && trains.allSatisfy { ($0.train == 0) == $0.trainOfCopies }, "\(trains)")
        let estimate = controller.lossEstimates[0]
        #expect(estimate.lower < 0.05 && 0.05 < estimate.upper, "\(estimate)")
        // The clean VNet shrinks to 200 kbit/s: it is filled to its headroom, the lossy one takes the rest.
        simulation.run(seconds: 3, capacity: [400_000, 200_000]) { vnet, sequence in vnet == 0 && sequence % 20 == 7 }
        #expect(simulation.controller.estimates.map { $0 ?? 0 } == [400_000, 200_000])
        simulation.carried = [0, 0]
        simulation.run(seconds: 4, capacity: [400_000, 200_000]) { vnet, sequence in vnet == 0 && sequence % 20 == 7 }
        // 40 packets/s of 8000 bits: VNet 1's budget of 180 kbit/s takes 22.5 of them.
        let carried = simulation.carried
        #expect(carried[0] > 0 && abs(Double(carried[1]) / 4 - 22.5) < 2, "\(carried) in 4 s")
        // The loss ends: the change test needs about 440 clean packets (17.5 a second reach
        // VNet 0 beside the clean VNet's budget) to turn it clean again, and with one tier back
        // the split is capacity-proportional.
        simulation.run(seconds: 20, capacity: [400_000, 200_000]) { _, _ in false }
        #expect(simulation.controller.lossy == [true, false], "350 clean packets are not yet enough")
        simulation.run(seconds: 20, capacity: [400_000, 200_000]) { _, _ in false }
        #expect(simulation.controller.lossy == [false, false], "\(simulation.controller.lossEstimates)")
        let back = simulation.controller.weights
        #expect(abs(back[0] / back.reduce(0, +) - 2.0 / 3) < 0.01, "\(back)")
    }

    @Test("the change test: two losses close together or three within some hundred packets turn lossy; a burst in one interval does not; about 440 clean packets turn clean")
    func changeTest() {
        let s: UInt64 = 1_000_000_000
        // Report intervals of 2 packets; a clean history of 1000 intervals first does not delay
        // the onset (the sum is floored at 0), as a 20 s window's clean packets would.
        var test = LossChangeTest()
        for n in 0..<1000 { test.add(time: UInt64(n) * s / 20, packets: 2, lost: 0) }
        #expect(test.towardLossy == 0 && test.saysClean)
        test.reset()
        test.add(time: 100 * s, packets: 2, lost: 1)
        #expect(!test.saysLossy && test.lossySince == 100 * s)
        for n in 1...20 { test.add(time: 100 * s + UInt64(n) * s / 20, packets: 2, lost: 0) }
        test.add(time: 102 * s, packets: 2, lost: 1)
        #expect(test.saysLossy && test.lossySince == 100 * s, "two losses 42 packets apart: \(test.towardLossy) nats")
        // Two losses 300 packets apart are not enough; a third soon after is.
        var sparse = LossChangeTest()
        sparse.add(time: 0, packets: 2, lost: 1)
        for n in 1...150 { sparse.add(time: UInt64(n), packets: 2, lost: 0) }
        sparse.add(time: 151, packets: 2, lost: 1)
        #expect(!sparse.saysLossy, "\(sparse.towardLossy)")
        for n in 152...160 { sparse.add(time: UInt64(n), packets: 2, lost: 0) }
        sparse.add(time: 161, packets: 2, lost: 1)
        #expect(sparse.saysLossy, "\(sparse.towardLossy)")
        // Five packets lost in one interval (an overflow, a reroute's blip) count as one.
        var burst = LossChangeTest()
        burst.add(time: 0, packets: 10, lost: 5)
        #expect(!burst.saysLossy && burst.towardLossy > 2 && burst.towardLossy < 2.4)
        // Turning clean: about 440 received packets with no loss, from any state.
        var clean = LossChangeTest()
        clean.add(time: 0, packets: 430, lost: 0)
        #expect(!clean.saysClean)
        clean.add(time: 1, packets: 20, lost: 0)
        #expect(clean.saysClean && clean.cleanSince == 0)
        // 3 % random loss (every 33rd packet) never turns clean; 0.1 % never turns lossy.
        var three = LossChangeTest()
        var tenth = LossChangeTest()
        var anyClean = false
        var anyLossy = false
        for n in 0..<20_000 {
            three.add(time: UInt64(n), packets: 1, lost: n % 33 == 0 ? 1 : 0)
            tenth.add(time: UInt64(n), packets: 1, lost: n % 1000 == 999 ? 1 : 0)
            anyClean = anyClean || three.saysClean
            anyLossy = anyLossy || tenth.saysLossy
        }
        #expect(!anyClean && !anyLossy && three.saysLossy && tenth.saysClean)
    }

    @Test("loss that begins on a VNet that was clean for a long time turns it lossy within seconds, and the rate charged is the new one")
    func lossOnset() {
        var simulation = Simulation()
        simulation.run(seconds: 20, capacity: [400_000, 400_000]) { _, _ in false }
        #expect(simulation.controller.lossy == [false, false])
        // 3 % on VNet 0 (every 33rd of its packets), about 20 of them a second: a 20 s window
        // holding 400 clean packets took 8 s to show it in a lab run.
        var seconds = 0.0
        while seconds < 6, !simulation.controller.lossy[0] {
            simulation.run(seconds: 0.5, capacity: [400_000, 400_000]) { vnet, sequence in vnet == 0 && sequence % 33 == 5 }
            seconds += 0.5
        }
        #expect(simulation.controller.lossy == [true, false], "after \(seconds) s: \(simulation.controller.lossEstimates)")
        #expect(seconds <= 5)
        let estimate = simulation.controller.lossEstimates[0]
        #expect(estimate.rate > 0.01 && estimate.packets < 200, "the estimate starts at the change point: \(estimate)")
    }

    @Test("a lossy VNet that carries only its trains is not dead when a train's last packet is lost; when it fails, it is")
    func lossyVNetBetweenTrains() {
        var simulation = Simulation()
        simulation.run(seconds: 6, capacity: [400_000, 400_000]) { vnet, sequence in vnet == 0 && sequence % 20 == 7 }
        #expect(simulation.controller.lossy == [true, false])
        // Now it carries trains of three copies a second; lose the last packet of every train
        // (and only that one), so that one packet stays uncovered until the next train.
        simulation.sendTrainsOfCopies = true
        simulation.loseLastOfTrains = true
        var everDead = false
        let sentBefore = simulation.sent[0]
        for _ in 0..<20 {
            simulation.run(seconds: 0.5, capacity: [400_000, 400_000]) { _, _ in false }
            everDead = everDead || simulation.controller.dead[0]
        }
        #expect(simulation.sent[0] - sentBefore >= 27, "trains went on VNet 0: \(simulation.sent[0] - sentBefore) packets")
        #expect(!everDead, "a lost packet between trains is no failure")
        simulation.loseLastOfTrains = false
        // A failure: nothing gets through; the next train's packets are overdue, and it is dead.
        var dead = false
        for _ in 0..<6 where !dead {
            simulation.run(seconds: 0.5, capacity: [400_000, 400_000]) { vnet, _ in vnet == 0 }
            dead = simulation.controller.dead[0]
        }
        #expect(dead)
    }

    @Test("what a VNet lost while it was dead is the outage, not random loss: back alive, it is clean")
    func outageIsNotRandomLoss() {
        var simulation = Simulation()
        simulation.run(seconds: 3, capacity: [400_000, 400_000]) { _, _ in false }
        simulation.run(seconds: 3, capacity: [400_000, 400_000]) { vnet, _ in vnet == 0 }
        #expect(simulation.controller.dead == [true, false])
        simulation.run(seconds: 3, capacity: [400_000, 400_000]) { _, _ in false }
        #expect(simulation.controller.dead == [false, false])
        #expect(simulation.controller.lossy == [false, false], "\(simulation.controller.lossEstimates)")
        let weights = simulation.controller.weights
        #expect(abs(weights[0] / weights.reduce(0, +) - 0.5) < 0.01, "\(weights)")
    }

    @Test("losses right after the sender put a burst on a VNet that could fill its queue are not random loss")
    func burstLossIsNotRandom() {
        func report(_ sequence: UInt32, at time: UInt64, received: UInt32, lost: UInt32) -> ReceiverReport {
            ReceiverReport(
                streamID: 1, reportSequence: sequence, reportTimeNanoseconds: time,
                paths: [
                    PathReport(
                        pathID: 0, highestSequencePlusOne: received + lost, packetsReceived: received, bytesReceived: UInt64(received) * 972,
                        packetsLost: lost, packetsReordered: 0, packetsDuplicated: 0, delayMicroseconds: 10_000, jitterMicroseconds: 0,
                        capacityBitsPerSecond: 400_000, capacitySamples: 1)
                ])
        }
        let ms: UInt64 = 1_000_000
        for burst in [1, 12] {
            var controller = AdaptiveController(vnets: 1)
            controller.received(report(0, at: 1000 * ms, received: 0, lost: 0), over: 0, now: 1000 * ms)
            controller.received(report(1, at: 1050 * ms, received: 0, lost: 0), over: 0, now: 1050 * ms)
            // `burst` packets of 1000 B at once onto 400 kbit/s: twelve are 240 ms of queue.
            for n in 0..<burst { controller.sent(vnet: 0, pathSequence: UInt32(n), bytes: 1000, now: 1060 * ms) }
            controller.received(report(2, at: 1400 * ms, received: UInt32(burst) - (burst > 1 ? 3 : 0), lost: burst > 1 ? 3 : 0), over: 0, now: 1400 * ms)
            let counted = controller.lossEstimates[0].packets
            #expect(burst == 1 ? counted == 1 : counted == 0, "burst of \(burst): \(counted) packets counted as random-loss samples")
        }
    }

    @Test("a full queue that overflows at a standing delay still cuts the estimate, with no random-loss samples at all")
    func overflowWithoutSamples() {
        let ms: UInt64 = 1_000_000
        var controller = AdaptiveController(vnets: 1)
        var received: UInt32 = 0
        var lost: UInt32 = 0
        // 50 ms reports; the first at 10 ms of delay (the base), then 60 ms (a full queue that
        // no longer grows) with 25 packets of 1000 B a second arriving (200 kbit/s) and losses.
        // A second train at 1 s sets the estimate back to 600 kbit/s when the delay has long
        // stopped growing: only the losses can cut it again.
        for n in 0..<30 {
            let time = UInt64(1000 + 50 * n) * ms
            if n > 0 {
                received += n % 4 == 0 ? 2 : 1
                lost += n > 2 ? 1 : 0
            }
            let report = ReceiverReport(
                streamID: 1, reportSequence: UInt32(n), reportTimeNanoseconds: time,
                paths: [
                    PathReport(
                        pathID: 0, highestSequencePlusOne: received + lost, packetsReceived: received, bytesReceived: UInt64(received) * 972,
                        packetsLost: lost, packetsReordered: 0, packetsDuplicated: 0, delayMicroseconds: n == 0 ? 10_000 : 60_000,
                        jitterMicroseconds: 0, capacityBitsPerSecond: 600_000, capacitySamples: n < 20 ? 1 : 2)
                ])
            controller.received(report, over: 0, now: time)
        }
        #expect(controller.lossEstimates[0].packets == 0, "nothing was sampled at this queue")
        let estimate = controller.estimates[0] ?? 0
        #expect(estimate > 150_000 && estimate < 300_000, "the overflowing queue delivered about 200 kbit/s: \(estimate)")
    }

    @Test("loss beyond the random rate at a growing queue is congestion; at the random rate it is not")
    func congestiveLoss() {
        #expect(!AdaptiveController.congestiveLoss(lost: 5, received: 95, randomRate: 0.06))
        #expect(AdaptiveController.congestiveLoss(lost: 20, received: 80, randomRate: 0.06))
        #expect(!AdaptiveController.congestiveLoss(lost: 0, received: 100, randomRate: 0))
        #expect(AdaptiveController.congestiveLoss(lost: 2, received: 100, randomRate: 0))
    }
}
