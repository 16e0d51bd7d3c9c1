import Control
import Foundation
import Accounting
import RunRecords

func percent(_ part: Double, _ whole: Double) -> Double {
    whole > 0 ? (part / whole * 1e6).rounded() / 1e4 : 0
}

func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

/// Turns a run's packet logs into its results. Pure: no I/O.
public struct RunAnalysis {
    public var sent: [SentPacket]
    /// What recovery added on the VNets (parity, retransmissions): not the stream's, so not in
    /// its loss, but load on the VNet it went on, so in the split's shares.
    public var load: [SentPacket] = []
    public var received: [ReceivedPacket]
    /// The stream's time zero on CLOCK_MONOTONIC (the sender's --start-at).
    public var startMonotonic: UInt64
    public var intervalS: Double
    public var durationS: Double
    public var capacity: CapacityTimeline
    /// The bytes VNet `vnet`'s (1-based) queue holds at a capacity of `bitsPerSecond`, as the
    /// lab configured its links.
    public var queueBytes: (_ vnet: Int, _ bitsPerSecond: Double) -> Double
    public var usesAllVNets: Bool
    /// The VNet a uni-net run uses.
    public var uniVNet: Int?
    /// How long after a failure the targets allow a sender to go on using the failed VNet
    /// (`leave_ms`), seconds: what it sent there meanwhile and lost is counted apart
    /// (`Interval.lostLeaving`). 0: nothing is.
    public var leaveAllowanceS: Double = 0
    /// Layer-2 bytes the shaper counts beyond the IPv4 packet (Ethernet header on veth).
    public static let linkOverheadBytes = 14
    public static let shareTolerancePct = 10.0
    /// The window the split's shares are measured over. Two seconds: at 25 frames/s one VBR I
    /// frame can be a third of a second's bytes, and a split moves whole packets.
    public static let shareWindowS = 2.0
    /// Two outages of a VNet that begin this close together make it a flapping VNet, which the
    /// adaptive controller fills only after the steady ones (Docs/controller.md, "Flapping VNets").
    public static let flapWindowS = 20.0

    public init(
        sent: [SentPacket], received: [ReceivedPacket], startMonotonic: UInt64, intervalS: Double, durationS: Double,
        capacity: CapacityTimeline, queueBytes: @escaping (_ vnet: Int, _ bitsPerSecond: Double) -> Double, usesAllVNets: Bool, uniVNet: Int?
    ) {
        self.sent = sent
        self.received = received
        self.startMonotonic = startMonotonic
        self.intervalS = intervalS
        self.durationS = durationS
        self.capacity = capacity
        self.queueBytes = queueBytes
        self.usesAllVNets = usesAllVNets
        self.uniVNet = uniVNet
    }

    /// The first transmission of each distinct packet: its send time and size.
    struct StreamPacket {
        var t: Double
        var bytes: Int
        var vnets: Set<Int>
        var arrived = false
    }

