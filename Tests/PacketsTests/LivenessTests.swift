import Accounting
import Control
import Packets
import Splitting
import Testing

/// Two VNets as FIFO bottlenecks (a rate, a one-way delay, a queue limit, a failure time, a
/// loss rule), with the real receiver accounting behind them and its reports going back after
/// a return delay. The adaptive controller steers a stream of two packets every 40 ms (two of
/// 1400 bytes: 560 kbit/s). Pure: a clock in steps of 1 ms, no I/O.
struct LivenessModel {
    struct Link {
        var rate: (UInt64) -> Double
        var delay: UInt64 = 5_000_000
        var queueLimitBytes = 12_000
        var failedAt: UInt64 = .max
        /// Down now and then (a flapping path), besides failing for good at `failedAt`.
        var down: (UInt64) -> Bool = { _ in false }
        /// Whether the packet with this path sequence is lost at random.
        var loses: (UInt32) -> Bool = { _ in false }
        var busyUntil: UInt64 = 0
    }

    static let ms: UInt64 = 1_000_000
    var links: [Link]
    var controller: AdaptiveController
    var returnDelay: (UInt64) -> UInt64 = { _ in 5_000_000 }
    var receiver = StreamAccounting(streamID: 1, intervalSeconds: 5)
    var splitter = WeightedSplitter(weights: [1, 1])
    var inFlight: [(at: UInt64, header: MediaHeader)] = []
    var reportsInFlight: [(at: UInt64, report: ReceiverReport)] = []
    var pathSequence: [UInt32] = [0, 0]
    var streamSequence: UInt32 = 0
    /// Each control event with the sender time it happened at.
    var events: [(at: UInt64, event: ControlEvent)] = []
    let packetBytes: Int

    init(links: [Link], packetBytes: Int = 1400, parameters: AdaptiveController.Parameters = .init()) {
        self.links = links
        self.packetBytes = packetBytes
        controller = AdaptiveController(vnets: links.count, parameters: parameters)
    }

    mutating func send(_ sequence: UInt32, on vnet: Int, frame: UInt32, index: UInt16, now: UInt64) {
        let header = MediaHeader(
            streamID: 1, streamSequence: sequence, pathSequence: pathSequence[vnet], frameNumber: frame, sendTimeNanoseconds: now,
            fragmentIndex: index, fragmentCount: 2, pathID: UInt8(vnet), frameType: UInt8(ascii: "P"), mark: 0)
        controller.sent(vnet: vnet, pathSequence: pathSequence[vnet], bytes: packetBytes, now: now)
        pathSequence[vnet] += 1
        var link = links[vnet]
        defer { links[vnet] = link }
        guard now < link.failedAt, !link.down(now), !link.loses(header.pathSequence) else { return }
        let rate = link.rate(now)
        let backlog = Double(link.busyUntil > now ? link.busyUntil - now : 0) * rate / 8e9
        guard backlog + Double(packetBytes) <= Double(link.queueLimitBytes) else { return }
        link.busyUntil = max(now, link.busyUntil) + UInt64(Double(packetBytes * 8) / rate * 1e9)
        inFlight.append((link.busyUntil + link.delay, header))
    }

    mutating func run(until end: UInt64) {
        var now: UInt64 = 0
        var frame: UInt32 = 0
        var reportSequence: UInt32 = 0
        while now < end {
            if now % (40 * Self.ms) == 0 {
                let plan = controller.plan(fragmentBytes: [packetBytes + 28, packetBytes + 28], keyFrame: false, now: now)
                var first: Int?
                for index in 0..<2 {
                    let vnet = plan.train ?? splitter.next()
                    if let train = plan.train { splitter.take(train) }
                    first = first ?? vnet
                    send(streamSequence + UInt32(index), on: vnet, frame: frame, index: UInt16(index), now: now)
                }
                if let train = plan.train {
                    for _ in 2..<max(2, plan.trainPackets) { send(streamSequence, on: train, frame: frame, index: 0, now: now) }
                }
                for vnet in plan.copiesOn where vnet != first { send(streamSequence, on: vnet, frame: frame, index: 0, now: now) }
                streamSequence += 2
                frame += 1
                take(now)
            }
            inFlight.sort { $0.at < $1.at }
            while let next = inFlight.first, next.at <= now {
                inFlight.removeFirst()
                receiver.record(next.header, bytes: packetBytes, tos: nil, arrival: next.at)
            }
            if now % (50 * Self.ms) == 0, now > 0 {
                reportsInFlight.append((now + returnDelay(now), receiver.report(sequence: reportSequence, now: now)))
                reportSequence += 1
            }
            while let next = reportsInFlight.first, next.at <= now {
                reportsInFlight.removeFirst()
                controller.received(next.report, over: 1, now: now)
                take(now)
            }
            now += Self.ms
        }
    }

