import Packets

/// The adaptive split: each VNet's share is its estimated capacity over the sum of the live
/// VNets' capacities. Written up in `Docs/controller.md`.
///
/// What it estimates, per VNet:
/// - **Capacity**, from packet trains the receiver measures (`PacketTrains`): every
///   `probeInterval` each live VNet gets one frame as a train of at least three packets (the
///   frame's own fragments, then copies). A train measures the bottleneck whatever the VNet's
///   current load, so an idle VNet's capacity is known and recovered capacity is seen within a
///   probe or two. Between trains, a VNet whose queue grows (smoothed one-way delay more than
///   `saturationDelayMs` above its base) is saturated: its estimate drops at once to the rate it
///   delivered over the last `rateWindow`, which a full queue makes equal to its capacity.
/// - **Liveness**, from sequence progress and the VNet's own quiet (`Liveness.swift`): a VNet is
///   dead when its oldest packet the latest report does not cover is too old at that report's
///   own time, and nothing has arrived on it for several of its packet times. A dead
///   VNet gets weight 0 and a copy of a packet every `deadProbeInterval`; the first copy that
///   arrives brings it back.
///
/// Why it does not oscillate: the capacity a train measures does not depend on the split, so
/// moving traffic never changes the next estimate; the saturation cut sets the estimate to the
/// delivered rate of a full queue, which is again the capacity, not a step of a guess. Weights
/// move only when an estimate moves by more than `hysteresis`.
public struct AdaptiveController: SplitController {
    struct Path {
        static let ring = 8192
        var sendTimes = [UInt64](repeating: 0, count: ring)
        /// Packets sent on this path so far (the next path sequence).
        var sent: UInt32 = 0
        var highestReported: UInt32 = 0
        var lagMean: Double = 0
        var lagDeviation: Double = 0
        var lagSamples = 0
        /// How long the VNet had been idle at the latest report (nil: nothing has arrived, or
        /// the report did not say) and its packet time, nanoseconds.
        var idle: UInt64?
        var packetTime: UInt64 = 0
        var dead = false
        var sentAtDeath: UInt32 = 0
        var trainSamplesSeen: UInt32 = 0
        var samples: [Double] = []
        var estimate: Double?
        var nextProbe: UInt64 = 0
        var nextDeadProbe: UInt64 = 0
        /// Recent reports' receiver time, IPv4 bytes received, packets lost and smoothed delay
        /// (µs), for the delivered rate and whether the queue grows.
        var history: [(time: UInt64, bytes: UInt64, lost: UInt32, received: UInt32, delay: Int32)] = []
        /// Smallest smoothed delay seen, microseconds, per 2 s bucket (the base is their minimum).
        var delayFloor: [(bucket: UInt64, delay: Int32)] = []
        /// Random loss (at a flat queue), and whether it makes the VNet lossy.
        var loss = LossEstimator()
        var lossTest = LossChangeTest()
        var lossy = false
        /// Its outages, and whether they come often enough to cost (a flapping VNet).
        var outages = OutageHistory()
        /// What its outages cost while it flaps, as a loss rate (set when its outages change).
        var flapCost = 0.0
        /// Whether the placement charges it: random loss, or flapping.
        var charged: Bool { lossy || outages.flapping }
        /// The previous report's cumulative figures and delay, for per-interval samples.
        var previous: (received: UInt32, lost: UInt32, delay: Int32)?
        /// What the sender put on the VNet and the capacity has not drained yet, bits (as of
        /// `virtualQueueTime`), and until when losses may be its queue overflowing.
        var virtualQueue: Double = 0
        var virtualQueueTime: UInt64 = 0
        var mayOverflowUntil: UInt64 = 0
        /// Packets of a planned probe train not sent yet (they stay out of the virtual queue:
        /// a train is sized to fit the bottleneck's burst allowance).
        var trainPacketsToCome = 0
        /// Until when the last probe train may still queue at the bottleneck (its bits over the
        /// capacity estimate): a queue the train built is not saturation.
        var trainDrainUntil: UInt64 = 0
        /// The estimate the trains gave last (a saturation cut does not change it).
        var trainEstimate: Double?
        /// The most the VNet can carry whatever a train says: its reservation on a shaped
        /// access link, whose burst lets a short train through at line rate.
        var ceiling: Double?

