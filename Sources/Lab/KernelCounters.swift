import Foundation
import Packets

/// Ground truth from the kernel: what it counted on every router interface of a lab.
///
/// Each router's `vnetlab` table has two named nftables counters per interface that match the
/// project's media packets only (UDP, payload starting with magic `VN`, the wire version, kind 1, 5 or 6):
/// `in_IF` at the end of the prerouting chain (what came in from the link and got past its
/// blackhole) and `out_IF` at the start of the postrouting chain (what was routed into the
/// link, before its blackhole and random loss). So a link's drops of media packets in one
/// direction are `out` at one end minus `in` at the other: its blackhole, its random loss and
/// its qdisc, whatever else crosses it (OSPF hellos, reports going back). The drop points
/// count the media they drop themselves (`bhin_IF`, `bhout_IF`, `loss_IF`), so that what a
/// span between two readings dropped does not depend on what sat in a queue at either. Beside
/// them, the qdiscs' counters (`tc -s -j`, all traffic) and the devices' (`ip -j -s link`).
public enum MediaCounters {
    /// The nft expression that matches a VNetStream media packet: the four bytes after the UDP
    /// header are 0x56 0x4E (magic), the wire version, and the kind: 1 (media), 5 (a
    /// retransmission) or 6 (a parity), which their VNet carries and can lose like any other.
    public static let match: String = {
        func word(_ kind: Wire.Kind) -> String { "0x" + String(UInt32(Wire.magic) << 16 | UInt32(Wire.version) << 8 | UInt32(kind.rawValue), radix: 16) }
        return "meta l4proto udp @th,64,32 { \(word(.media)), \(word(.retransmission)), \(word(.parity)) }"
    }()

    public static func inName(_ interface: String) -> String { "in_\(interface)" }
    public static func outName(_ interface: String) -> String { "out_\(interface)" }
    /// Media a blackhole dropped: coming in from the interface, or going out into it.
    public static func blackholeInName(_ interface: String) -> String { "bhin_\(interface)" }
    public static func blackholeOutName(_ interface: String) -> String { "bhout_\(interface)" }
    /// Media the interface's random loss (the TBF shaper's nftables loss) dropped.
    public static func lossName(_ interface: String) -> String { "lost_\(interface)" }

    /// Every counter an interface has (the loss counter only on a shaped, transit interface).
    static func names(_ interface: String, shaped: Bool) -> [String] {
        [inName(interface), outName(interface), blackholeInName(interface), blackholeOutName(interface)] + (shaped ? [lossName(interface)] : [])
    }
}

/// One router interface's counters at one moment.
public struct InterfaceCounters: Codable, Sendable, Equatable {
    /// Media packets that came in from this interface's link (past its blackhole).
    public var mediaIn: Int
    /// Media packets routed into this interface's link (before its blackhole and loss).
    public var mediaOut: Int
    /// Media packets a blackhole dropped as they came in from the link, or went out into it.
    public var blackholeIn: Int
    public var blackholeOut: Int
    /// Media packets the link's random loss dropped here (TBF shaper; netem's is in the qdisc).
    public var lossDrops: Int
    /// The root qdisc on the interface's egress (all traffic): packets sent and dropped. A
    /// root qdisc counts its children's drops too.
    public var qdiscPackets: Int
    public var qdiscDrops: Int
    /// The device's own drop counters.
    public var rxDropped: Int
    public var txDropped: Int

    public init(
        mediaIn: Int = 0, mediaOut: Int = 0, blackholeIn: Int = 0, blackholeOut: Int = 0, lossDrops: Int = 0, qdiscPackets: Int = 0,
        qdiscDrops: Int = 0, rxDropped: Int = 0, txDropped: Int = 0
    ) {
        self.mediaIn = mediaIn
        self.mediaOut = mediaOut
        self.blackholeIn = blackholeIn
        self.blackholeOut = blackholeOut
        self.lossDrops = lossDrops
        self.qdiscPackets = qdiscPackets
        self.qdiscDrops = qdiscDrops
        self.rxDropped = rxDropped
        self.txDropped = txDropped
    }

    /// What was counted between two readings.
    public static func - (after: InterfaceCounters, before: InterfaceCounters) -> InterfaceCounters {
        InterfaceCounters(
            mediaIn: after.mediaIn - before.mediaIn, mediaOut: after.mediaOut - before.mediaOut,
            blackholeIn: after.blackholeIn - before.blackholeIn, blackholeOut: after.blackholeOut - before.blackholeOut,
            lossDrops: after.lossDrops - before.lossDrops, qdiscPackets: after.qdiscPackets - before.qdiscPackets,
            qdiscDrops: after.qdiscDrops - before.qdiscDrops, rxDropped: after.rxDropped - before.rxDropped,
            txDropped: after.txDropped - before.txDropped)
    }

