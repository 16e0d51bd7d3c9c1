/// Liveness: when a VNet counts as dead (Docs/controller.md, "Liveness").
///
/// Reports travel back over every VNet and the first copy counts, so the freshest report comes
/// over whichever VNet is quickest. Two conditions, both judged at the report's own time:
/// - **Overdue**: the VNet's oldest packet the report does not cover was sent longer ago than
///   `max(stallMinimumMs, lag mean + 4 lag deviations)`, the lag being how old that oldest
///   packet normally is at a report while the VNet works (one-way delay, queueing).
/// - **Quiet**: nothing arrived on the VNet for longer than `max(stallIdleMinimumMs,
///   stallPacketTimes x its packet time)`. The receiver reports both: how long the VNet has
///   been idle, and its packet time (the arrival gap of packets sent back to back, the
///   bottleneck's time per packet). A slow VNet (its capacity dropped to a third, say) still
///   delivers a packet every packet time, however long its queue makes the lag; a dead one
///   delivers nothing, and its quiet grows past any packet time.
/// The stall threshold thus follows the VNet's packet time as the receiver sees it, and the
/// report period only sets how soon a report shows the stall. On a lossy VNet (random loss,
/// `RandomLoss.swift`) the two oldest uncovered packets must both be overdue: one of them may
/// just be lost.
extension AdaptiveController {
    /// The report's time on the sender's clock. The offset (arrival minus report time) is the
    /// smallest seen, allowed to creep up by 100 ppm of the time since it was set (clocks drift).
    mutating func mapReportTime(_ reportTime: UInt64, arrival: UInt64) -> UInt64 {
        let sample = Int64(bitPattern: arrival) &- Int64(bitPattern: reportTime)
        if let offset = reportClockOffset {
            let drift = Int64(Double(arrival &- reportClockOffsetTime) * 1e-4)
            reportClockOffset = min(offset &+ max(0, drift), sample)
        } else {
            reportClockOffset = sample
        }
        reportClockOffsetTime = arrival
        let mapped = Int64(bitPattern: reportTime) &+ reportClockOffset!
        return UInt64(max(0, min(mapped, Int64(bitPattern: arrival))))
    }

    /// The overdue threshold for a VNet, milliseconds.
    func overdueThresholdMs(_ path: Path) -> Double {
        let learnt = path.lagSamples >= 5 ? (path.lagMean + 4 * path.lagDeviation) / 1e6 : 0
        return min(parameters.stallMaximumMs, max(parameters.stallMinimumMs, learnt))
    }

    /// The quiet threshold for a VNet, milliseconds.
    func quietThresholdMs(_ path: Path) -> Double {
        min(parameters.stallMaximumMs, max(parameters.stallIdleMinimumMs, parameters.stallPacketTimes * Double(path.packetTime) / 1e6))
    }

    mutating func checkStalls(now: UInt64) {
        guard let arrival = lastReportArrival, let reportAt = lastReportAt, now &- arrival <= nanoseconds(reportFreshnessSeconds)
        else { return }
        var changed = false
        for index in paths.indices where paths[index].outages.settle(at: now) {
            paths[index].flapCost = 0
            events.append(ControlEvent(kind: .steady, vnet: index, detail: "no outage for a while (\(paths[index].outages.outages) in all)"))
            changed = true
        }
        for index in paths.indices where !paths[index].dead {
            let path = paths[index]
            guard path.highestReported < path.sent, let oldest = path.sendTime(of: path.highestReported), reportAt > oldest else { continue }
            let threshold = overdueThresholdMs(path)
            let overdue = Double(reportAt - oldest) / 1e6
            guard overdue > threshold else { continue }
            // On a lossy VNet a random loss of the last packet sent leaves it uncovered until the
            // next one, and a lossy VNet carries little (probe trains, overflow), so that may be
            // long: there the packet after it must be overdue too. (Five false dead declarations
            // in one random-loss run, each on the lossy VNet between its trains.)
            if path.lossy {
                guard path.sent > path.highestReported &+ 1, let next = path.sendTime(of: path.highestReported &+ 1), reportAt > next,
                    Double(reportAt - next) / 1e6 > threshold
                else { continue }
            }
            // Nothing arrived yet, or a report without the figure: overdue alone decides.
            let quiet = path.idle.map { Double($0) / 1e6 }
            let quietThreshold = quietThresholdMs(path)
            if let quiet, quiet <= quietThreshold { continue }
            paths[index].dead = true
            paths[index].sentAtDeath = path.sent
            paths[index].nextDeadProbe = now
            let quietText = quiet.map { ", quiet \(Int($0)) ms (threshold \(Int(quietThreshold)) ms)" } ?? ""
            events.append(
                ControlEvent(kind: .dead, vnet: index, detail: "stalled \(Int(overdue)) ms (threshold \(Int(threshold)) ms)\(quietText)"))
            changed = true
            // An outage costs what was sent into it before this moment: about the overdue time.
            let started = paths[index].outages.outage(at: now)
            if paths[index].outages.flapping {
                paths[index].flapCost = paths[index].outages.cost(at: now, outageSeconds: overdue / 1000)
            }
            if started {
                events.append(
                    ControlEvent(
                        kind: .flapping, vnet: index,
                        detail: "\(paths[index].outages.outages) outages, about \(Self.percent(paths[index].outages.rate(at: now) / 100)) a second: charged \(Self.percent(paths[index].flapCost)) %"))
            }
        }
        if changed { recomputeWeights() }
    }
}