    public func intervalsAndTotal() -> (intervals: [RunResult.Interval], total: RunResult.Interval) {
        var stream: [UInt32: StreamPacket] = [:]
        for packet in sent {
            var entry = stream[packet.streamSequence] ?? StreamPacket(t: packet.t, bytes: packet.bytes, vnets: [])
            entry.t = min(entry.t, packet.t)
            if !packet.copy { entry.vnets.insert(packet.vnet) }
            stream[packet.streamSequence] = entry
        }
        var arrivedPath = Set<UInt64>()
        for packet in received {
            stream[packet.streamSequence]?.arrived = true
            arrivedPath.insert(UInt64(packet.vnet) << 32 | UInt64(packet.pathSequence))
        }
        let count = max(1, Int((durationS / intervalS).rounded(.up)))
        func index(_ t: Double) -> Int { min(count - 1, max(0, Int(t / intervalS))) }
        let vnets = capacity.vnets
        var sentCount = Array(repeating: 0, count: count)
        var lostCount = sentCount
        var leavingCount = sentCount
        /// Whether a packet sent on `vnets` at `t` went onto a VNet within the leave allowance
        /// of its failure.
        func sentWhileLeaving(_ t: Double, _ vnets: Set<Int>) -> Bool {
            guard leaveAllowanceS > 0, !vnets.isEmpty else { return false }
            return vnets.allSatisfy { vnet in
                capacity.outages.contains { $0.vnet == vnet && t >= $0.fromS && t < min($0.fromS + leaveAllowanceS, $0.toS ?? .infinity) }
            }
        }
        var perSent = Array(repeating: Array(repeating: 0, count: vnets), count: count)
        var perCopies = perSent
        var perLost = perSent
        var perPathLost = perSent
        var perBytes = perSent
        for entry in stream.values {
            let i = index(entry.t)
            sentCount[i] += 1
            if !entry.arrived {
                lostCount[i] += 1
                if sentWhileLeaving(entry.t, entry.vnets) { leavingCount[i] += 1 }
                for vnet in entry.vnets where vnet >= 1 && vnet <= vnets { perLost[i][vnet - 1] += 1 }
            }
        }
        for packet in sent where packet.vnet >= 1 && packet.vnet <= vnets {
            let i = index(packet.t)
            perSent[i][packet.vnet - 1] += 1
            perBytes[i][packet.vnet - 1] += packet.bytes
            if packet.copy { perCopies[i][packet.vnet - 1] += 1 }
            if !arrivedPath.contains(UInt64(packet.vnet) << 32 | UInt64(packet.pathSequence)) { perPathLost[i][packet.vnet - 1] += 1 }
        }
        let bound = fluidBound(stream: stream.values.map { ($0.t, $0.bytes) }, intervals: count)
        var intervals: [RunResult.Interval] = []
        for i in 0..<count {
            let start = Double(i) * intervalS
            let end = min(durationS, start + intervalS)
            intervals.append(
                RunResult.Interval(
                    startS: round3(start), endS: round3(end), sent: sentCount[i], lost: lostCount[i],
                    lossPct: percent(Double(lostCount[i]), Double(sentCount[i])),
                    fluidBoundPct: percent(bound.lost[i], bound.offered[i]),
                    perVNet: (0..<vnets).map { v in
                        RunResult.VNetFigures(
                            vnet: v + 1, sent: perSent[i][v], copies: perCopies[i][v], lost: perLost[i][v],
                            lossPctOfAll: percent(Double(perLost[i][v]), Double(sentCount[i])), pathLost: perPathLost[i][v],
                            kbitS: round3(Double(perBytes[i][v]) * 8 / (end - start) / 1000))
                    }, lostLeaving: leavingCount[i]))
        }
        let totalSent = sentCount.reduce(0, +)
        let totalLost = lostCount.reduce(0, +)
        let total = RunResult.Interval(
            startS: 0, endS: round3(durationS), sent: totalSent, lost: totalLost,
            lossPct: percent(Double(totalLost), Double(totalSent)),
            fluidBoundPct: percent(bound.lost.reduce(0, +), bound.offered.reduce(0, +)),
            perVNet: (0..<vnets).map { v in
                let lost = (0..<count).map { perLost[$0][v] }.reduce(0, +)
                return RunResult.VNetFigures(
                    vnet: v + 1, sent: (0..<count).map { perSent[$0][v] }.reduce(0, +),
                    copies: (0..<count).map { perCopies[$0][v] }.reduce(0, +), lost: lost,
                    lossPctOfAll: percent(Double(lost), Double(totalSent)),
                    pathLost: (0..<count).map { perPathLost[$0][v] }.reduce(0, +),
                    kbitS: round3(Double((0..<count).map { perBytes[$0][v] }.reduce(0, +)) * 8 / durationS / 1000))
            }, lostLeaving: leavingCount.reduce(0, +))
        return (intervals, total)
    }