    mutating func take(_ now: UInt64) {
        for event in controller.takeEvents() { events.append((now, event)) }
        splitter.setWeights(controller.weights)
    }

    func deaths(of vnet: Int, from: UInt64 = 0) -> [UInt64] {
        events.filter { $0.event.kind == .dead && $0.event.vnet == vnet && $0.at >= from }.map(\.at)
    }

    /// The rule before the quiet condition: overdue alone decides.
    static var overdueOnly: AdaptiveController.Parameters {
        var parameters = AdaptiveController.Parameters()
        parameters.stallPacketTimes = 0
        parameters.stallIdleMinimumMs = 0
        return parameters
    }
}

@Suite("Liveness: dead VNets, slow VNets and late reports")
struct LivenessTests {
    static let ms = LivenessModel.ms

    static func link(_ kbit: Double, from time: UInt64 = .max, to slower: Double = 0) -> LivenessModel.Link {
        LivenessModel.Link(rate: { $0 >= time ? slower * 1000 : kbit * 1000 })
    }

    func deaths(_ model: LivenessModel) -> String {
        "\(model.events.filter { $0.event.kind == .dead }.map { "\($0.at / Self.ms) ms VNet \($0.event.vnet): \($0.event.detail)" })"
    }

    @Test("a VNet whose capacity drops from 400 to 115 kbit/s (1400-byte packets) stays alive: it still delivers a packet every packet time")
    func slowIsNotDead() {
        for drop: UInt64 in [3000, 3020, 3040] {
            let links = [Self.link(400, from: drop * Self.ms, to: 115), Self.link(400, from: drop * Self.ms, to: 115)]
            var model = LivenessModel(links: links)
            model.run(until: 9000 * Self.ms)
            #expect(model.deaths(of: 0).isEmpty && model.deaths(of: 1).isEmpty, "drop at \(drop) ms: \(deaths(model))")
            // Overdue alone took the queue for a stall.
            var old = LivenessModel(links: links, parameters: LivenessModel.overdueOnly)
            old.run(until: 9000 * Self.ms)
            #expect(!(old.deaths(of: 0) + old.deaths(of: 1)).isEmpty)
        }
    }

    @Test("a VNet that fails while the other is at 90 % of the stream is dead within 150 ms (800-byte packets, the crowded failover)")
    func failureBesideCrowdedVNet() throws {
        for failure: UInt64 in [5000, 5013, 5027] {
            var links = [Self.link(400), Self.link(300)]
            links[0].failedAt = failure * Self.ms
            var model = LivenessModel(links: links, packetBytes: 800)
            model.run(until: 7000 * Self.ms)
            let dead = try #require(model.deaths(of: 0).first)
            #expect(dead >= failure * Self.ms && dead - failure * Self.ms <= 150 * Self.ms, "failed at \(failure) ms: \(deaths(model))")
            #expect(model.controller.dead == [true, false])
        }
    }

    @Test("reports that come back 250 ms late (queued on their way) declare no working VNet dead, and a failure is still seen")
    func lateReports() throws {
        var links = [Self.link(400), Self.link(400)]
        links[0].failedAt = 6000 * Self.ms
        var model = LivenessModel(links: links, packetBytes: 800)
        model.returnDelay = { $0 >= 3000 * Self.ms ? 250 * Self.ms : 5 * Self.ms }
        model.run(until: 7000 * Self.ms)
        #expect(model.deaths(of: 0).allSatisfy { $0 >= 6000 * Self.ms } && model.deaths(of: 1).isEmpty, "\(deaths(model))")
        // Seen as soon as a report written within 150 ms of the failure is back.
        let dead = try #require(model.deaths(of: 0).first)
        #expect(dead - 6000 * Self.ms <= 150 * Self.ms + 250 * Self.ms, "\(deaths(model))")
    }

