import Packets
import Units

/// A topology laid out for one run: namespace names, interfaces, addresses, the commands that
/// build it and each router's bird configuration. Pure: nothing here touches the kernel, so a
/// plan can be printed (`lab up --dry-run`) and checked without root.
///
/// Naming contract: node N of run R lives in namespace `vl<R>-<N>`. Addresses: links get /30s
/// from 198.19.0.0/16 in order; VNet i's tun is 198.18.i.1/30 with the sender's address in that
/// VNet 198.18.i.2; the receiver's address sits on its loopback.
public struct LabPlan: Sendable {
    public let topology: Topology
    public let runID: String
    public let shaper: Shaper
    /// Whether the kernel has `sch_red`: a VNet's queue policy is RED, or a tail-drop limit.
    public let red: Bool

    /// A veth link as built: two ends, their addresses, and what it is for.
    public struct PlannedLink: Sendable, Equatable {
        public var vnet: Int
        public var a: Topology.Endpoint
        public var b: Topology.Endpoint
        public var aAddress: IPv4Address
        public var bAddress: IPv4Address
        public var cost: Int
        public var path: String?
        /// Sender-to-ingress or egress-to-receiver (not shaped, not in OSPF as a transit link).
        public var access: Bool
        public var initial: LinkConditions

        public var name: String { "\(a)-\(b)" }

        /// The veth pair with an address on each end, both ends up.
        func vethCommands(namespace: (String) -> String) -> [[String]] {
            [
                ["ip", "-n", namespace(a.node), "link", "add", "name", a.interface, "type", "veth", "peer", "name", b.interface, "netns", namespace(b.node)],
                ["ip", "-n", namespace(a.node), "addr", "add", "\(aAddress)/30", "dev", a.interface],
                ["ip", "-n", namespace(b.node), "addr", "add", "\(bAddress)/30", "dev", b.interface],
                ["ip", "-n", namespace(a.node), "link", "set", "dev", a.interface, "up"],
                ["ip", "-n", namespace(b.node), "link", "set", "dev", b.interface, "up"],
            ]
        }
    }

    public let links: [PlannedLink]
    /// With `[access]`: the access link (sender `acc` to the access router's `host`) and the
    /// legacy link (the access router's `legacy` to the receiver's), not part of any VNet.
    public let extraLinks: [PlannedLink]
    /// The monitoring VNets (`[[monitor]]`): Monis, their links, the collector.
    public let monitoring: MonitorPlan

    public static let ingressInterface = "snd"
    public static let egressInterface = "rcv"

    /// Underlay addresses of hosts the topology leaves without one (emulated hosts), by name.
    public let underlay: [String: String]