    /// The loss of a fluid FIFO fed the stream's packets (layer-2 bytes), drained at the
    /// capacity of the VNets the mode uses (their sum, for modes that split), with the queue
    /// those VNets' links have. No real queue of that size at that rate can lose less; for a
    /// constant offered rate r over a capacity c it is max(0, 1 - c/r) less what the queue
    /// absorbs.
    func fluidBound(stream: [(t: Double, bytes: Int)], intervals count: Int) -> (lost: [Double], offered: [Double]) {
        let used = usesAllVNets ? Array(1...capacity.vnets) : [uniVNet ?? 1]
        func rate(_ t: Double) -> Double { used.map { capacity.capacity(vnet: $0, at: t) }.reduce(0, +) }
        func buffer(_ t: Double) -> Double {
            used.map { vnet -> Double in
                let c = capacity.capacity(vnet: vnet, at: t)
                return c == 0 ? 0 : c.isFinite ? queueBytes(vnet, c) : .infinity
            }.reduce(0, +)
        }
        let breakpoints = capacity.breakpoints
        var lost = Array(repeating: 0.0, count: count)
        var offered = lost
        var queue = 0.0
        var last = 0.0
        let sorted = stream.sorted(by: { $0.t < $1.t })
        // The stream's rate around each packet (bytes within ±0.5 s), for the random loss a
        // loss-optimal placement of that rate cannot avoid.
        var windowStart = 0
        var windowEnd = 0
        var windowBytes = 0.0
        for packet in sorted {
            while windowEnd < sorted.count && sorted[windowEnd].t <= packet.t + 0.5 {
                windowBytes += Double(sorted[windowEnd].bytes + Self.linkOverheadBytes)
                windowEnd += 1
            }
            while sorted[windowStart].t < packet.t - 0.5 {
                windowBytes -= Double(sorted[windowStart].bytes + Self.linkOverheadBytes)
                windowStart += 1
            }
            // Drain from `last` to the packet's time, piece by piece.
            var from = last
            for point in breakpoints where point > from && point < packet.t {
                queue = max(0, queue - rate(from) * (point - from) / 8)
                from = point
            }
            queue = max(0, queue - rate(from) * (packet.t - from) / 8)
            last = max(last, packet.t)
            let size = Double(packet.bytes + Self.linkOverheadBytes)
            let i = min(count - 1, max(0, Int(packet.t / intervalS)))
            offered[i] += size
            let room = buffer(packet.t)
            var accepted = size
            if queue + size > room {
                lost[i] += queue + size - room
                accepted -= queue + size - room
                queue = room
            } else {
                queue += size
            }
            lost[i] += max(0, accepted) * randomLoss(at: packet.t, streamBitsPerSecond: windowBytes * 8, vnets: used)
        }
        return (lost, offered)
    }

    /// The share of a stream of this rate that random loss takes at `t` when the stream is
    /// placed loss-optimally over `vnets` (the cleanest filled to capacity first): what the
    /// fluid bound adds for random loss. With one VNet, its loss rate.
    func randomLoss(at t: Double, streamBitsPerSecond: Double, vnets: [Int]) -> Double {
        let placed = vnets.map { vnet in
            Placement.VNet(capacity: min(capacity.capacity(vnet: vnet, at: t), 1e12), cost: capacity.loss(vnet: vnet, at: t))
        }
        guard placed.contains(where: { $0.cost > 0 }), streamBitsPerSecond > 0 else { return 0 }
        let rates = Placement.rates(placed, stream: streamBitsPerSecond, headroom: 1, tierMargin: 0)
        let random = zip(placed, rates).map { vnet, rate in min(rate, vnet.capacity) * vnet.cost }.reduce(0, +)
        return random / streamBitsPerSecond
    }