        /// What the VNet can carry, for pacing and shedding: the trains' estimate, unless a
        /// saturation cut put the estimate more than 30 % below it (a real drop). Smaller cuts
        /// are within the delivered rate's noise at low packet rates (a 0.3 s window holds three
        /// full-size packets at 100 kbit/s), and following them would throttle the stream for
        /// nothing until the next train.
        var carryingRate: Double? {
            guard let estimate else { return nil }
            if let train = trainEstimate, estimate >= 0.7 * train { return capped(max(estimate, train)) }
            return capped(estimate)
        }

        func capped(_ rate: Double) -> Double { ceiling.map { min(rate, $0) } ?? rate }

        /// The random loss rate the saturation test allows for: the upper end of its interval
        /// once it rests on enough packets (100), the point estimate before (0 with none), so
        /// that an unknown rate never excuses a queue's overflow.
        var knownRandomLoss: Double { loss.packets >= 100 ? loss.interval().upper : loss.rate }

        func sendTime(of sequence: UInt32) -> UInt64? {
            guard sequence < sent, sent - sequence <= UInt32(Self.ring) else { return nil }
            return sendTimes[Int(sequence % UInt32(Self.ring))]
        }
    }

    public let parameters: Parameters
    public internal(set) var weights: [Double]
    var paths: [Path]
    var appliedEstimates: [Double?]
    var lastReportSequence: Int64 = -1
    var lastReportArrival: UInt64?
    var lastReportTime: UInt64?
    /// The latest report's own time on the sender's clock: its receiver time plus the smallest
    /// offset (arrival minus report time) seen, which is the clocks' offset plus the quickest way
    /// back. A report that queued on its way back thus tells its age correctly.
    var lastReportAt: UInt64?
    var reportClockOffset: Int64?
    var reportClockOffsetTime: UInt64 = 0
    /// The receiver's report period as the reports show it (their own times, over their
    /// sequence numbers), smoothed; nanoseconds. nil before two reports.
    public private(set) var reportPeriod: Double?
    var started: UInt64?
    var events: [ControlEvent] = []
    /// Which VNets the applied placement charged (lossy or flapping).
    var appliedCharged: [Bool]

    /// `ceilings`: each VNet's most (its reservation, bits per second; nil or missing: none).
    public init(vnets: Int, parameters: Parameters = Parameters(), ceilings: [Double?] = []) {
        precondition(vnets > 0)
        self.parameters = parameters
        weights = Array(repeating: 1, count: vnets)
        var path = Path()
        path.loss = LossEstimator(windowSeconds: parameters.lossWindow)
        path.lossTest = LossChangeTest(
            cleanRate: parameters.cleanBelowPct / 100, lossyRate: parameters.lossyAbovePct / 100, threshold: parameters.lossEvidence)
        path.outages = OutageHistory(halfLife: parameters.flapHalfLife, suppress: parameters.flapSuppress, reuse: parameters.flapReuse)
        paths = Array(repeating: path, count: vnets)
        for (index, ceiling) in ceilings.prefix(vnets).enumerated() { paths[index].ceiling = ceiling }
        appliedEstimates = Array(repeating: nil, count: vnets)
        appliedCharged = Array(repeating: false, count: vnets)
    }

    /// The tiers the splitter fills in order (cleanest first) when VNets differ in random
    /// loss, nil when they do not; each VNet's budget is `headroom` of its capacity.
    public internal(set) var tiers: [[Int]]?
    public internal(set) var budgets: [Double]?

    /// Which VNets carry random loss that puts them behind the cleaner ones.
    public var lossy: [Bool] { paths.map(\.lossy) }
    /// Each VNet's random loss estimate (at a flat queue) and its 95 % Wilson interval.
    public var lossEstimates: [(rate: Double, lower: Double, upper: Double, packets: Int)] {
        paths.map { path in
            let interval = path.loss.interval()
            return (path.loss.rate, interval.lower, interval.upper, path.loss.packets)
        }
    }