    @Test("single random losses on a VNet that carries a packet every 80 ms are not a stall (overdue alone took them for one)")
    func loneLossIsNotDead() {
        var links = [Self.link(200), Self.link(600)]
        links[0].loses = { $0 % 20 == 7 }
        var model = LivenessModel(links: links)
        model.run(until: 20_000 * Self.ms)
        #expect(model.deaths(of: 0).isEmpty, "\(deaths(model))")
        var old = LivenessModel(links: links, parameters: LivenessModel.overdueOnly)
        old.run(until: 20_000 * Self.ms)
        #expect(!old.deaths(of: 0).isEmpty)
    }

    @Test("a VNet down 1 s in every 3 s flaps from its second outage: it is placed after the steady VNet, and is steady again once its outages stop for long enough")
    func flappingVNet() throws {
        var links = [Self.link(800), Self.link(800)]
        // Down 1 s from 5 s, 8 s, 11 s and 14 s.
        links[0].down = { now in now >= 5000 * Self.ms && now < 15_000 * Self.ms && (now / Self.ms - 5000) % 3000 < 1000 }
        var model = LivenessModel(links: links, packetBytes: 800)
        model.run(until: 80_000 * Self.ms)
        let deaths = model.deaths(of: 0)
        #expect(deaths.count == 4 && model.deaths(of: 1).isEmpty, "\(self.deaths(model))")
        let flapping = model.events.filter { $0.event.kind == .flapping }
        #expect(flapping.count == 1 && flapping.first?.event.vnet == 0 && flapping.first.map { $0.at == deaths[1] } == true, "\(flapping.map(\.event.detail))")
        let steady = try #require(model.events.first { $0.event.kind == .steady })
        // Four outages 3 s apart leave a penalty of 3.44 at about 14 s; below 0.5 takes 20 s x log2(6.9), 56 s.
        #expect(steady.event.vnet == 0 && (65_000 * Self.ms...75_000 * Self.ms).contains(steady.at), "steady at \(steady.at / Self.ms) ms")
        #expect(model.controller.tiers == nil, "steady: one tier again")
        // In between, the steady VNet came first.
        var between = LivenessModel(links: links, packetBytes: 800)
        between.run(until: 17_000 * Self.ms)
        #expect(between.controller.tiers == [[1], [0]] && between.controller.dead == [false, false], "\(String(describing: between.controller.tiers))")
        // Without damping, a VNet alive again is one tier with the other.
        var parameters = AdaptiveController.Parameters()
        parameters.flapSuppress = 0
        var undamped = LivenessModel(links: links, packetBytes: 800, parameters: parameters)
        undamped.run(until: 17_000 * Self.ms)
        #expect(undamped.controller.tiers == nil && undamped.events.allSatisfy { $0.event.kind != .flapping })
    }

    @Test("an outage history: one outage never flaps, two within the half-life do, the penalty halves every half-life, the cost is the outage rate times an outage's length")
    func outageHistory() {
        let s: UInt64 = 1_000_000_000
        var history = OutageHistory(halfLife: 20, suppress: 1.5, reuse: 0.5)
        let first = history.outage(at: 10 * s)
        #expect(!first && !history.flapping && history.cost(at: 10 * s, outageSeconds: 0.1) == 0)
        #expect(abs(history.penalty(at: 30 * s) - 0.5) < 1e-9)
        // A second outage 25 s later: 1 + 2^-1.25 = 1.42, not yet.
        let second = history.outage(at: 35 * s)
        #expect(!second)
        let third = history.outage(at: 36 * s)
        #expect(third && history.flapping, "a third one a second later: 2.38")
        let rate = history.rate(at: 36 * s)
        #expect(abs(rate - history.penalty(at: 36 * s) * 0.693147 / 20) < 1e-4 && abs(history.cost(at: 36 * s, outageSeconds: 0.15) - rate * 0.15) < 1e-9)
        let early = history.settle(at: 60 * s)
        #expect(!early, "2.38 x 2^-1.2 = 1.03: still flapping")
        let late = history.settle(at: 82 * s)
        #expect(late && !history.flapping, "2.38 x 2^-2.3 = 0.48")
        var off = OutageHistory(halfLife: 20, suppress: 0, reuse: 0.5)
        for t: UInt64 in 1...10 {
            let started = off.outage(at: t * s)
            #expect(!started)
        }
        #expect(!off.flapping && off.outages == 10)
    }
}