    enum CodingKeys: String, CodingKey {
        case mediaIn = "media_in"
        case mediaOut = "media_out"
        case blackholeIn = "blackhole_in"
        case blackholeOut = "blackhole_out"
        case lossDrops = "loss_drops"
        case qdiscPackets = "qdisc_packets"
        case qdiscDrops = "qdisc_drops"
        case rxDropped = "rx_dropped"
        case txDropped = "tx_dropped"
    }
}

/// Every router interface's counters at one moment of a run.
public struct KernelSnapshot: Codable, Sendable, Equatable {
    /// `start`, `end`, or the schedule event after which it was read.
    public var label: String
    /// Seconds since the run's time zero.
    public var atS: Double
    /// By `node:interface`.
    public var interfaces: [String: InterfaceCounters]
    /// The commands that did not answer (their counters are missing, not zero).
    public var failures: [String]

    public init(label: String, atS: Double, interfaces: [String: InterfaceCounters], failures: [String] = []) {
        self.label = label
        self.atS = atS
        self.interfaces = interfaces
        self.failures = failures
    }

    enum CodingKeys: String, CodingKey {
        case label, interfaces, failures
        case atS = "at_s"
    }

    public func counters(_ end: Topology.Endpoint) -> InterfaceCounters { interfaces[end.description] ?? InterfaceCounters() }
}

extension LabPlan {
    /// Every interface of a router (transit links and the access links `snd` and `rcv`).
    public func routerInterfaces(of node: String) -> [String] {
        links.flatMap { link in [link.a, link.b].filter { $0.node == node }.map(\.interface) }
    }

    /// The routers, the nodes that carry the `vnetlab` table and its counters.
    public var routers: [String] { topology.vnets.flatMap(\.routers) }
}

extension Lab {
    /// Reads every router's counters now (all routers at once).
    public func kernelSnapshot(label: String, atS: Double) -> KernelSnapshot {
        let gone = Set(plan.topology.vnets.filter { state.retired.contains($0.name) }.flatMap(\.routers))
        let routers = plan.routers.filter { !gone.contains($0) }
        let results: [(counters: [String: InterfaceCounters], failures: [String])]
        if let placed = host as? PlacedHosts {
            // Over hosts, one ssh session per host reads all its routers: a session per command
            // (24 for paper-fig6) cost so much CPU that the other lab's events came seconds late.
            var groups: [String: [String]] = [:]
            for router in routers {
                if let door = try? placed.host(for: ["ip", "netns", "exec", plan.namespace(router)]) { groups[door.name, default: []].append(router) }
            }
            let batches = groups.sorted { $0.key < $1.key }.compactMap { name, routers in placed.hosts[name].map { (door: $0, routers: routers) } }
            results = Parallel.map(batches.indices) { index in self.readCounters(routers: batches[index].routers, on: batches[index].door) }.flatMap { $0 }
        } else {
            results = Parallel.map(routers.indices) { index in self.readCounters(router: routers[index]) }
        }
        var interfaces: [String: InterfaceCounters] = [:]
        var failures: [String] = []
        for result in results {
            interfaces.merge(result.counters) { first, _ in first }
            failures += result.failures
        }
        return KernelSnapshot(label: label, atS: atS, interfaces: interfaces, failures: failures)
    }

    /// One router's counters: its nft counters, its qdiscs and its devices, by interface.
    func readCounters(router: String) -> (counters: [String: InterfaceCounters], failures: [String]) {
        let ns = plan.namespace(router)
        var failures: [String] = []
        // Three tries: over ssh on a loaded machine one read may time out, and a missing reading
        // would leave the receiver's losses unexplained.
        func read(_ argv: [String]) -> String? {
            var failure: Error?
            for attempt in 0..<3 {
                do { return try host.run(argv, input: nil, timeout: 10) } catch {
                    failure = error
                    if attempt < 2 { usleep(200_000) }
                }
            }
            failures.append("\(argv.joined(separator: " ")): \(failure.map { "\($0)" } ?? "")")
            return nil
        }
        let readings = Self.counterCommands(namespace: ns).map { read($0.argv) }
        return (counters(router: router, nft: readings[0], qdiscs: readings[1], devices: readings[2]), failures)
    }

