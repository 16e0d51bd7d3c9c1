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
        /// After a reroute, when the ingress routed over the path again once it came back: the
        /// VNet's path changed, so its split is judged afresh from then (nil: not seen).
        public var returnedS: Double?

        public init(vnet: Int, path: String, fromS: Double, toS: Double?, rerouted: Bool, returnedS: Double? = nil) {
            self.vnet = vnet
            self.path = path
            self.fromS = fromS
            self.toS = toS
            self.rerouted = rerouted
            self.returnedS = returnedS
        }

        enum CodingKeys: String, CodingKey {
            case vnet, path, rerouted
            case fromS = "from_s"
            case toS = "to_s"
            case returnedS = "returned_s"
        }
    }

    /// A VNet's random loss from some moment on: what its primary path's links lose together
    /// (1 - Π (1 - p) over them, one direction).
    public struct LossStep: Codable, Sendable, Equatable {
        public var tS: Double
        public var vnet: Int
        public var lossPct: Double

        enum CodingKeys: String, CodingKey {
            case vnet
            case tS = "t_s"
            case lossPct = "loss_pct"
        }
    }

    public var vnets: Int
    public var steps: [Step]
    public var outages: [Outage]
    public var losses: [LossStep]
    /// When each batch of schedule events began to be applied, by the time it was in place
    /// (its steps' and outages' times): between the two the change may already act, and over
    /// ssh on a loaded machine that can be seconds.
    public var began: [Double: Double]

    public init(vnets: Int, steps: [Step], outages: [Outage], losses: [LossStep] = [], began: [Double: Double] = [:]) {
        self.vnets = vnets
        self.steps = steps.sorted { $0.tS < $1.tS }
        self.outages = outages
        self.losses = losses.sorted { $0.tS < $1.tS }
        self.began = began
    }

    enum CodingKeys: String, CodingKey {
        case vnets, steps, outages, losses
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            vnets: try c.decode(Int.self, forKey: .vnets), steps: try c.decode([Step].self, forKey: .steps),
            outages: try c.decode([Outage].self, forKey: .outages), losses: try c.decodeIfPresent([LossStep].self, forKey: .losses) ?? [])
    }

    /// When the change in place at `t` began to be applied (`t` itself when not known).
    public func beganS(_ t: Double) -> Double { min(t, began[t] ?? t) }

    /// VNet `vnet`'s random loss rate at `t`, 0 to 1.
    public func loss(vnet: Int, at t: Double) -> Double {
        var rate = 0.0
        for step in losses where step.vnet == vnet && step.tS <= t { rate = step.lossPct / 100 }
        return rate
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
        Array(Set(steps.map(\.tS) + losses.map(\.tS) + outages.flatMap { [$0.fromS] + [$0.toS, $0.returnedS].compactMap { $0 } })).sorted()
    }

    /// The timeline of one schedule as applied: rate events on whole VNets (applied times from
    /// the player's log, by event index), and the outages the route watch saw.
    public static func from(
        schedule: Schedule, applied: [SchedulePlayer.Applied], topology: Topology, outages: [Outage]
    ) -> CapacityTimeline {
        var steps: [Step] = []
        var losses: [LossStep] = []
        // Each link's random loss now (by its first endpoint), to compose a VNet's primary path.
        var linkLoss: [String: Double] = [:]
        for vnet in topology.vnets { for link in vnet.links { linkLoss[link.endpoints[0]] = (link.lossPct ?? 0) / 100 } }
        func primaryLoss(_ vnet: Topology.VNet) -> Double {
            let path = Self.primaryPath(of: vnet)
            let links = vnet.links.filter { $0.path == path || path == nil }
            return 1 - links.map { 1 - (linkLoss[$0.endpoints[0]] ?? 0) }.reduce(1, *)
        }
        for (index, vnet) in topology.vnets.enumerated() where primaryLoss(vnet) > 0 {
            losses.append(LossStep(tS: 0, vnet: index + 1, lossPct: primaryLoss(vnet) * 100))
        }
        for record in applied {
            let event = schedule.events[record.index - 1]
            guard case .shape(let shape) = event.change else { continue }
            if let loss = shape.lossPct {
                let before = topology.vnets.map(primaryLoss)
                for vnet in topology.vnets {
                    for link in vnet.links where Self.names(link, in: vnet, event.target) { linkLoss[link.endpoints[0]] = loss / 100 }
                }
                for (index, vnet) in topology.vnets.enumerated() where primaryLoss(vnet) != before[index] {
                    losses.append(LossStep(tS: record.appliedS, vnet: index + 1, lossPct: primaryLoss(vnet) * 100))
                }
            }
            guard case .vnet(let name) = event.target, let rate = shape.rate,
                let index = topology.vnets.firstIndex(where: { $0.name == name })
            else { continue }
            steps.append(Step(tS: record.appliedS, vnet: index + 1, kbitS: rate.bitsPerSecond / 1000))
        }
        var began: [Double: Double] = [:]
        for record in applied { began[record.appliedS] = min(began[record.appliedS] ?? record.startedS, record.startedS) }
        // An outage's time is its blackhole's applied time, or when routing saw it.
        for outage in outages { if let record = applied.first(where: { abs($0.appliedS - outage.fromS) < 1e-9 }) { began[outage.fromS] = record.startedS } }
        return CapacityTimeline(vnets: topology.vnets.count, steps: steps, outages: outages, losses: losses, began: began)
    }

    /// The path OSPF prefers in a VNet: the one whose links cost least in all (nil when its
    /// links name no paths).
    static func primaryPath(of vnet: Topology.VNet) -> String? {
        var costs: [String: Int] = [:]
        for link in vnet.links { if let path = link.path { costs[path, default: 0] += link.cost } }
        return costs.min { $0.value < $1.value || ($0.value == $1.value && $0.key < $1.key) }?.key
    }

    /// Whether an event's target takes in this link of this VNet.
    static func names(_ link: Topology.Link, in vnet: Topology.VNet, _ target: Schedule.Event.Target) -> Bool {
        switch target {
        case .vnet(let name): vnet.name == name
        case .path(let path): link.path == path
        case .link(let end): link.endpoints.contains(end)
        }
    }
}