    public init(topology: Topology, runID: String, shaper: Shaper, red: Bool = false, underlay: [String: String] = [:]) throws {
        self.topology = topology
        self.underlay = underlay
        self.runID = runID
        self.shaper = shaper
        self.red = red
        var links: [PlannedLink] = []
        var next: UInt32 = IPv4Address("198.19.0.0")!.value
        func allocate() -> (IPv4Address, IPv4Address) {
            defer { next += 4 }
            return (IPv4Address(next + 1), IPv4Address(next + 2))
        }
        for (index, vnet) in topology.vnets.enumerated() {
            // Its own address space, or the lab's.
            var own = try vnet.space()?.base.value
            func allocateInVNet() -> (IPv4Address, IPv4Address) {
                guard let base = own else { return allocate() }
                defer { own = base + 4 }
                return (IPv4Address(base + 1), IPv4Address(base + 2))
            }
            for link in vnet.links {
                for end in [link.a, link.b] where [Self.ingressInterface, Self.egressInterface].contains(end.interface) {
                    throw LabError("\(end): the interface names '\(Self.ingressInterface)' and '\(Self.egressInterface)' are the lab's own")
                }
                let (a, b) = allocateInVNet()
                var initial = try link.conditions()
                if let priority = vnet.priority {
                    initial.priorityTOS = try TrafficMark(parsing: priority).tos
                    initial.priorityBands = true
                }
                links.append(
                    PlannedLink(
                        vnet: index, a: link.a, b: link.b, aAddress: a, bAddress: b, cost: link.cost, path: link.path,
                        access: false, initial: initial))
            }
            let (s, i) = allocate()
            // With [access], the access router stands between the sender and every VNet.
            let upstream = topology.access.map { Topology.Endpoint(node: $0.routerName, interface: "vnet\(index + 1)") }
            links.append(
                PlannedLink(
                    vnet: index, a: upstream ?? .init(node: topology.sender, interface: "vnet\(index + 1)"),
                    b: .init(node: vnet.ingress, interface: Self.ingressInterface), aAddress: s, bAddress: i, cost: 1,
                    path: nil, access: true, initial: LinkConditions()))
            let (e, r) = allocate()
            // With a bottleneck, the switch stands between every VNet and the receiver.
            let downstream = topology.access?.switchName ?? topology.receiver
            links.append(
                PlannedLink(
                    vnet: index, a: .init(node: vnet.egress, interface: Self.egressInterface),
                    b: .init(node: downstream, interface: "vnet\(index + 1)"), aAddress: e, bAddress: r, cost: 1,
                    path: nil, access: true, initial: LinkConditions()))
        }
        self.links = links
        // Allocated after every VNet's links, so that a topology's VNet addresses do not
        // depend on whether it has [access].
        self.extraLinks = topology.access.map { Self.accessLinks($0, sender: topology.sender, receiver: topology.receiver, allocate: allocate) } ?? []
        self.monitoring = try MonitorPlan(topology: topology, allocate: allocate)
        try checkUnderlay()
    }

    /// Node N of run R: `vlR-N`; on host H of a lab spread over hosts, `vlR-H-N`, so that the
    /// hosts' parts never collide on one machine (emulated hosts).
    public func namespace(_ node: String) -> String {
        topology.host(of: node).map { "vl\(runID)-\($0)-\(node)" } ?? "vl\(runID)-\(node)"
    }

    public var nodes: [String] {
        [topology.sender] + (topology.access?.nodes ?? []) + topology.vnets.flatMap(\.routers) + [topology.receiver] + monitoring.nodes
    }

    public var receiverAddress: IPv4Address { IPv4Address(topology.receiverAddress)! }
    public func tunAddress(vnet: Int) -> IPv4Address { IPv4Address(IPv4Address("198.18.0.1")!.value + UInt32(vnet + 1) << 8) }
    /// The sender's own address in VNet `vnet`: the source of its packets there.
    public func senderAddress(vnet: Int) -> IPv4Address { tunAddress(vnet: vnet).adding(1) }
    public func senderPrefix(vnet: Int) -> String { "\(tunAddress(vnet: vnet).adding(UInt32.max))/30" }

    /// Links that carry a VNet's traffic between its routers (shaped, in OSPF).
    public var transitLinks: [PlannedLink] { links.filter { !$0.access } }

    /// The commands that build the lab, in order, after the namespaces exist.
    public var buildCommands: [[String]] { buildSteps.map(\.argv) }

