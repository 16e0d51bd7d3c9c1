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

        enum CodingKeys: String, CodingKey, CaseIterable {
            case rate, assignable, router
        }

        public init(rate: String, assignable: String? = nil, router: String? = nil) {
            self.rate = rate
            self.assignable = assignable
            self.router = router
        }

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
            guard Topology.isNodeName(routerName) else { throw LabError("[access]: router name '\(routerName)' must be 1-8 letters, digits or '-'") }
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

extension LabPlan {
    /// The interfaces of the access link and the legacy link.
    public static let accessSenderInterface = "acc"
    public static let accessHostInterface = "host"
    public static let legacyInterface = "legacy"

    /// The access router's node, if the topology has `[access]`.
    public var accessRouter: String? { topology.access?.routerName }

    /// The link from the sender to the access router, and the legacy link from the access
    /// router to the receiver (nil without `[access]`).
    public var accessLink: PlannedLink? { extraLinks.first { $0.a.interface == Self.accessSenderInterface } }
    public var legacyLink: PlannedLink? { extraLinks.first { $0.a.interface == Self.legacyInterface } }

    /// Where the sender sends VNet `vnet`'s packets: its ingress, or with `[access]` the access router.
    public func senderNextHop(vnet: Int) -> IPv4Address {
        if let accessLink { return accessLink.bAddress }
        return links.first { $0.access && $0.vnet == vnet && $0.b.interface == Self.ingressInterface }!.bAddress
    }

    /// The access link's shaping at the sender (upstream) or at the access router (downstream)
    /// under `reservations` (by VNet name).
    public func accessShaping(atSender: Bool, reservations: [String: BitRate]) -> AccessShaping? {
        guard let access = topology.access, let rate = try? access.linkRate else { return nil }
        var byIndex: [Int: BitRate] = [:]
        for (index, vnet) in topology.vnets.enumerated() { if let r = reservations[vnet.name] { byIndex[index] = r } }
        return AccessShaping(
            interface: atSender ? Self.accessSenderInterface : Self.accessHostInterface, linkRate: rate, reservations: byIndex)
    }

    /// Routing at the access router: a VNet's packets, by their source (the sender's address
    /// in that VNet, which the tuns' packets carry) or by their class's DSCP (the sender's
    /// sockets), go to the VNet's ingress; the rest takes the legacy link. Empty without `[access]`.
    var accessRoutingCommands: [[String]] {
        guard let router = accessRouter, let accessLink, let legacyLink else { return [] }
        let ns = namespace(router)
        let sender = namespace(topology.sender)
        let receiver = namespace(topology.receiver)
        var commands: [[String]] = [
            // Wire-sized packets on the access link, as on a physical one: a socket's TCP sends
            // no 64 KB GSO packets, so a capture anywhere beyond counts what HTB counted.
            ["ip", "-n", sender, "link", "set", "dev", Self.accessSenderInterface, "gso_max_segs", "1"],
            ["ip", "-n", ns, "link", "set", "dev", Self.accessHostInterface, "gso_max_segs", "1"],
            ["ip", "-n", sender, "route", "add", receiverAddress.description, "via", accessLink.bAddress.description],
            ["ip", "-n", ns, "route", "add", receiverAddress.description, "via", legacyLink.bAddress.description],
            ["ip", "-n", receiver, "route", "add", "\(accessLink.aAddress)/32", "via", legacyLink.aAddress.description],
        ]
        for (index, _) in topology.vnets.enumerated() {
            let table = String(100 + index + 1)
            let ingress = links.first { $0.access && $0.vnet == index && $0.b.interface == Self.ingressInterface }!
            commands.append(["ip", "-n", ns, "route", "add", senderPrefix(vnet: index), "via", accessLink.aAddress.description])
            commands.append(["ip", "-n", ns, "route", "add", receiverAddress.description, "via", ingress.bAddress.description, "table", table])
            // The source first: a tun's packet stays on the VNet the sender chose, whatever its DSCP.
            commands.append(["ip", "-n", ns, "rule", "add", "from", senderPrefix(vnet: index), "lookup", table, "pref", String(800 + index)])
            if topology.classes.contains(where: { $0.vnet == topology.vnets[index].name }) {
                commands.append(
                    ["ip", "-n", ns, "rule", "add", "fwmark", String(Self.classMark(vnet: index)), "lookup", table, "pref",
                     String(Self.classRulePreference(vnet: index))])
            }
        }
        return commands
    }

