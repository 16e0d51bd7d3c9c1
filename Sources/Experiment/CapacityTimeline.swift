import Foundation
import Lab
import Units

/// What each VNet could carry over a run, from the schedule as it was applied and the routing
/// outages the lab observed: the input of the fluid bound and of the split's target.
///
/// A VNet's capacity is the rate its rate events set (every link of the VNet alike, as in the
/// paper's Table II), and zero while its route to the receiver runs over a failed path: from
/// the failure until routing moved to another path (measured, not assumed: OSPF's dead timer
/// and hello phase decide it).
public struct CapacityTimeline: Codable, Sendable, Equatable {
    public struct Step: Codable, Sendable, Equatable {
        public var tS: Double
        public var vnet: Int
        public var kbitS: Double

        enum CodingKeys: String, CodingKey {
            case vnet
            case tS = "t_s"
            case kbitS = "kbit_s"
        }
    }

    public struct Outage: Codable, Sendable, Equatable {
        public var vnet: Int
        public var path: String
        /// When the failure was in place.
        public var fromS: Double
        /// When the VNet's ingress routed around it (or the path came back, if routing never
        /// moved), nil if neither happened before the run ended.
        public var toS: Double?
        /// Whether routing moved to another path (false: the outage ended with the path coming back).
        public var rerouted: Bool

        enum CodingKeys: String, CodingKey {
            case vnet, path, rerouted
            case fromS = "from_s"
            case toS = "to_s"
        }
    }

    public var vnets: Int
    public var steps: [Step]
    public var outages: [Outage]

    public init(vnets: Int, steps: [Step], outages: [Outage]) {
        self.vnets = vnets
        self.steps = steps.sorted { $0.tS < $1.tS }
        self.outages = outages
    }

    /// Bits per second VNet `vnet` (1-based) carries at `t`; infinity before any rate is set.
    public func capacity(vnet: Int, at t: Double) -> Double {
        for outage in outages where outage.vnet == vnet && t >= outage.fromS && t < (outage.toS ?? .infinity) { return 0 }
        var rate = Double.infinity
        for step in steps where step.vnet == vnet && step.tS <= t { rate = step.kbitS * 1000 }
        return rate
    }

    /// Every moment a capacity changes, in order.
    public var breakpoints: [Double] {
        Array(Set(steps.map(\.tS) + outages.flatMap { [$0.fromS] + ($0.toS.map { [$0] } ?? []) })).sorted()
    }

    /// The timeline of one schedule as applied: rate events on whole VNets (applied times from
    /// the player's log, by event index), and the outages the route watch saw.
    public static func from(
        schedule: Schedule, applied: [SchedulePlayer.Applied], topology: Topology, outages: [Outage]
    ) -> CapacityTimeline {
        var steps: [Step] = []
        for record in applied {
            let event = schedule.events[record.index - 1]
            guard case .vnet(let name) = event.target, case .shape(let shape) = event.change, let rate = shape.rate,
                let index = topology.vnets.firstIndex(where: { $0.name == name })
            else { continue }
            steps.append(Step(tS: record.appliedS, vnet: index + 1, kbitS: rate.bitsPerSecond / 1000))
        }
        return CapacityTimeline(vnets: topology.vnets.count, steps: steps, outages: outages)
    }
}
