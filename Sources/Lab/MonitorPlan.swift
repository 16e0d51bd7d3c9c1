import Packets
import Units

/// The monitoring VNets of a topology, laid out (`Monitor.swift` says what they are). Pure:
/// names, links, addresses and the commands that build them, so `lab up --dry-run` prints
/// them and tests check them without root.
///
/// What it never does to a watched router: give it an address, a route or an OSPF interface.
/// Its `mon` port has no address and no IPv6, and the copies sent into it carry the frame's own
/// MAC addresses, which are not the Moni's: the Moni's kernel drops them unrouted (libpcap, in
/// promiscuous mode, has them first). So no copy can reach a production link.
public struct MonitorPlan: Sendable, Equatable {
    public static let routerMirrorInterface = "mon"
    public static let moniMirrorInterface = "mir"
    public static let collectorNode = "mon_col"
    /// The collector's UDP port (sFlow's).
    public static let collectorPort: UInt16 = 6343
    public static func moniNode(_ router: String) -> String { "mon_\(router)" }

    /// One monitoring node: the router it watches and how.
    public struct Moni: Sendable, Equatable {
        /// 0-based, in the topology's `[[monitor]]` order.
        public var monitor: Int
        public var vnet: Int
        public var router: String
        public var node: String
        public var filter: MirrorFilter
        public var hooks: [MirrorHook]
        public var method: Topology.Monitor.Method
        /// nil: the mirror link is not shaped.
        public var mirrorRate: BitRate?
        /// Its own address on the monitoring VNet (its `up` port).
        public var address: IPv4Address
    }

    public let monis: [Moni]
    /// The monitoring VNets' own links: Moni to Moni (`up` -- `down`) and each chain's first
    /// Moni to the collector (`up` -- `mN`). The mirror links are not among them (no addresses).
    public let links: [LabPlan.PlannedLink]
    /// Where every Moni sends its summaries; nil without monitors.
    public let collector: UDPEndpoint?

    init(topology: Topology, allocate: () -> (IPv4Address, IPv4Address)) throws {
        var monis: [Moni] = []
        var links: [LabPlan.PlannedLink] = []
        var collectorAddress: IPv4Address?
        for (number, monitor) in topology.monitors.enumerated() {
            guard let vnet = topology.vnets.firstIndex(where: { $0.name == monitor.vnet }) else { continue }
            var upstream = Topology.Endpoint(node: Self.collectorNode, interface: "m\(number + 1)")
            for router in monitor.watched(in: topology.vnets[vnet]) {
                let node = Self.moniNode(router)
                let (a, b) = allocate()
                collectorAddress = collectorAddress ?? a
                links.append(
                    LabPlan.PlannedLink(
                        vnet: vnet, a: upstream, b: .init(node: node, interface: "up"), aAddress: a, bAddress: b, cost: 1, path: nil,
                        access: false, initial: LinkConditions()))
                monis.append(
                    Moni(
                        monitor: number, vnet: vnet, router: router, node: node, filter: try monitor.filter,
                        hooks: monitor.directionOrDefault.hooks, method: monitor.methodOrDefault, mirrorRate: try monitor.mirrorLinkRate,
                        address: b))
                upstream = .init(node: node, interface: "down")
            }
        }
        self.monis = monis
        self.links = links
        self.collector = collectorAddress.map { UDPEndpoint(address: $0, port: Self.collectorPort) }
    }

    /// The nodes it adds, in the order they are built: every Moni, then the collector.
    public var nodes: [String] { monis.isEmpty ? [] : monis.map(\.node) + [Self.collectorNode] }

    public func moni(watching router: String) -> Moni? { monis.first { $0.router == router } }

    /// The commands that build the monitoring VNets, after the production lab is built:
    /// mirror links, their shaping, the copies at every port of each watched router, and the
    /// routes toward the collector. `ports` gives a router's interfaces; `namespace` a node's.
    public func buildCommands(ports: (String) -> [String], namespace: (String) -> String) -> [[String]] {
        var commands: [[String]] = []
        for moni in monis {
            let router = namespace(moni.router)
            let node = namespace(moni.node)
            let mon = Self.routerMirrorInterface
            let mir = Self.moniMirrorInterface
            commands.append(["ip", "-n", router, "link", "add", "name", mon, "type", "veth", "peer", "name", mir, "netns", node])
            commands.append(["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv6.conf.\(mon).disable_ipv6=1"])
            commands.append(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv6.conf.\(mir).disable_ipv6=1"])
            commands.append(["ip", "-n", router, "link", "set", "dev", mon, "up"])
            commands.append(["ip", "-n", node, "link", "set", "dev", mir, "up"])
            if let rate = moni.mirrorRate { commands.append(["tc", "-n", router, "qdisc", "add", "dev", mon, "root"] + Self.mirrorShaping(rate)) }
            if moni.method == .tc {
                for port in ports(moni.router) {
                    commands.append(["tc", "-n", router, "qdisc", "add", "dev", port, "clsact"])
                    for hook in moni.hooks {
                        commands.append(
                            ["tc", "-n", router, "filter", "add", "dev", port, hook.rawValue, "protocol", "ip", "pref", "10", "u32"]
                                + moni.filter.u32Match + ["action", "mirred", "egress", "mirror", "dev", mon])
                    }
                }
            }
        }
        for link in links {
            commands += link.vethCommands(namespace: namespace)
            // Each Moni's summaries go up its chain to the collector.
            commands.append(["ip", "-n", namespace(link.b.node), "route", "add", "default", "via", link.aAddress.description])
        }
        return commands
    }

    /// The `nft -f` input of a watched router with `method = "nft"`: a netdev chain per port and
    /// hook that copies the monitor's packets to `mon`; nil for the tc method.
    public func nftRules(router: String, ports: [String]) -> String? {
        guard let moni = moni(watching: router), moni.method == .nft else { return nil }
        var lines = ["table netdev vnetmon {"]
        for port in ports {
            for hook in moni.hooks {
                lines.append("  chain \(hook == .ingress ? "in" : "out")_\(port) {")
                lines.append("    type filter hook \(hook.rawValue) device \"\(port)\" priority 0; policy accept;")
                lines.append("    \(moni.filter.nftMatch) counter dup to \"\(Self.routerMirrorInterface)\"")
                lines.append("  }")
            }
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// TBF for a mirror link: 2 ms of the rate as its burst (at least 64 KB, so that a fast
    /// link is not held back by the timer), 20 ms of queue.
    static func mirrorShaping(_ rate: BitRate) -> [String] {
        let bytesPerSecond = rate.bitsPerSecond / 8
        let burst = max(65_536, Int(bytesPerSecond * 0.002))
        let limit = burst + max(65_536, Int(bytesPerSecond * 0.02))
        return ["tbf", "rate", "\(Int(rate.bitsPerSecond))bit", "burst", String(burst), "limit", String(limit)]
    }
}