    /// After every change of capacity (for modes that split): how long until the split stayed
    /// within the tolerance of capacity-proportional.
    public func shifts() -> [RunResult.Shift] {
        guard usesAllVNets else { return [] }
        let originals = (sent + load).filter { !$0.copy && !$0.localDrop && $0.vnet >= 1 && $0.vnet <= capacity.vnets }.sorted { $0.t < $1.t }
        // Running byte totals per VNet, so each window is two lookups, not a pass over the run.
        var running = [Array(repeating: 0.0, count: capacity.vnets)]
        for packet in originals {
            var next = running[running.count - 1]
            next[packet.vnet - 1] += Double(packet.bytes)
            running.append(next)
        }
        let times = originals.map(\.t)
        /// How many packets were sent before `t`.
        func count(before t: Double) -> Int {
            var low = 0
            var high = times.count
            while low < high {
                let middle = (low + high) / 2
                if times[middle] < t { low = middle + 1 } else { high = middle }
            }
            return low
        }
        let points = capacity.breakpoints.filter { $0 < durationS }
        var result: [RunResult.Shift] = []
        for (n, point) in points.enumerated() {
            // Judged until the next change began to be applied (it may act before its commands
            // have all returned: over ssh on a loaded machine, seconds before).
            let next = n + 1 < points.count ? max(point, capacity.beganS(points[n + 1])) : durationS
            guard next - point >= 0.2 else { continue }  // too short a condition to judge a split in
            let capacities = (1...capacity.vnets).map { capacity.capacity(vnet: $0, at: point + 1e-6) }
            guard capacities.allSatisfy(\.isFinite) else { continue }
            // Once a VNet has had random loss the right split is not capacity-proportional (the
            // cleanest VNets go first, and a VNet that lost stays behind until it is shown
            // clean); from then on the loss against the loss-aware bound judges the split.
            guard !capacity.losses.contains(where: { $0.tS <= point + 1e-6 && $0.lossPct > 0 }) else { continue }
            // So once a VNet has flapped.
            guard !capacity.outages.contains(where: { $0.fromS <= point + 1e-6 && flaps($0) }) else { continue }
            let total = capacities.reduce(0, +)
            guard total > 0 else { continue }
            let target = capacities.map { $0 / total * 100 }
            // Windows every 0.1 s from the change to the next one; a condition shorter than two
            // windows (a flapping path's 1 s outage) is judged in windows of half its length, so
            // that it is judged at all and the time before the split moved still counts.
            let length = min(Self.shareWindowS, max(0.2, (next - point) / 2))
            var windows: [(start: Double, ok: Bool)] = []
            var start = point
            while start + length <= next + 1e-9 {
                let (from, to) = (running[count(before: start)], running[count(before: start + length)])
                let bytes = zip(to, from).map { $0 - $1 }
                let sum = bytes.reduce(0, +)
                let ok = sum > 0 && zip(bytes, target).allSatisfy { abs($0 / sum * 100 - $1) <= Self.shareTolerancePct }
                windows.append((start, ok))
                start += 0.1
            }
            var settle: Double?
            if let lastBad = windows.lastIndex(where: { !$0.ok }) {
                if lastBad + 1 < windows.count { settle = windows[lastBad + 1].start - point }
            } else if !windows.isEmpty {
                settle = 0
            }
            result.append(
                RunResult.Shift(
                    atS: round3(point), capacitySharePct: target.map { ($0 * 10).rounded() / 10 }, settleS: settle.map(round3),
                    tolerancePct: Self.shareTolerancePct))
        }
        return result
    }

    /// Whether `outage` makes its VNet a flapping one: it began within `flapWindowS` of an
    /// earlier outage of the same VNet.
    func flaps(_ outage: CapacityTimeline.Outage) -> Bool {
        capacity.outages.contains { $0.vnet == outage.vnet && $0.fromS < outage.fromS && outage.fromS - $0.fromS <= Self.flapWindowS }
    }

    /// For every outage: when the split left the VNet, and when it came back after the reroute.
    /// Left: the last packet of the split on the VNet before it went quiet for a second or more,
    /// or half the outage when that is shorter (a flapping path's 1 s outages); the outage's whole
    /// length when it never did. Back: the first packet after that silence,
    /// from the reroute; the route is polled every 100 ms, so a sender that found the VNet again
    /// first reads 0.
    public func failovers() -> [RunResult.Failover] {
        capacity.outages.map { outage in
            let originals = sent.filter { !$0.copy && $0.vnet == outage.vnet && $0.t >= outage.fromS }.map(\.t).sorted()
            let end = outage.toS ?? durationS
            var last = outage.fromS
            var resumed: Double?
            let quiet = min(1, (end - outage.fromS) / 2)
            for t in originals {
                if t - last >= quiet {
                    resumed = t
                    break
                }
                last = t
                if t >= end { break }
            }
            let left = (min(last, end) - outage.fromS) * 1000
            let back = outage.toS.flatMap { to in resumed.map { max(0, $0 - to) } }
            return RunResult.Failover(
                vnet: outage.vnet, path: outage.path, failedS: round3(outage.fromS), reroutedS: outage.toS.map(round3),
                leftMs: round3(left), returnedAfterS: back.map(round3), flapping: flaps(outage) ? true : nil)
        }
    }

    public var streamBytes: Int {
        var seen = Set<UInt32>()
        var bytes = 0
        for packet in sent where seen.insert(packet.streamSequence).inserted { bytes += packet.bytes }
        return bytes
    }

    public var sentBytes: Int { sent.reduce(0) { $0 + $1.bytes } }
}
