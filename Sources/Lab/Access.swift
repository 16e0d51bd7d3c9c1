import Foundation
import Packets
import Units

/// Provisioned access (the diversified-Internet access paper): the sender reaches every VNet
/// over one access link to a substrate access router, and each VNet with a reservation gets a
/// metalink on it, a fixed rate isolated from the other VNets and from legacy IP traffic, in
/// both directions. Legacy traffic (the sender's own sockets, matching no class) takes a
/// legacy link from the access router straight to the receiver, and on the access link gets
/// what the reservations leave, borrowing up to the link's rate.
///
/// Laid out as: sender `acc` -- `host` access router, access router `vnetN` -- VNet N's ingress
/// `snd`, access router `legacy` -- receiver `legacy`.
extension Topology {
    public struct Access: Codable, Sendable, Equatable {
        /// The access link's rate, both directions.
        public var rate: String
        /// The most the reservations may add up to (default: half the link's rate, the
        /// paper's rule of thumb); less than the rate, so that legacy traffic keeps some.
        public var assignable: String?
        /// The access router's node name.
        public var router: String?
        /// A switch in front of the receiver whose link to it every VNet and legacy traffic
        /// share (the paper's Fig. 3b): its rate. nil: each VNet reaches the receiver on its own.
        public var bottleneck: String?
        /// The switch's node name.
        public var bottleneckRouter: String?
        /// Other hosts, each with a link into the switch, for legacy traffic from elsewhere.
        public var legacyHosts: [String]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case rate, assignable, router, bottleneck
            case bottleneckRouter = "bottleneck_router"
            case legacyHosts = "legacy_hosts"
        }

        public init(
            rate: String, assignable: String? = nil, router: String? = nil, bottleneck: String? = nil, bottleneckRouter: String? = nil,
            legacyHosts: [String]? = nil
        ) {
            self.rate = rate
            self.assignable = assignable
            self.router = router
            self.bottleneck = bottleneck
            self.bottleneckRouter = bottleneckRouter
            self.legacyHosts = legacyHosts
        }

        public var bottleneckRate: BitRate? { get throws { try bottleneck.map(BitRate.init(parsing:)) } }
        /// The switch's node name, if there is a bottleneck.
        public var switchName: String? { bottleneck == nil ? nil : bottleneckRouter ?? "switch" }
        /// Every node `[access]` adds, in the order they are built.
        public var nodes: [String] { [routerName] + (switchName.map { [$0] } ?? []) + (legacyHosts ?? []) }

        public var linkRate: BitRate { get throws { try BitRate(parsing: rate) } }
        public var assignableRate: BitRate {
            get throws { try assignable.map(BitRate.init(parsing:)) ?? BitRate(bitsPerSecond: try linkRate.bitsPerSecond / 2) }
        }
        public var routerName: String { router ?? "access" }

        /// Refuses reservations (VNet name, rate, in the topology's order) that add up to more
        /// than the assignable capacity, naming the VNets and the sum: one line.
        public func admit(_ reservations: [(vnet: String, rate: BitRate)]) throws {
            let assignable = try assignableRate
            let sum = reservations.reduce(0) { $0 + $1.rate.bitsPerSecond }
            guard sum <= assignable.bitsPerSecond * (1 + 1e-9) else {
                let terms = reservations.map { "\($0.vnet) \($0.rate)" }.joined(separator: " + ")
                throw LabError(
                    "reservations exceed the access link's assignable capacity: \(terms) = \(BitRate(bitsPerSecond: sum)) > \(assignable)")
            }
        }

        func validate(vnets: [VNet], classes: [TrafficClass], defaultVNet: String?) throws {
            let link: BitRate
            let assignable: BitRate
            do {
                link = try linkRate
                assignable = try assignableRate
            } catch { throw LabError("[access]: \(error)") }
            guard assignable.bitsPerSecond > 0, assignable < link else {
                throw LabError("[access]: assignable (\(assignable)) must be positive and below the link's rate (\(link)): legacy traffic keeps the rest")
            }
            for node in nodes where !Topology.isNodeName(node) {
                throw LabError("[access]: node name '\(node)' must be 1-8 letters, digits or '-'")
            }
            if let text = bottleneck {
                let rate: BitRate
                do { rate = try BitRate(parsing: text) } catch { throw LabError("[access]: bottleneck: \(error)") }
                guard assignable < rate else {
                    throw LabError("[access]: assignable (\(assignable)) must be below the bottleneck's rate (\(rate)): legacy traffic keeps the rest")
                }
            } else if !(legacyHosts ?? []).isEmpty {
                throw LabError("[access]: legacy_hosts send into the bottleneck switch: give the bottleneck's rate")
            }
            if defaultVNet != nil {
                throw LabError("[access]: traffic that matches no class is legacy traffic and takes the legacy link; leave out default_vnet")
            }
            var reservations: [(vnet: String, rate: BitRate)] = []
            for vnet in vnets {
                guard let text = vnet.reserve else { continue }
                let rate: BitRate
                do { rate = try BitRate(parsing: text) } catch { throw LabError("VNet \(vnet.name): reserve: \(error)") }
                guard rate.bitsPerSecond > 0 else { throw LabError("VNet \(vnet.name): reserve must be positive") }
                reservations.append((vnet.name, rate))
            }
            try admit(reservations)
        }
    }

    /// Each VNet's reservation at lab up, by VNet name (VNets without one are absent).
    public var reservations: [String: BitRate] {
        var rates: [String: BitRate] = [:]
        for vnet in vnets { if let text = vnet.reserve, let rate = try? BitRate(parsing: text) { rates[vnet.name] = rate } }
        return rates
    }
}

