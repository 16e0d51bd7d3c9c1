import Foundation

/// The isolation proof of issue 19: packets sent from inside one VNet, to every other VNet's
/// addresses, to the underlay's and to addresses of 198.18.0.0/15 outside the lab, counted
/// wherever they could arrive. Only the VNet's own interfaces may see them.
public struct IsolationFlood: Codable, Sendable, Equatable {
    /// Somewhere the flood was counted that it must not reach.
    public struct Leak: Codable, Sendable, Equatable {
        /// `node:interface in|out`, a host's namespace, or the underlay's bridge.
        public var place: String
        public var packets: Int
    }

    /// The VNet flooded from, by name.
    public var vnet: String
    /// Its routers that sent the flood.
    public var sources: [String]
    /// The addresses flooded, by what they are: "other VNets", "underlay", "outside the lab",
    /// and "its own (control)", the VNet's own addresses, which its own links must carry.
    public var destinations: [String: [String]]
    /// Datagrams and echo requests the sources tried to send (those to a destination without
    /// a route fail at once, which is isolation too).
    public var attempted: Int
    /// Flood packets counted on the VNet's own interfaces, per interface and direction: the
    /// VNet routes its own addresses (and those it shares with another VNet), so the flood
    /// travels there, and these counters show that the counting sees it.
    public var ownHops: Int
    /// Counted anywhere else: other VNets' interfaces, interfaces of no VNet, hosts' and the
    /// controller's namespaces (bare packets: VXLAN's encapsulation is UDP 4789, not counted),
    /// the underlay's bridge.
    public var leaks: [Leak]
    /// Whether the underlay was watched: only emulated hosts' namespaces are the lab's own; a
    /// lab on this one machine has no underlay but the machine's, which the lab never touches.
    public var underlayWatched: Bool

    public var leaked: Int { leaks.reduce(0) { $0 + $1.packets } }

    /// The flood's own marks: UDP to this port, and ICMP echo requests of this IP length.
    public static let port = 47999
    public static let echoPayload = 1111
    static var echoLength: Int { echoPayload + 28 }
    public static let table = "vnetisolation"

    /// The nft match of a flood packet (two rules: UDP and ICMP).
    static let matches = ["udp dport \(port)", "icmp type echo-request ip length \(echoLength)"]
}

