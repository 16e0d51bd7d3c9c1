import Foundation
import Lab
import Pacing
import RunRecords

/// Watches, for every path that fails in a schedule, when the VNet's ingress stops routing
/// through it, and after a reroute when it routes through it again once the path is back: its
/// route to the receiver, polled every 100 ms. Each failure is logged as a JSON line.
struct RouteWatch {
    let lab: Lab
    let schedule: Schedule
    /// The run's time zero on CLOCK_MONOTONIC.
    let start: UInt64
    let durationS: Double

    /// One failure as the watch saw it (a line of `routes.jsonl`).
    struct Record: Codable {
        var kind = "route"
        var path: String
        var vnet: Int
        var ingress: String
        var hopBefore: String
        var failedAtS: Double
        var reroutedS: Double?
        /// When the route went back over the path after it came back.
        var returnedS: Double?

        enum CodingKeys: String, CodingKey {
            case kind, path, vnet, ingress
            case hopBefore = "hop_before"
            case failedAtS = "failed_at_s"
            case reroutedS = "rerouted_s"
            case returnedS = "returned_s"
        }
    }

    func watch(log path: String) -> [(index: Int, outage: CapacityTimeline.Outage)] {
        let log = try? LineFile(path: path)
        defer { log?.close() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var found: [(Int, CapacityTimeline.Outage)] = []
        let topology = lab.plan.topology
        let receiver = topology.receiverAddress
        for (index, event) in schedule.events.enumerated() {
            guard let path = event.failedPath else { continue }
            let links = lab.plan.transitLinks.filter { $0.path == path }
            guard let vnetIndex = links.first?.vnet else { continue }
            let ingress = topology.vnets[vnetIndex].ingress
            let pathNodes = Set(links.flatMap { [$0.a.node, $0.b.node] }).subtracting([ingress, topology.vnets[vnetIndex].egress])
            let upAt = schedule.events.first { $0.target == .path(path) && $0.change == .up && $0.atS > event.atS }?.atS
            let eventTime = start + UInt64(event.atS * 1e9)
            Pacer.wait(until: eventTime > 500_000_000 ? eventTime - 500_000_000 : 0)
            guard let before = lab.nextHop(node: ingress, to: receiver), let neighbour = lab.neighbour(of: ingress, at: before),
                pathNodes.contains(neighbour)
            else { continue }  // the VNet was not routing over this path
            Pacer.wait(until: eventTime)
            var changed: Double?
            let limit = start + UInt64(min(durationS, (upAt ?? durationS) + 5) * 1e9)
            while MonotonicClock.now() < limit {
                let hop = lab.nextHop(node: ingress, to: receiver)
                if hop != nil && hop != before {
                    changed = Double(MonotonicClock.now() - start) / 1e9
                    break
                }
                if (try? Lab.checkInterrupted()) == nil { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            // After a reroute, the route's return over the path once it is up, watched until the
            // next failure of the schedule (so that one watch never delays the next).
            var returned: Double?
            if changed != nil, let upAt {
                let nextFailure = schedule.events.dropFirst(index + 1).first { $0.failedPath != nil && $0.atS > upAt }?.atS ?? durationS
                Pacer.wait(until: start + UInt64(upAt * 1e9))
                let until = start + UInt64(max(upAt, min(durationS, nextFailure - 0.5)) * 1e9)
                while MonotonicClock.now() < until {
                    if lab.nextHop(node: ingress, to: receiver) == before {
                        returned = Double(MonotonicClock.now() - start) / 1e9
                        break
                    }
                    if (try? Lab.checkInterrupted()) == nil { break }
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            let end = changed ?? upAt
            found.append(
                (index, CapacityTimeline.Outage(
                    vnet: vnetIndex + 1, path: path, fromS: event.atS, toS: end.map(round3), rerouted: changed != nil, returnedS: returned.map(round3))))
            let record = Record(
                path: path, vnet: vnetIndex + 1, ingress: ingress, hopBefore: before, failedAtS: event.atS, reroutedS: changed.map(round3),
                returnedS: returned.map(round3))
            if let data = try? encoder.encode(record) { log?.write(String(decoding: data, as: UTF8.self)) }
        }
        return found
    }
}