    /// Each VNet's capacity estimate, bits per second (nil: none yet).
    public var estimates: [Double?] { paths.map(\.estimate) }
    /// Which VNets are dead.
    public var dead: [Bool] { paths.map(\.dead) }

    /// Dead VNets are not live; a lossy or flapping one carries its loss rate (at least the
    /// lossy threshold); one whose virtual queue overflowed lately is full.
    public func outlook(now: UInt64) -> [VNetOutlook] {
        paths.map { path in
            VNetOutlook(
                live: !path.dead, lossRate: path.charged ? max(path.loss.rate, parameters.lossyAbovePct / 100) : 0,
                full: now < path.mayOverflowUntil)
        }
    }

    /// What each live VNet can carry (`carryingRate`; a dead VNet is not paced: its packets move).
    public var pacingRates: [Double?]? {
        parameters.pacingHoldMs > 0 ? paths.map { $0.dead ? nil : $0.carryingRate } : nil
    }
    public var pacingHoldNanoseconds: UInt64 { UInt64(max(0, parameters.pacingHoldMs) * 1e6) }

    /// What the live VNets can carry together (`carryingRate`); nil until every live VNet has an
    /// estimate. 0 when every VNet is dead.
    public var deliverableRate: Double? {
        var sum = 0.0
        for path in paths where !path.dead {
            guard let rate = path.carryingRate else { return nil }
            sum += rate
        }
        return sum
    }

    func nanoseconds(_ seconds: Double) -> UInt64 { UInt64(max(0, seconds) * 1e9) }

    /// The constants that assume reports every 50-100 ms, stretched when reports come less
    /// often: a report counts as fresh for 6 report periods at least, and the delivered rate
    /// is measured over 6 periods at least (so a window always holds several reports).
    public var reportFreshnessSeconds: Double { max(parameters.reportFreshnessMs / 1000, 6 * (reportPeriod ?? 0) / 1e9) }
    public var rateWindowSeconds: Double { max(parameters.rateWindow, 6 * (reportPeriod ?? 0) / 1e9) }

    public mutating func plan(fragmentBytes: [Int], keyFrame: Bool, now: UInt64) -> FramePlan {
        if started == nil {
            started = now
            // Stagger the first trains so that the VNets are not probed in the same frame.
            for index in paths.indices {
                paths[index].nextProbe = now + nanoseconds(0.2 + parameters.probeInterval * Double(index) / Double(paths.count))
            }
        }
        checkStalls(now: now)
        var plan = FramePlan()
        for index in paths.indices where paths[index].dead && now >= paths[index].nextDeadProbe {
            plan.copiesOn.append(index)
            paths[index].nextDeadProbe = now + nanoseconds(parameters.deadProbeInterval)
        }
        let largest = fragmentBytes.max() ?? 0
        if !fragmentBytes.isEmpty, !keyFrame,
            let due = paths.indices.filter({ !paths[$0].dead && now >= paths[$0].nextProbe }).min(by: {
                paths[$0].nextProbe < paths[$1].nextProbe
            })
        {
            if largest >= parameters.trainMinimumPacketBytes {
                plan.train = due
                plan.trainPackets = parameters.trainPackets
                plan.trainOfCopies = paths[due].charged
                paths[due].trainPacketsToCome = parameters.trainPackets
                paths[due].nextProbe = now + nanoseconds(parameters.probeInterval)
            } else if now >= paths[due].nextProbe + nanoseconds(parameters.probeInterval) {
                // No frame large enough came for a whole interval: skip this round.
                paths[due].nextProbe = now + nanoseconds(parameters.probeInterval)
            }
        }
        plan.copiesOn.removeAll { $0 == plan.train }
        return plan
    }