    /// The three reads of a router's counters: nft's, the qdiscs', the devices'.
    static func counterCommands(namespace ns: String) -> [(kind: String, argv: [String])] {
        [
            ("nft", ["ip", "netns", "exec", ns, "nft", "-j", "list", "counters", "table", "inet", "vnetlab"]),
            ("tc", ["tc", "-s", "-j", "-n", ns, "qdisc", "show"]),
            ("link", ["ip", "-n", ns, "-j", "-s", "link", "show"]),
        ]
    }

    /// One router's counters by interface, from the three reads' outputs (nil: not read).
    func counters(router: String, nft nftText: String?, qdiscs qdiscText: String?, devices deviceText: String?) -> [String: InterfaceCounters] {
        let nft = nftText.flatMap { try? NFTCounters.parse($0) } ?? [:]
        let qdiscs = qdiscText.flatMap { try? RootQdiscCounters.parse($0) } ?? [:]
        let devices = deviceText.flatMap { try? DeviceCounters.parse($0) } ?? [:]
        var counters: [String: InterfaceCounters] = [:]
        for interface in plan.routerInterfaces(of: router) {
            let qdisc = qdiscs[interface]
            let device = devices[interface]
            counters["\(router):\(interface)"] = InterfaceCounters(
                mediaIn: nft[MediaCounters.inName(interface)] ?? 0, mediaOut: nft[MediaCounters.outName(interface)] ?? 0,
                blackholeIn: nft[MediaCounters.blackholeInName(interface)] ?? 0, blackholeOut: nft[MediaCounters.blackholeOutName(interface)] ?? 0,
                lossDrops: nft[MediaCounters.lossName(interface)] ?? 0,
                qdiscPackets: qdisc?.packets ?? 0, qdiscDrops: qdisc?.drops ?? 0, rxDropped: device?.rx ?? 0, txDropped: device?.tx ?? 0)
        }
        return counters
    }
}

/// `nft -j list counters`: packets by counter name.
enum NFTCounters {
    static func parse(_ json: String) throws -> [String: Int] {
        struct Document: Decodable {
            struct Entry: Decodable {
                struct Counter: Decodable {
                    var name: String
                    var packets: Int
                }
                var counter: Counter?
            }
            var nftables: [Entry]
        }
        var packets: [String: Int] = [:]
        for entry in try JSONDecoder().decode(Document.self, from: Data(json.utf8)).nftables {
            if let counter = entry.counter { packets[counter.name] = counter.packets }
        }
        return packets
    }
}

/// `tc -s -j qdisc show` of a namespace: each device's root qdisc.
enum RootQdiscCounters {
    static func parse(_ json: String) throws -> [String: (packets: Int, drops: Int)] {
        struct Raw: Decodable {
            var dev: String
            var root: Bool?
            var packets: Int?
            var drops: Int?
        }
        var roots: [String: (packets: Int, drops: Int)] = [:]
        for qdisc in try JSONDecoder().decode([Raw].self, from: Data(json.utf8)) where qdisc.root == true {
            roots[qdisc.dev] = (qdisc.packets ?? 0, qdisc.drops ?? 0)
        }
        return roots
    }
}

/// `ip -j -s link show`: each device's receive and transmit drops.
enum DeviceCounters {
    static func parse(_ json: String) throws -> [String: (rx: Int, tx: Int)] {
        struct Raw: Decodable {
            struct Stats: Decodable {
                struct Direction: Decodable { var dropped: Int? }
                var rx: Direction?
                var tx: Direction?
            }
            var ifname: String
            var stats64: Stats?
        }
        var devices: [String: (rx: Int, tx: Int)] = [:]
        for device in try JSONDecoder().decode([Raw].self, from: Data(json.utf8)) {
            devices[device.ifname] = (device.stats64?.rx?.dropped ?? 0, device.stats64?.tx?.dropped ?? 0)
        }
        return devices
    }
}

/// What the kernel says a run's VNets dropped, between two snapshots.
public struct KernelDrops: Codable, Sendable, Equatable {
    /// One direction of a link that carried media packets.
    public struct LinkDirection: Codable, Sendable, Equatable {
        public var link: String
        public var vnet: String
        public var path: String?
        /// The end the packets entered at, and the end they left at.
        public var from: String
        public var to: String
        /// Media packets routed into the link at `from`, and those that came out at `to`.
        public var entered: Int
        public var left: Int
        /// Media packets the link dropped: `entered - left`. Exact over a whole run; over a
        /// span between readings it also moves by the packets queued on the link at either
        /// reading, so the spans' figures are the drop counters below.
        public var dropped: Int
        /// Media packets its blackhole dropped (at either end), and its random loss (TBF shaper).
        public var blackholeDrops: Int
        public var lossDrops: Int
        /// What the qdisc at `from` dropped, of all traffic (OSPF hellos included).
        public var qdiscDrops: Int
        /// Media the queue dropped: `dropped - blackhole_drops - loss_drops` (exact over a run).
        public var queueDrops: Int

