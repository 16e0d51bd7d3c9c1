import Foundation
import Packets
import Units

/// Where a topology with `[access]` shapes by reservation: the sender's egress onto the access
/// link (upstream), the access router's egress back onto it (downstream), and, with a
/// bottleneck, the switch's egress onto its link to the receiver.
public enum AccessEnd: String, CaseIterable, Sendable, Codable {
    case sender, router, bottleneck
}

extension LabPlan {
    /// The interfaces `[access]` adds: the access link's ends, the legacy link's, the
    /// bottleneck link's (switch `rcv`, receiver `switch`) and a legacy host's (`up`).
    public static let accessSenderInterface = "acc"
    public static let accessHostInterface = "host"
    public static let legacyInterface = "legacy"
    public static let bottleneckInterface = "rcv"
    public static let receiverSwitchInterface = "switch"
    public static let legacyHostInterface = "up"

    /// The access router's node, if the topology has `[access]`.
    public var accessRouter: String? { topology.access?.routerName }
    /// The bottleneck switch's node, if there is one.
    public var bottleneckSwitch: String? { topology.access?.switchName }

    /// The link from the sender to the access router; the legacy link from the access router
    /// to the receiver (or the switch); the switch's link to the receiver (nil without them).
    public var accessLink: PlannedLink? { extraLinks.first { $0.a.interface == Self.accessSenderInterface } }
    public var legacyLink: PlannedLink? { extraLinks.first { $0.a.interface == Self.legacyInterface } }
    public var bottleneckLink: PlannedLink? { extraLinks.first { $0.a.interface == Self.bottleneckInterface } }
    /// A legacy host's link into the switch.
    public func legacyHostLink(_ host: String) -> PlannedLink? { extraLinks.first { $0.a.node == host } }

    /// The links `[access]` adds after every VNet's (so that the VNets' addresses do not
    /// depend on it), each with two addresses from `allocate`.
    static func accessLinks(
        _ access: Topology.Access, sender: String, receiver: String, allocate: () -> (IPv4Address, IPv4Address)
    ) -> [PlannedLink] {
        func link(_ a: Topology.Endpoint, _ b: Topology.Endpoint) -> PlannedLink {
            let (x, y) = allocate()
            return PlannedLink(vnet: -1, a: a, b: b, aAddress: x, bAddress: y, cost: 1, path: nil, access: true, initial: LinkConditions())
        }
        let toReceiver = access.switchName.map { Topology.Endpoint(node: $0, interface: legacyInterface) }
        var links = [
            link(.init(node: sender, interface: accessSenderInterface), .init(node: access.routerName, interface: accessHostInterface)),
            link(.init(node: access.routerName, interface: legacyInterface), toReceiver ?? .init(node: receiver, interface: legacyInterface)),
        ]
        if let name = access.switchName {
            links.append(link(.init(node: name, interface: bottleneckInterface), .init(node: receiver, interface: receiverSwitchInterface)))
            for host in access.legacyHosts ?? [] {
                links.append(link(.init(node: host, interface: legacyHostInterface), .init(node: name, interface: host)))
            }
        }
        return links
    }

    /// Where the sender sends VNet `vnet`'s packets: its ingress, or with `[access]` the access router.
    public func senderNextHop(vnet: Int) -> IPv4Address {
        if let accessLink { return accessLink.bAddress }
        return links.first { $0.access && $0.vnet == vnet && $0.b.interface == Self.ingressInterface }!.bAddress
    }

    /// The ends that shape by reservation in this topology, with their nodes and interfaces.
    public var accessEnds: [AccessEnd] {
        guard topology.access != nil else { return [] }
        return bottleneckSwitch == nil ? [.sender, .router] : [.sender, .router, .bottleneck]
    }

    public func node(_ end: AccessEnd) -> String {
        switch end {
        case .sender: topology.sender
        case .router: accessRouter ?? ""
        case .bottleneck: bottleneckSwitch ?? ""
        }
    }

    public func interface(_ end: AccessEnd) -> String {
        switch end {
        case .sender: Self.accessSenderInterface
        case .router: Self.accessHostInterface
        case .bottleneck: Self.bottleneckInterface
        }
    }

    /// One end's HTB under `reservations` (by VNet name); nil where this topology has no such end.
    public func accessShaping(at end: AccessEnd, reservations: [String: BitRate]) -> AccessShaping? {
        guard accessEnds.contains(end), let access = topology.access,
            let rate = try? (end == .bottleneck ? access.bottleneckRate : access.linkRate)
        else { return nil }
        var byIndex: [Int: BitRate] = [:]
        for (index, vnet) in topology.vnets.enumerated() { if let r = reservations[vnet.name] { byIndex[index] = r } }
        return AccessShaping(interface: interface(end), linkRate: rate, reservations: byIndex)
    }

