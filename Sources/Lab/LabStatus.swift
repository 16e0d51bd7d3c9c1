import Foundation
import Units

extension Lab {
    /// What a running lab is, from the kernel and bird, as data (`lab status --json`).
    public struct Status: Codable, Sendable {
        public struct Link: Codable, Sendable {
            public var name: String
            public var vnet: String
            public var path: String?
            public var conditions: LinkConditions?
            public var ends: [End]
        }

        /// One end of a link: its interface, address and the qdiscs on its egress with the
        /// kernel's counters; on a router, the media counters and device drops too.
        public struct End: Codable, Sendable {
            public var end: String
            public var address: String
            public var qdiscs: [QdiscCounters]
            public var counters: InterfaceCounters?
        }

        /// Where a VNet's ingress routes the receiver now.
        public struct VNetRoute: Codable, Sendable {
            public var vnet: String
            public var ingress: String
            public var nextHop: String?
            /// The router at the far end of that hop.
            public var nextRouter: String?

            enum CodingKeys: String, CodingKey {
                case vnet, ingress
                case nextHop = "next_hop"
                case nextRouter = "next_router"
            }
        }

        public var runID: String
        public var topology: String
        public var shaper: Shaper
        public var shaperReason: String
        public var namespaces: [String]
        public var links: [Link]
        public var vnets: [VNetRoute]
        /// Each router's OSPF neighbours as bird sees them.
        public var ospf: [String: [OSPFNeighbour]]
        /// With `[access]`: each VNet's reservation now, and each shaping end's HTB classes
        /// (`sender src:acc` -> class id -> rate, ceil, counters).
        public var reservations: [String: BitRate]?
        public var access: [String: [String: AccessClass]]?
        /// With shadows: for each production VNet, the VNet (it or its shadow) whose output passes now.
        public var production: [String: String]?
        /// Shadows not copied into now (`lab copy --off`), and VNets retired.
        public var idle: [String]?
        public var retired: [String]?

        enum CodingKeys: String, CodingKey {
            case topology, shaper, namespaces, links, vnets, ospf, reservations, access, production, idle, retired
            case runID = "run_id"
            case shaperReason = "shaper_reason"
        }
    }

    public func status() -> Status {
        let kernel = kernelSnapshot(label: "now", atS: 0)
        let links = plan.links.map { link -> Status.Link in
            let ends = [(link.a, link.aAddress), (link.b, link.bAddress)].map { end, address in
                Status.End(
                    end: end.description, address: address.description, qdiscs: qdiscCounters(node: end.node, interface: end.interface),
                    counters: kernel.interfaces[end.description])
            }
            return Status.Link(
                name: link.name, vnet: plan.topology.vnets[link.vnet].name, path: link.path,
                conditions: link.access ? nil : state.conditions[link.name], ends: ends)
        }
        let receiver = plan.topology.receiverAddress
        let routes = plan.topology.vnets.map { vnet in
            let hop = nextHop(node: vnet.ingress, to: receiver)
            return Status.VNetRoute(vnet: vnet.name, ingress: vnet.ingress, nextHop: hop, nextRouter: hop.flatMap { neighbour(of: vnet.ingress, at: $0) })
        }
        var ospf: [String: [OSPFNeighbour]] = [:]
        for router in state.birds {
            // In the router's namespace, so that a lab over hosts asks on the router's host.
            let text = (try? host.run(["ip", "netns", "exec", plan.namespace(router), "birdc", "-s", file(router, "ctl"), "show", "ospf", "neighbors"])) ?? ""
            ospf[router] = OSPFNeighbour.parse(text)
        }
        var access: [String: [String: AccessClass]]?
        for end in plan.accessEnds {
            access = access ?? [:]
            access!["\(end.rawValue) \(plan.node(end)):\(plan.interface(end))"] = (try? accessClasses(at: end)) ?? [:]
        }
        return Status(
            runID: runID, topology: plan.topology.name, shaper: shaper, shaperReason: state.shaperReason,
            namespaces: state.namespaces, links: links, vnets: routes, ospf: ospf,
            reservations: plan.topology.access == nil ? nil : state.reservations, access: access,
            production: plan.topology.shadowPairs.isEmpty ? nil : state.production, idle: state.idle.isEmpty ? nil : state.idle,
            retired: state.retired.isEmpty ? nil : state.retired)
    }

    /// The qdiscs on an interface with their counters (`tc -s -j qdisc show`); empty when tc
    /// did not answer.
    public func qdiscCounters(node: String, interface: String) -> [QdiscCounters] {
        guard let text = try? host.run(["tc", "-s", "-j", "-n", plan.namespace(node), "qdisc", "show", "dev", interface]) else { return [] }
        return (try? QdiscCounters.parse(text)) ?? []
    }
}

/// One qdisc and what the kernel counted through it.
public struct QdiscCounters: Codable, Sendable, Equatable {
    public var kind: String
    public var handle: String
    public var parent: String?
    public var bytes: Int
    public var packets: Int
    public var drops: Int
    public var overlimits: Int
    public var backlogBytes: Int
    public var queuePackets: Int

    enum CodingKeys: String, CodingKey {
        case kind, handle, parent, bytes, packets, drops, overlimits
        case backlogBytes = "backlog_bytes"
        case queuePackets = "queue_packets"
    }

    /// `tc -s -j qdisc show` output.
    public static func parse(_ json: String) throws -> [QdiscCounters] {
        struct Raw: Decodable {
            var kind: String
            var handle: String
            var parent: String?
            var bytes: Int?
            var packets: Int?
            var drops: Int?
            var overlimits: Int?
            var backlog: Int?
            var qlen: Int?
        }
        return try JSONDecoder().decode([Raw].self, from: Data(json.utf8)).map {
            QdiscCounters(
                kind: $0.kind, handle: $0.handle, parent: $0.parent, bytes: $0.bytes ?? 0, packets: $0.packets ?? 0, drops: $0.drops ?? 0,
                overlimits: $0.overlimits ?? 0, backlogBytes: $0.backlog ?? 0, queuePackets: $0.qlen ?? 0)
        }
    }
}

/// A line of `birdc show ospf neighbors`.
public struct OSPFNeighbour: Codable, Sendable, Equatable {
    public var routerID: String
    public var priority: Int
    /// `Full/PtP`, `Init/PtP`, ...
    public var state: String
    /// Seconds until the neighbour is declared dead without a hello.
    public var deadInS: Double?
    public var interface: String
    public var address: String

    enum CodingKeys: String, CodingKey {
        case priority, state, interface, address
        case routerID = "router_id"
        case deadInS = "dead_in_s"
    }

    /// The neighbour rows of bird's table (`Router ID  Pri  State  DTime  Interface  Router IP`).
    public static func parse(_ text: String) -> [OSPFNeighbour] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard f.count >= 6, let priority = Int(f[1]), f[2].contains("/"), f[0].split(separator: ".").count == 4 else { return nil }
            return OSPFNeighbour(routerID: f[0], priority: priority, state: f[2], deadInS: Double(f[3]), interface: f[4], address: f[5])
        }
    }
}