extension Lab {
    /// Floods from every router of VNet `vnet` (index), counts in every namespace of the lab
    /// (and of its emulated hosts), and removes its counters whatever happens. Each source
    /// sends `datagrams` UDP datagrams and 3 echo requests to each destination; every loop is
    /// bounded, and the whole within `timeout` seconds.
    public func floodIsolation(from vnet: Int, datagrams: Int = 20, timeout: Double = 120) throws -> IsolationFlood {
        let topology = plan.topology
        guard topology.vnets.indices.contains(vnet) else {
            throw LabError("no VNet \(vnet + 1): the topology has \(topology.vnets.count)")
        }
        let own = topology.vnets[vnet]
        // Every interface of the lab, with the VNet it belongs to (nil: an access or legacy link of none).
        var interfaces: [String: [(interface: String, vnet: Int?)]] = [:]
        for link in plan.links + plan.extraLinks {
            let owner: Int? = plan.links.contains(link) ? link.vnet : nil
            for end in [link.a, link.b] { interfaces[end.node, default: []].append((end.interface, owner)) }
        }
        for (index, net) in topology.vnets.enumerated() { interfaces[topology.sender, default: []].append((net.tun, index)) }

        func addresses(_ links: [LabPlan.PlannedLink]) -> [String] { links.flatMap { [$0.aAddress.description, $0.bAddress.description] } }
        func tunAddresses(_ vnets: [Int]) -> [String] { vnets.flatMap { [plan.tunAddress(vnet: $0).description, plan.senderAddress(vnet: $0).description] } }
        var destinations: [String: [String]] = [:]
        let others = addresses(plan.links.filter { $0.vnet != vnet }) + tunAddresses(topology.vnets.indices.filter { $0 != vnet })
        destinations["other VNets"] = Array(Set(others)).sorted()
        // The control: the VNet's own addresses, which it routes, so its own counters must count.
        destinations["its own (control)"] = Array(Set(addresses(plan.links.filter { $0.vnet == vnet }))).sorted()
        var underlay = Array(plan.underlay.values)
        if let emulated {
            underlay += [EmulatedHosts.underlayPrefix + "254"] + (0..<emulated.count).map { emulated.underlayAddress(ofHost: $0) }
        }
        destinations["underlay"] = Array(Set(underlay)).sorted()
        let used = Set(addresses(plan.links + plan.extraLinks) + underlay + tunAddresses(Array(topology.vnets.indices)) + [topology.receiverAddress])
        destinations["outside the lab"] = ["198.18.255.254", "198.19.128.1", "198.19.254.1", "198.18.200.9"].filter { !used.contains($0) }
        let targets = destinations.values.flatMap { $0 }

        // Counters: per interface and direction in every node; in and out of each emulated
        // host's and the controller's namespace; across the underlay's bridge.
        let nodes = plan.nodes
        func ruleset(_ names: [String]) -> String {
            var text = "table inet \(IsolationFlood.table) {\n"
            for interface in names { text += "  counter in_\(interface) {}\n  counter out_\(interface) {}\n" }
            // Any other interface (one the plan does not know) counts apart, as a leak.
            text += "  counter unplanned_in {}\n  counter unplanned_out {}\n"
            let known = "{ " + (names + ["lo"]).map { "\"\($0)\"" }.joined(separator: ", ") + " }"
            text += "  chain pre {\n    type filter hook prerouting priority -450;\n"
            for match in IsolationFlood.matches {
                for interface in names { text += "    iifname \"\(interface)\" \(match) counter name in_\(interface)\n" }
                text += "    iifname != \(known) \(match) counter name unplanned_in\n"
            }
            text += "  }\n  chain post {\n    type filter hook postrouting priority 450;\n"
            for match in IsolationFlood.matches {
                for interface in names { text += "    oifname \"\(interface)\" \(match) counter name out_\(interface)\n" }
                text += "    oifname != \(known) \(match) counter name unplanned_out\n"
            }
            return text + "  }\n}\n"
        }
        let hostRules = "table inet \(IsolationFlood.table) {\n  counter in_any {}\n  counter out_any {}\n"
            + "  chain pre {\n    type filter hook prerouting priority -450;\n"
            + IsolationFlood.matches.map { "    \($0) counter name in_any\n" }.joined()
            + "  }\n  chain post {\n    type filter hook postrouting priority 450;\n"
            + IsolationFlood.matches.map { "    \($0) counter name out_any\n" }.joined() + "  }\n}\n"
        let bridgeRules = "table bridge \(IsolationFlood.table) {\n  counter bridged {}\n"
            + "  chain forward {\n    type filter hook forward priority 0;\n"
            + IsolationFlood.matches.map { "    \($0) counter name bridged\n" }.joined() + "  }\n}\n"
        let local = LocalHost()
        let hostNamespaces = emulated.map { hosts in (0..<hosts.count).map { hosts.namespace(ofHost: $0) } + [hosts.controllerNamespace] } ?? []
        let bridgeNamespace = emulated?.underlayNamespace
        // Removed whatever happened (a table that was never made is no failure): one ssh
        // session per host for the nodes.
        func removal(_ namespace: String, family: String = "inet") -> (argv: [String], input: String?) {
            (["ip", "netns", "exec", namespace, "sh", "-c", "nft delete table \(family) \(IsolationFlood.table) 2>/dev/null; true"], nil)
        }
        func remove() {
            try? host.runConcurrently(nodes.map { removal(plan.namespace($0)) }, timeout: 30)
            try? local.runConcurrently(hostNamespaces.map { removal($0) } + (bridgeNamespace.map { [removal($0, family: "bridge")] } ?? []), timeout: 30)
        }
        defer { remove() }
        try host.runConcurrently(
            nodes.map { (argv: ["ip", "netns", "exec", plan.namespace($0), "nft", "-f", "-"], input: ruleset((interfaces[$0] ?? []).map(\.interface))) },
            timeout: 60)
        try local.runConcurrently(
            hostNamespaces.map { (argv: ["ip", "netns", "exec", $0, "nft", "-f", "-"], input: hostRules) }
                + (bridgeNamespace.map { [(argv: ["ip", "netns", "exec", $0, "nft", "-f", "-"], input: bridgeRules)] } ?? []),
            timeout: 30)

        // The flood: from each router, to each destination, datagrams then echo requests. A
        // destination without a route fails at once (connect), which is isolation too.
        let script = """
            for d in \(targets.joined(separator: " ")); do
              for i in $(seq \(datagrams)); do printf VNETSTREAM-ISOLATION 2>/dev/null > /dev/udp/$d/\(IsolationFlood.port); done
              ping -n -q -c 3 -i 0.01 -W 0.2 -s \(IsolationFlood.echoPayload) $d >/dev/null 2>&1
            done
            exit 0
            """
        try host.runConcurrently(own.routers.map { (argv: ["ip", "netns", "exec", plan.namespace($0), "bash", "-c", script], input: nil) }, timeout: timeout)
        usleep(300_000)  // the last echo requests' hops

        func counters(_ run: () throws -> String) throws -> [String: Int] { try NFTCounters.parse(try run()) }
        var ownHops = 0
        var leaks: [IsolationFlood.Leak] = []
        for node in nodes {
            let counted = try counters {
                try host.run(["ip", "netns", "exec", plan.namespace(node), "nft", "-j", "list", "counters", "table", "inet", IsolationFlood.table], input: nil, timeout: 15)
            }
            for direction in ["in", "out"] where (counted["unplanned_\(direction)"] ?? 0) > 0 {
                leaks.append(.init(place: "\(node): an interface of no link of the plan, \(direction)", packets: counted["unplanned_\(direction)"] ?? 0))
            }
            for (interface, owner) in interfaces[node] ?? [] {
                let (inbound, outbound) = (counted["in_\(interface)"] ?? 0, counted["out_\(interface)"] ?? 0)
                if owner == vnet {
                    ownHops += inbound + outbound
                } else {
                    if inbound > 0 { leaks.append(.init(place: "\(node):\(interface) in", packets: inbound)) }
                    if outbound > 0 { leaks.append(.init(place: "\(node):\(interface) out", packets: outbound)) }
                }
            }
        }
        for namespace in hostNamespaces {
            let counted = try counters {
                try local.run(["ip", "netns", "exec", namespace, "nft", "-j", "list", "counters", "table", "inet", IsolationFlood.table], input: nil, timeout: 15)
            }
            for direction in ["in", "out"] where (counted["\(direction)_any"] ?? 0) > 0 {
                leaks.append(.init(place: "\(namespace) \(direction)", packets: counted["\(direction)_any"] ?? 0))
            }
        }
        if let bridgeNamespace {
            let counted = try counters {
                try local.run(["ip", "netns", "exec", bridgeNamespace, "nft", "-j", "list", "counters", "table", "bridge", IsolationFlood.table], input: nil, timeout: 15)
            }
            if let bridged = counted["bridged"], bridged > 0 { leaks.append(.init(place: "\(bridgeNamespace) bridge", packets: bridged)) }
        }
        return IsolationFlood(
            vnet: own.name, sources: own.routers, destinations: destinations, attempted: own.routers.count * targets.count * (datagrams + 3),
            ownHops: ownHops, leaks: leaks, underlayWatched: emulated != nil)
    }
}