    public mutating func sent(vnet: Int, pathSequence: UInt32, bytes: Int, now: UInt64) {
        paths[vnet].sendTimes[Int(pathSequence % UInt32(Path.ring))] = now
        paths[vnet].sent = max(paths[vnet].sent, pathSequence &+ 1)
        var path = paths[vnet]
        let train = path.trainPacketsToCome > 0
        if train { path.trainPacketsToCome -= 1 }
        if train, let capacity = path.estimate, capacity > 0 {
            path.trainDrainUntil = max(path.trainDrainUntil, now) + UInt64(Double((bytes + 14) * 8) / capacity * 1e9)
        }
        if let capacity = path.estimate, capacity > 0 {
            let drained = capacity * Double(now &- path.virtualQueueTime) / 1e9
            path.virtualQueue = max(0, path.virtualQueue - (now > path.virtualQueueTime ? drained : 0)) + (train ? 0 : Double(bytes * 8))
            if path.virtualQueue > capacity * parameters.randomLossQueueMs / 1000 + 12_000 {
                path.mayOverflowUntil = now + nanoseconds(parameters.randomLossHoldoff)
            }
        } else {
            // No capacity known yet: no loss counts as random.
            path.mayOverflowUntil = now + nanoseconds(parameters.randomLossHoldoff)
        }
        path.virtualQueueTime = max(path.virtualQueueTime, now)
        paths[vnet] = path
    }