    /// nftables (`nft -f` input) for one end of the access link: the HTB class of each packet
    /// by its VNet (`meta priority`, which HTB reads before any filter), with a counter each.
    /// At the sender: a tun's packets by the tun; its sockets' packets by their class's mark.
    /// At the access router: packets toward the sender by the VNet they come from, and the
    /// classes' marks by DSCP for the routing above. Unmatched packets are legacy.
    public func accessRules(atSender: Bool) -> String? {
        guard topology.access != nil else { return nil }
        let out = atSender ? Self.accessSenderInterface : Self.accessHostInterface
        var forward: [String] = []
        var post: [String] = []
        var counted: [String] = []
        var pre: [String] = []
        let reserved = topology.reservations
        for (index, vnet) in topology.vnets.enumerated() where reserved[vnet.name] != nil {
            let id = AccessShaping.classID(vnet: index)
            let input = atSender ? vnet.tun : "vnet\(index + 1)"
            forward.append(#"iifname "\#(input)" oifname "\#(out)" meta priority set \#(id)"#)
            if atSender, topology.classes.contains(where: { $0.vnet == vnet.name }) {
                post.append(#"oifname "\#(out)" meta mark \#(Self.classMark(vnet: index)) meta priority set \#(id)"#)
            }
            counted.append(#"oifname "\#(out)" meta priority \#(id) counter accept comment "VNet \#(vnet.name)""#)
        }
        // What no rule put into a reservation's class is legacy traffic.
        counted.append(#"oifname "\#(out)" counter comment "legacy""#)
        if !atSender {
            for cls in topology.classes {
                guard let index = topology.vnets.firstIndex(where: { $0.name == cls.vnet }), let mark = try? cls.mark else { continue }
                pre.append(#"iifname "\#(Self.accessHostInterface)" ip daddr \#(receiverAddress) ip dscp \#(mark.dscp) counter meta mark set \#(Self.classMark(vnet: index)) comment "\#(cls.name)""#)
            }
        }
        // One rule per line, no semicolons: nft 1.0.6 cannot parse a class id (`1:10`) before a `;`.
        func chain(_ name: String, _ hook: String, _ rules: [String]) -> String {
            "  chain \(name) {\n    type filter hook \(hook);\n" + rules.map { "    " + $0 + "\n" }.joined() + "  }\n"
        }
        var text = "table ip vnetaccess {\n"
        if !forward.isEmpty { text += chain("through", "forward priority 0", forward) }
        text += chain("post", "postrouting priority 0", post + counted)
        if !pre.isEmpty { text += chain("pre", "prerouting priority mangle", pre) }
        return text + "}\n"
    }
}

extension LabPlan {
    /// The commands that take the access link from `current` reservations (by VNet name) to
    /// `next`, at both ends at once, after admission: one `tc -batch` per end, classes changed
    /// in place.
    public func reservationCommands(from current: [String: BitRate], to next: [String: BitRate]) throws -> [(argv: [String], input: String?)] {
        guard let access = topology.access, let router = accessRouter else {
            throw LabError("\(topology.name) has no [access] section: there is no access link to reserve on")
        }
        let names = topology.vnets.map(\.name)
        for vnet in next.keys where !names.contains(vnet) {
            throw LabError("no VNet '\(vnet)' in \(topology.name) (\(names.joined(separator: ", ")))")
        }
        try access.admit(names.compactMap { name in next[name].map { (name, $0) } })
        var commands: [(argv: [String], input: String?)] = []
        for (node, atSender) in [(topology.sender, true), (router, false)] {
            guard let before = accessShaping(atSender: atSender, reservations: current),
                let after = accessShaping(atSender: atSender, reservations: next)
            else { continue }
            let lines = before.changeLines(to: after.reservations)
            commands.append((["tc", "-n", namespace(node), "-batch", "-"], lines.joined(separator: "\n") + "\n"))
        }
        return commands
    }
}