    /// Routing with `[access]`: the access router sends a VNet's packets (by their source, the
    /// sender's address in that VNet, which the tuns' packets carry; or by their class's DSCP,
    /// the sender's sockets) to the VNet's ingress, and the rest down the legacy link. With a
    /// bottleneck the VNets' egresses, the legacy link and the legacy hosts all reach the
    /// receiver through the switch. Empty without `[access]`.
    var accessRoutingCommands: [[String]] {
        guard let router = accessRouter, let accessLink, let legacyLink else { return [] }
        let ns = namespace(router)
        let sender = namespace(topology.sender)
        let receiver = namespace(topology.receiver)
        let senderAccess = "\(accessLink.aAddress)/32"
        var commands: [[String]] = [
            // Wire-sized packets on the access link, as on a physical one: a socket's TCP sends
            // no 64 KB GSO packets, so a capture anywhere beyond counts what HTB counted.
            ["ip", "-n", sender, "link", "set", "dev", Self.accessSenderInterface, "gso_max_segs", "1"],
            ["ip", "-n", ns, "link", "set", "dev", Self.accessHostInterface, "gso_max_segs", "1"],
            ["ip", "-n", sender, "route", "add", receiverAddress.description, "via", accessLink.bAddress.description],
            ["ip", "-n", ns, "route", "add", receiverAddress.description, "via", legacyLink.bAddress.description],
        ]
        if let name = bottleneckSwitch, let bottleneck = bottleneckLink {
            let sw = namespace(name)
            commands.append(["ip", "-n", sw, "route", "add", receiverAddress.description, "via", bottleneck.bAddress.description])
            commands.append(["ip", "-n", sw, "route", "add", senderAccess, "via", legacyLink.aAddress.description])
            commands.append(["ip", "-n", receiver, "route", "add", "default", "via", bottleneck.aAddress.description])
            for host in topology.access?.legacyHosts ?? [] {
                guard let link = legacyHostLink(host) else { continue }
                commands.append(["ip", "-n", namespace(host), "route", "add", receiverAddress.description, "via", link.bAddress.description])
            }
        } else {
            commands.append(["ip", "-n", receiver, "route", "add", senderAccess, "via", legacyLink.aAddress.description])
        }
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

    /// nftables (`nft -f` input) for one end: the HTB class of each packet by its VNet (`meta
    /// priority`, which HTB reads before any filter), with a counter each. At the sender: a
    /// tun's packets by the tun, its sockets' by their class's mark. At the access router
    /// (toward the sender) and the switch (toward the receiver): by the VNet they come from;
    /// the access router also marks the classes' DSCPs for the routing above. Unmatched
    /// packets are legacy.
    public func accessRules(at end: AccessEnd) -> String? {
        guard accessEnds.contains(end) else { return nil }
        let out = interface(end)
        var forward: [String] = []
        var post: [String] = []
        var counted: [String] = []
        var pre: [String] = []
        let reserved = topology.reservations
        for (index, vnet) in topology.vnets.enumerated() where reserved[vnet.name] != nil {
            let id = AccessShaping.classID(vnet: index)
            let input = end == .sender ? vnet.tun : "vnet\(index + 1)"
            forward.append(#"iifname "\#(input)" oifname "\#(out)" meta priority set \#(id)"#)
            if end == .sender, topology.classes.contains(where: { $0.vnet == vnet.name }) {
                post.append(#"oifname "\#(out)" meta mark \#(Self.classMark(vnet: index)) meta priority set \#(id)"#)
            }
            counted.append(#"oifname "\#(out)" meta priority \#(id) counter accept comment "VNet \#(vnet.name)""#)
        }
        // What no rule put into a reservation's class is legacy traffic.
        counted.append(#"oifname "\#(out)" counter comment "legacy""#)
        if end == .router {
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

    /// The commands that take every end from `current` reservations (by VNet name) to `next`,
    /// all at once, after admission: one `tc -batch` per end, classes changed in place.
    public func reservationCommands(from current: [String: BitRate], to next: [String: BitRate]) throws -> [(argv: [String], input: String?)] {
        guard let access = topology.access else {
            throw LabError("\(topology.name) has no [access] section: there is no access link to reserve on")
        }
        let names = topology.vnets.map(\.name)
        for vnet in next.keys where !names.contains(vnet) {
            throw LabError("no VNet '\(vnet)' in \(topology.name) (\(names.joined(separator: ", ")))")
        }
        try access.admit(names.compactMap { name in next[name].map { (name, $0) } })
        var commands: [(argv: [String], input: String?)] = []
        for end in accessEnds {
            guard let before = accessShaping(at: end, reservations: current), let after = accessShaping(at: end, reservations: next) else { continue }
            let lines = before.changeLines(to: after.reservations)
            commands.append((["tc", "-n", namespace(node(end)), "-batch", "-"], lines.joined(separator: "\n") + "\n"))
        }
        return commands
    }
}