    public mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64) {
        // The same report comes over every VNet: the first copy counts.
        guard Int64(report.reportSequence) > lastReportSequence else { return }
        if let previous = lastReportTime, lastReportSequence >= 0, report.reportTimeNanoseconds > previous {
            let sample = Double(report.reportTimeNanoseconds - previous) / Double(Int64(report.reportSequence) - lastReportSequence)
            reportPeriod = reportPeriod.map { $0 + (sample - $0) / 8 } ?? sample
        }
        lastReportSequence = Int64(report.reportSequence)
        lastReportArrival = now
        lastReportTime = report.reportTimeNanoseconds
        let reportAt = mapReportTime(report.reportTimeNanoseconds, arrival: now)
        lastReportAt = reportAt
        var changed = false
        for figures in report.paths {
            let index = Int(figures.pathID)
            guard paths.indices.contains(index) else { continue }
            changed = update(index, with: figures, reportTime: report.reportTimeNanoseconds, reportAt: reportAt, now: now) || changed
        }
        if changed { recomputeWeights() }
        checkStalls(now: now)
    }

    public mutating func takeEvents() -> [ControlEvent] {
        defer { events.removeAll() }
        return events
    }

    /// Folds one path's figures in; returns whether its estimate or liveness changed.
    private mutating func update(_ index: Int, with figures: PathReport, reportTime: UInt64, reportAt: UInt64, now: UInt64) -> Bool {
        var path = paths[index]
        defer { paths[index] = path }
        var changed = false
        path.idle = figures.idleMicroseconds == PathReport.neverArrived ? nil : UInt64(figures.idleMicroseconds) * 1000
        path.packetTime = UInt64(figures.packetTimeMicroseconds) * 1000
        let highest = figures.highestSequencePlusOne
        if highest > path.highestReported {
            path.highestReported = highest
            // While the VNet works: how old its oldest packet not yet covered by a report gets
            // at the report's own time (one-way delay, queueing, the gap to the report). A stall
            // is judged against this.
            if !path.dead, highest < path.sent, let sentAt = path.sendTime(of: highest), reportAt > sentAt {
                let lag = Double(reportAt - sentAt)
                if path.lagSamples == 0 {
                    path.lagMean = lag
                    path.lagDeviation = lag / 2
                } else {
                    path.lagDeviation += (abs(lag - path.lagMean) - path.lagDeviation) / 4
                    path.lagMean += (lag - path.lagMean) / 8
                }
                path.lagSamples += 1
            }
            if path.dead && highest > path.sentAtDeath {
                path.dead = false
                path.nextProbe = now
                path.history.removeAll()
                // What it lost while dead is the outage, not random loss: this report is the
                // new baseline of the loss samples.
                path.previous = nil
                events.append(ControlEvent(kind: .alive, vnet: index, detail: "copy arrived"))
                changed = true
            }
        }
        // Trains: a new sample moves the estimate.
        if takeTrainSample(&path, index, figures, now: now) { changed = true }
        // Saturation: the queue grew, so what arrived is what the VNet can carry.
        let bytes = figures.bytesReceived + UInt64(figures.packetsReceived) * UInt64(IPv4UDP.headerSize)
        path.history.append((reportTime, bytes, figures.packetsLost, figures.packetsReceived, figures.delayMicroseconds))
        let bucket = reportTime / 2_000_000_000
        if path.delayFloor.last?.bucket == bucket {
            path.delayFloor[path.delayFloor.count - 1].delay = min(path.delayFloor[path.delayFloor.count - 1].delay, figures.delayMicroseconds)
        } else {
            path.delayFloor.append((bucket, figures.delayMicroseconds))
            if path.delayFloor.count > 5 { path.delayFloor.removeFirst() }
        }
        let window = nanoseconds(rateWindowSeconds)
        while path.history.count > 2, reportTime &- path.history[1].time >= window { path.history.removeFirst() }
        let base = path.delayFloor.map(\.delay).min() ?? figures.delayMicroseconds
        let queueing = Double(figures.delayMicroseconds - base) / 1000
        // A probe train queues at the bottleneck on purpose (three packets back to back: at
        // 200 kbit/s 170 ms of queue, which with the stream's own packets can overflow a 100 ms
        // queue): until it drained and two reports showed it, neither a loss nor the delay says
        // anything about random loss or the stream's load.
        let trainSettled = now >= path.trainDrainUntil &+ UInt64(2 * (reportPeriod ?? 100_000_000))
        // Random loss: what this report interval lost while the queue sat flat (not above the
        // saturation threshold and not growing) and no train was draining; loss with a growing
        // queue is congestion.
        if path.dead {
            path.previous = nil
        } else if let previous = path.previous, figures.packetsReceived >= previous.received, figures.packetsLost >= previous.lost {
            let growth = Double(figures.delayMicroseconds - previous.delay) / 1000
            if queueing <= parameters.saturationDelayMs, growth < parameters.saturationGrowthMs, now >= path.mayOverflowUntil, trainSettled {
                let lost = Int(figures.packetsLost - previous.lost)
                let packets = Int(figures.packetsReceived - previous.received) + lost
                path.loss.add(time: reportTime, packets: packets, lost: lost)
                path.lossTest.add(time: reportTime, packets: packets, lost: lost)
            } else {
                path.loss.forget(before: reportTime)
            }
            changed = updateLossy(&path, index) || changed
        }
        if !path.dead { path.previous = (figures.packetsReceived, figures.packetsLost, figures.delayMicroseconds) }
        // Saturated: queued beyond the threshold, and the queue still growing or overflowing
        // (losing more than its random loss explains). Then the bottleneck is busy throughout
        // the window and what arrived is its capacity (a queue that drains after the split
        // moved says nothing: its VNet may be half idle).
        if !path.dead, trainSettled, queueing > parameters.saturationDelayMs, let first = path.history.first,
            reportTime &- first.time >= window / 2, figures.packetsReceived > 0,
            Double(figures.delayMicroseconds - first.delay) / 1000 >= parameters.saturationGrowthMs
                || Self.congestiveLoss(
                    lost: Int(figures.packetsLost) - Int(first.lost), received: Int(figures.packetsReceived) - Int(first.received),
                    randomRate: path.knownRandomLoss)
        {
            let delivered = Double(bytes - first.bytes) * 8e9 / Double(reportTime - first.time)
            if delivered > 0, delivered < (path.estimate ?? .infinity) * 0.95 {
                path.estimate = path.capped(delivered)
                path.samples = [delivered]
                events.append(ControlEvent(kind: .capacity, vnet: index, bitsPerSecond: delivered, detail: "saturated"))
                changed = true
            }
        }
        return changed
    }
}