/// HTB on one end of the access link: a root class at the link's rate, one class per reserved
/// VNet at rate = ceil = its reservation (strict priority 0), and the legacy class (the
/// default) at what the reservations leave, borrowing up to the link's rate (priority 1).
/// Everything is `replace` or `change` on fixed handles, so a reservation changes in place:
/// no qdisc is deleted, no queue is flushed.
public struct AccessShaping: Equatable, Sendable {
    public var interface: String
    public var linkRate: BitRate
    /// Reservations by VNet index.
    public var reservations: [Int: BitRate]

    public init(interface: String, linkRate: BitRate, reservations: [Int: BitRate]) {
        self.interface = interface
        self.linkRate = linkRate
        self.reservations = reservations
    }

    /// The HTB class of VNet `vnet`'s reservation, `1:10` for the first (minor ids are hex).
    public static func classID(vnet: Int) -> String { "1:" + String(0x10 + vnet, radix: 16) }
    public static let legacyClassID = "1:ff"

    var legacyRate: BitRate {
        BitRate(bitsPerSecond: linkRate.bitsPerSecond - reservations.values.reduce(0) { $0 + $1.bitsPerSecond })
    }

    /// Each class's bytes per round: what it may send before HTB turns to its sibling. HTB's
    /// own default (rate / 10) is over its 200000 B limit at these rates.
    static func quantum(_ rate: BitRate) -> Int { min(200_000, max(1514, Int(rate.bitsPerSecond / 8 / 10))) }

    static func bits(_ rate: BitRate) -> String { "\(Int(rate.bitsPerSecond.rounded()))bit" }

    /// The bytes a class may send at once after HTB ran late: 200 ms at `rate`. tc's default
    /// is about one MTU, so a timer late by more than a packet's time (0.13 ms at 100 Mbit/s; a
    /// shared VM's timers are often later) lost that capacity for good: greedy flows got
    /// 2-15 % less than their reservations in some 1 s bins. With 10 or 50 ms, stalls of the
    /// whole machine (100-125 ms of nothing, seen here with `stress-ng --cpu 1` beside) still
    /// cost up to 4.5 % of a bin. A backlogged class never saves tokens, so the burst only
    /// makes up for lost time; after an idle spell a class may send this much at once.
    static let burstS = 0.200
    static func burst(_ rate: BitRate) -> Int { max(3200, Int(rate.bitsPerSecond / 8 * burstS)) }

    func classLine(_ verb: String, id: String, rate: BitRate, ceil: BitRate, prio: Int) -> String {
        "class \(verb) dev \(interface) parent 1:1 classid \(id) htb rate \(Self.bits(rate)) ceil \(Self.bits(ceil)) "
            + "burst \(Self.burst(rate)) cburst \(Self.burst(ceil)) prio \(prio) quantum \(Self.quantum(rate))"
    }

    /// `tc -batch` lines that build it.
    public var tcLines: [String] {
        var lines = [
            "qdisc replace dev \(interface) root handle 1: htb default ff",
            "class replace dev \(interface) parent 1: classid 1:1 htb rate \(Self.bits(linkRate)) ceil \(Self.bits(linkRate)) "
                + "burst \(Self.burst(linkRate)) cburst \(Self.burst(linkRate)) quantum \(Self.quantum(linkRate))",
        ]
        for (vnet, rate) in reservations.sorted(by: { $0.key < $1.key }) {
            lines.append(classLine("replace", id: Self.classID(vnet: vnet), rate: rate, ceil: rate, prio: 0))
        }
        lines.append(classLine("replace", id: Self.legacyClassID, rate: legacyRate, ceil: linkRate, prio: 1))
        return lines
    }

    /// `tc -batch` lines that take it to `next` reservations in place: `class change` for a
    /// reservation that changes and for the legacy class, `class add` for a new one. A
    /// reservation taken away keeps its class at the smallest rate HTB takes, so that nothing
    /// queued in it is lost (its traffic is classified as legacy from then on).
    public func changeLines(to next: [Int: BitRate]) -> [String] {
        var after = AccessShaping(interface: interface, linkRate: linkRate, reservations: next)
        var lines: [String] = []
        // A shrinking reservation first, then the growing ones, then legacy: the classes'
        // rates never add up to more than the link in between.
        let order = next.keys.sorted { (next[$0]!.bitsPerSecond - (reservations[$0]?.bitsPerSecond ?? 0)) < (next[$1]!.bitsPerSecond - (reservations[$1]?.bitsPerSecond ?? 0)) }
        for vnet in order where next[vnet] != reservations[vnet] {
            let rate = next[vnet]!
            lines.append(classLine(reservations[vnet] == nil ? "add" : "change", id: Self.classID(vnet: vnet), rate: rate, ceil: rate, prio: 0))
        }
        for vnet in reservations.keys.sorted() where next[vnet] == nil {
            let floor = BitRate(bitsPerSecond: 8)
            lines.append(classLine("change", id: Self.classID(vnet: vnet), rate: floor, ceil: floor, prio: 0))
        }
        after.reservations = next
        lines.append(after.classLine("change", id: Self.legacyClassID, rate: after.legacyRate, ceil: linkRate, prio: 1))
        return lines
    }
}