    /// The commands that build the lab, each with the host it runs on (nil: this machine). A
    /// link between nodes on different hosts is a VXLAN pair (`CrossHostLink`); every other
    /// command names the namespace it acts in, and runs where that namespace is.
    public var buildSteps: [PlacedCommand] {
        var steps: [PlacedCommand] = []
        for node in nodes {
            let ns = namespace(node)
            steps.append(place(["ip", "-n", ns, "link", "set", "lo", "up"]))
            steps.append(
                place(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                 "net.ipv4.conf.default.rp_filter=0"]))
        }
        for (index, link) in (links + extraLinks).enumerated() { steps += linkSteps(link, index: index) }
        return steps + routeCommands.map(place)
    }

    private var routeCommands: [[String]] {
        var commands: [[String]] = []
        let sender = namespace(topology.sender)
        let receiver = namespace(topology.receiver)
        commands.append(["ip", "-n", receiver, "addr", "add", "\(receiverAddress)/32", "dev", "lo"])
        for (index, vnet) in topology.vnets.enumerated() {
            let table = String(100 + index + 1)
            let egressLink = links.first { $0.access && $0.vnet == index && $0.a.interface == Self.egressInterface }!
            commands.append(["ip", "-n", sender, "tuntap", "add", "dev", vnet.tun, "mode", "tun"])
            if let mtu = mtu(vnet: index) { commands.append(["ip", "-n", sender, "link", "set", "dev", vnet.tun, "mtu", String(mtu)]) }
            commands.append(["ip", "-n", sender, "addr", "add", "\(tunAddress(vnet: index))/30", "dev", vnet.tun])
            commands.append(["ip", "-n", sender, "link", "set", "dev", vnet.tun, "up"])
            commands.append(["ip", "-n", sender, "rule", "add", "iif", vnet.tun, "lookup", table, "pref", String(1000 + index)])
            commands.append(
                ["ip", "-n", sender, "route", "add", receiverAddress.description, "via", senderNextHop(vnet: index).description, "table", table])
            // The receiver's way back into the VNet (through the switch, with a bottleneck).
            commands.append(["ip", "-n", namespace(egressLink.b.node), "route", "add", senderPrefix(vnet: index), "via", egressLink.aAddress.description])
        }
        return commands + accessRoutingCommands
    }

    /// How one end of a transit link is shaped under `conditions`: the shaper, and the queue
    /// policy of the link's VNet.
    public func shaping(_ end: Topology.Endpoint, of link: PlannedLink, conditions: LinkConditions) -> InterfaceShaping {
        InterfaceShaping(interface: end.interface, shaper: shaper, conditions: conditions, queue: topology.vnets[link.vnet].queue, red: red)
    }

    /// The largest queue, in bytes, of VNet `vnet`'s transit links when they carry `bitsPerSecond`
    /// (their own queue settings, under this plan's shaper): a fluid queue that large at that
    /// rate loses no more than the VNet's links do. nil: the VNet has no shaped link.
    public func queueBytes(vnet: Int, bitsPerSecond: Double) -> Double? {
        var largest: Double?
        for link in transitLinks where link.vnet == vnet {
            var conditions = link.initial
            conditions.rate = BitRate(bitsPerSecond: bitsPerSecond)
            for end in [link.a, link.b] {
                if let bytes = shaping(end, of: link, conditions: conditions).queueBytes { largest = max(largest ?? 0, bytes) }
            }
        }
        return largest
    }

    /// The queue each VNet's links have here, for results: `RED min 2 max 10 ...` or the
    /// tail-drop limit that stands in for it.
    public var queueSummaries: [String: String] {
        Dictionary(uniqueKeysWithValues: topology.vnets.map { ($0.name, InterfaceShaping.queueSummary($0.queue, red: red, shaper: shaper)) })
    }

    // MARK: - Traffic classes

    /// The firewall mark the edge gives packets of VNet `vnet`'s classes (and the policy
    /// routing rule's preference that sends that mark into the VNet's table).
    public static func classMark(vnet: Int) -> Int { 0x10 + vnet }
    public static func classRulePreference(vnet: Int) -> Int { 900 + vnet }

    /// The classifying edge, as commands after `buildCommands`: the sender node's main table
    /// routes the receiver through the default VNet (so ordinary sockets have a route, and a
    /// source address in the VNet's sender prefix, which the receiver routes back: TCP works), and a policy routing rule per classed VNet sends its firewall mark into
    /// the VNet's table. The marks come from `classifierRules`. Empty without classes.
    public var classifierCommands: [[String]] {
        guard !topology.classes.isEmpty else { return [] }
        let sender = namespace(topology.sender)
        let fallback = topology.defaultVNet.flatMap { name in topology.vnets.firstIndex { $0.name == name } } ?? 0
        // With [access] the main table already routes the receiver (over the legacy link).
        var commands =
            topology.access != nil ? [] : [["ip", "-n", sender, "route", "add", receiverAddress.description, "via", senderNextHop(vnet: fallback).description, "src", tunAddress(vnet: fallback).description]]
        for (index, vnet) in topology.vnets.enumerated() where topology.classes.contains(where: { $0.vnet == vnet.name }) {
            commands.append(
                ["ip", "-n", sender, "rule", "add", "fwmark", String(Self.classMark(vnet: index)), "lookup", String(100 + index + 1), "pref",
                 String(Self.classRulePreference(vnet: index))])
        }
        return commands
    }

    /// nftables rules (an `nft -f` file) for the sender node: packets to the receiver get the
    /// mark of their class's VNet by their DSCP, both those its own sockets send (the output
    /// hook, in a `route` chain, so the kernel routes them again with the mark) and those it
    /// forwards from other hosts (prerouting). Packets from the tuns are left alone: the
    /// multi-net sender picks their VNet itself. Counters per class show what was classified.
    public var classifierRules: String? {
        guard !topology.classes.isEmpty else { return nil }
        var rules: [String] = []
        for cls in topology.classes {
            guard let index = topology.vnets.firstIndex(where: { $0.name == cls.vnet }), let mark = try? cls.mark else { continue }
            rules.append("ip daddr \(receiverAddress) ip dscp \(mark.dscp) counter meta mark set \(Self.classMark(vnet: index)) comment \"\(cls.name)\"")
        }
        let tuns = topology.vnets.map { "\"\($0.tun)\"" }.joined(separator: ", ")
        return """
            table ip vnetclass {
              chain out {
                type route hook output priority mangle;
            \(rules.map { "    " + $0 + ";" }.joined(separator: "\n"))
              }
              chain pre {
                type filter hook prerouting priority mangle;
                iifname { \(tuns) } return;
            \(rules.map { "    " + $0 + ";" }.joined(separator: "\n"))
              }
            }

            """
    }

    /// Interfaces of `node` that lead to another router (shaped, blackholable).
    public func transitInterfaces(of node: String) -> [String] {
        transitLinks.flatMap { link in [link.a, link.b].filter { $0.node == node }.map(\.interface) }
    }

    /// bird2 configuration for a router: OSPF on its transit links with the file's costs and
    /// timers; statics toward the sender (on the ingress) and the receiver (on the egress),
    /// exported into OSPF so the whole VNet routes both ways.
    /// `logDirectory` is where the router's bird writes ROUTER.log (the lab's state folder).
    public func birdConfig(router: String, logDirectory: String = "/run/vnetstream/labs/ID") -> String {
        let index = topology.vnets.firstIndex { $0.routers.contains(router) }!
        let vnet = topology.vnets[index]
        let own = links.filter { $0.a.node == router || $0.b.node == router }
        let routerID = own.map { $0.a.node == router ? $0.aAddress : $0.bAddress }.min() ?? IPv4Address(1)
        var statics: [String] = []
        if router == vnet.ingress, let access = links.first(where: { $0.access && $0.vnet == index && $0.b.node == router }) {
            statics.append("  route \(senderPrefix(vnet: index)) via \(access.aAddress);")
        }
        if router == vnet.egress, let access = links.first(where: { $0.access && $0.vnet == index && $0.a.node == router }) {
            statics.append("  route \(receiverAddress)/32 via \(access.bAddress);")
        }
        var text = """
            # bird2 for router \(router) of VNet \(vnet.name), lab run \(runID) (written by vnetstream lab up)
            router id \(routerID);
            log "\(logDirectory)/\(router).log" all;
            protocol device { scan time 2; }
            # Routes learnt by OSPF (intra-area and the statics other routers export as
            # external type 2) and this router's own statics go into the kernel.
            protocol kernel {
              ipv4 { import none; export where source ~ [RTS_OSPF, RTS_OSPF_IA, RTS_OSPF_EXT1, RTS_OSPF_EXT2, RTS_STATIC]; };
            }

            """
        if !statics.isEmpty {
            text += "protocol static {\n  ipv4;\n" + statics.joined(separator: "\n") + "\n}\n"
        }
        text += """
            protocol ospf v2 ospf_\(index + 1) {
              ipv4 { import all; export where source = RTS_STATIC; };
              area 0 {

            """
        for link in own where !link.access {
            let end = link.a.node == router ? link.a : link.b
            text += "    interface \"\(end.interface)\" { type ptp; cost \(link.cost); hello \(vnet.helloS); dead \(vnet.deadS); };\n"
        }
        text += "  };\n}\n"
        return text
    }
}