        enum CodingKeys: String, CodingKey {
            case link, vnet, path, from, to, entered, left, dropped
            case blackholeDrops = "blackhole_drops"
            case lossDrops = "loss_drops"
            case qdiscDrops = "qdisc_drops"
            case queueDrops = "queue_drops"
        }
    }

    /// Media packets a router took in and did not send on (no route, TTL).
    public struct Router: Codable, Sendable, Equatable {
        public var router: String
        public var vnet: String
        public var arrived: Int
        public var forwarded: Int
        public var dropped: Int
    }

    /// Per VNet: what entered it at the ingress and left it at the egress, and the drops between.
    public struct VNet: Codable, Sendable, Equatable {
        /// 1-based, as the receiver numbers paths.
        public var vnet: Int
        public var name: String
        public var entered: Int
        public var left: Int
        public var linkDrops: Int
        public var routerDrops: Int

        enum CodingKeys: String, CodingKey {
            case vnet, name, entered, left
            case linkDrops = "link_drops"
            case routerDrops = "router_drops"
        }
    }

    public var fromLabel: String
    public var toLabel: String
    public var fromS: Double
    public var toS: Double
    public var links: [LinkDirection]
    public var routers: [Router]
    public var vnets: [VNet]

    enum CodingKeys: String, CodingKey {
        case links, routers, vnets
        case fromLabel = "from"
        case toLabel = "to"
        case fromS = "from_s"
        case toS = "to_s"
    }

    /// The drops between `before` and `after`, by link direction (only directions that carried
    /// media packets), by router and by VNet. Access links end at a router's `snd`/`rcv`,
    /// counted at the router's end only: what enters the VNet is the ingress's `in_snd`, what
    /// leaves it the egress's `out_rcv`.
    public init(plan: LabPlan, from before: KernelSnapshot, to after: KernelSnapshot) {
        func delta(_ end: Topology.Endpoint) -> InterfaceCounters { after.counters(end) - before.counters(end) }
        fromLabel = before.label
        toLabel = after.label
        fromS = before.atS
        toS = after.atS
        var links: [LinkDirection] = []
        for link in plan.transitLinks {
            let a = delta(link.a)
            let b = delta(link.b)
            let vnet = plan.topology.vnets[link.vnet].name
            for (from, to, f, t) in [(link.a, link.b, a, b), (link.b, link.a, b, a)] where f.mediaOut > 0 || t.mediaIn > 0 {
                let dropped = f.mediaOut - t.mediaIn
                let blackhole = f.blackholeOut + t.blackholeIn
                links.append(
                    LinkDirection(
                        link: link.name, vnet: vnet, path: link.path, from: from.description, to: to.description, entered: f.mediaOut,
                        left: t.mediaIn, dropped: dropped, blackholeDrops: blackhole, lossDrops: f.lossDrops, qdiscDrops: f.qdiscDrops,
                        queueDrops: dropped - blackhole - f.lossDrops))
            }
        }
        var routers: [Router] = []
        var vnets: [VNet] = []
        for (index, vnet) in plan.topology.vnets.enumerated() {
            for router in vnet.routers {
                let ends = plan.routerInterfaces(of: router).map { Topology.Endpoint(node: router, interface: $0) }.map(delta)
                let arrived = ends.map(\.mediaIn).reduce(0, +)
                let forwarded = ends.map(\.mediaOut).reduce(0, +)
                routers.append(Router(router: router, vnet: vnet.name, arrived: arrived, forwarded: forwarded, dropped: arrived - forwarded))
            }
            let entered = delta(.init(node: vnet.ingress, interface: LabPlan.ingressInterface)).mediaIn
            let left = delta(.init(node: vnet.egress, interface: LabPlan.egressInterface)).mediaOut
            vnets.append(
                VNet(
                    vnet: index + 1, name: vnet.name, entered: entered, left: left,
                    linkDrops: links.filter { $0.vnet == vnet.name }.map(\.dropped).reduce(0, +),
                    routerDrops: routers.filter { $0.vnet == vnet.name }.map(\.dropped).reduce(0, +)))
        }
        self.links = links
        self.routers = routers
        self.vnets = vnets
    }
}
