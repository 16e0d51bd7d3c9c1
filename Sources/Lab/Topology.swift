import Foundation
import Packets
import TOMLKit
import Units

/// A VNet lab as data: nodes, links, costs, timers. Nothing touches the kernel until `Lab.up`.
/// Written as TOML (see `Experiments/topologies/paper-fig6.toml` and `Docs/lab.md`).
public struct Topology: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    /// The sending host: it holds one tun per VNet, with policy routing into that VNet.
    public var sender: String
    /// The receiving host, reached over every VNet.
    public var receiver: String
    /// The receiver's address, on its loopback; every VNet routes to it.
    public var receiverAddress: String
    public var vnets: [VNet]
    /// Traffic classes: the sender node, as the VNets' edge router, sends packets to the
    /// receiver into the VNet of their TT mark (see `Docs/lab.md`, "Traffic classes").
    public var classes: [TrafficClass]
    /// Where the edge sends the receiver's traffic that matches no class (ordinary sockets in
    /// the sender node); nil: the first VNet.
    public var defaultVNet: String?
    /// Provisioned access (`Access.swift`): one access link from the sender to an access router
    /// in front of every VNet, with a reservation per VNet; nil: a link per VNet, unshaped.
    public var access: Access?
    /// Monitoring VNets (`Monitor.swift`): a monitoring node beside each watched router.
    public var monitors: [Monitor]
    /// The hosts the lab is spread over (`HostPlacement.swift`); empty: this machine.
    public var hosts: [HostSpec]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, sender, receiver, access
        case monitors = "monitor"
        case hosts = "host"
        case receiverAddress = "receiver_address"
        case vnets = "vnet"
        case classes = "class"
        case defaultVNet = "default_vnet"
    }

    /// Read, not written: a `[[shadow]]` is written as the VNet it became.
    enum ShadowKey: String, CodingKey { case shadow }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        sender = try c.decode(String.self, forKey: .sender)
        receiver = try c.decode(String.self, forKey: .receiver)
        receiverAddress = try c.decode(String.self, forKey: .receiverAddress)
        vnets = try c.decode([VNet].self, forKey: .vnets)
        // `[[shadow]]` sections become VNets of their own (clones), as the lab builds them.
        for shadow in try decoder.container(keyedBy: ShadowKey.self).decodeIfPresent([Shadow].self, forKey: .shadow) ?? [] {
            vnets.append(try shadow.clone(in: vnets))
        }
        classes = try c.decodeIfPresent([TrafficClass].self, forKey: .classes) ?? []
        defaultVNet = try c.decodeIfPresent(String.self, forKey: .defaultVNet)
        access = try c.decodeIfPresent(Access.self, forKey: .access)
        monitors = try c.decodeIfPresent([Monitor].self, forKey: .monitors) ?? []
        hosts = try c.decodeIfPresent([HostSpec].self, forKey: .hosts) ?? []
    }

    /// A traffic class: packets whose TT field carries `tt` (its DSCP: the TOS byte's top six
    /// bits) go into VNet `vnet`.
    public struct TrafficClass: Codable, Sendable, Equatable {
        public var name: String
        /// A DSCP name (`EF`, `AF11`) or the TOS byte (`0xb8`); its two ECN bits must be zero.
        public var tt: String
        public var vnet: String

        public var mark: TrafficMark { get throws { try TrafficMark(parsing: tt) } }
    }

    /// Queue management on every shaped link of a VNet: RED where the kernel has `sch_red`,
    /// otherwise a tail-drop queue limit at RED's max threshold (named in the results).
    /// Thresholds count packets of `packet_bytes`, as in the paper's Click RED.
    public struct QueuePolicy: Codable, Sendable, Equatable {
        public var redMinPackets: Double
        public var redMaxPackets: Double
        public var redProbability: Double
        /// The packet size the thresholds count (tc's avpkt), bytes.
        public var packetBytes: Int
        /// The hard limit of the RED queue, packets (default 4 x the max threshold).
        public var limitPackets: Int

        enum CodingKeys: String, CodingKey, CaseIterable {
            case redMinPackets = "red_min_packets"
            case redMaxPackets = "red_max_packets"
            case redProbability = "red_probability"
            case packetBytes = "packet_bytes"
            case limitPackets = "limit_packets"
        }

        public init(redMinPackets: Double, redMaxPackets: Double, redProbability: Double, packetBytes: Int, limitPackets: Int? = nil) {
            self.redMinPackets = redMinPackets
            self.redMaxPackets = redMaxPackets
            self.redProbability = redProbability
            self.packetBytes = packetBytes
            self.limitPackets = limitPackets ?? Int((redMaxPackets * 4).rounded(.up))
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                redMinPackets: try c.number(.redMinPackets) ?? 0, redMaxPackets: try c.number(.redMaxPackets) ?? 0,
                redProbability: try c.number(.redProbability) ?? 0, packetBytes: Int(try c.number(.packetBytes) ?? 1000),
                limitPackets: try c.number(.limitPackets).map { Int($0) })
        }

        func validate() throws {
            guard redMinPackets > 0, redMaxPackets > redMinPackets else {
                throw LabError("queue: red_min_packets must be positive and red_max_packets larger")
            }
            guard redProbability > 0, redProbability <= 1 else { throw LabError("queue: red_probability must be in (0, 1]") }
            guard (64...65535).contains(packetBytes) else { throw LabError("queue: packet_bytes must be 64-65535") }
            guard Double(limitPackets) >= redMaxPackets else { throw LabError("queue: limit_packets must be at least red_max_packets") }
        }

        /// `RED min 2 max 10 p 0.02 (packets of 256 B)`.
        public var summary: String {
            "RED min \(redMinPackets.plainText) max \(redMaxPackets.plainText) p \(redProbability.plainText) (packets of \(packetBytes) B)"
        }
    }

    /// One virtual network: its routers, its links, its OSPF instance.
    public struct VNet: Codable, Sendable, Equatable {
        public var name: String
        /// The sender's tun interface into this VNet.
        public var tun: String
        /// OSPF hello and dead intervals, seconds.
        public var helloS: Int
        public var deadS: Int
        public var routers: [String]
        /// The router the sender attaches to, and the one the receiver attaches to.
        public var ingress: String
        public var egress: String
        public var links: [Link]
        /// Queue management on its links (nil: the shaper's plain queue).
        public var queue: QueuePolicy?
        /// Its reservation on the access link (`reserve = "15mbit"`; needs `[access]`); nil: its
        /// traffic shares the legacy class there.
        public var reserve: String?
        /// The production VNet this one shadows (`Shadow.swift`): it gets a copy of everything
        /// that enters that VNet, and its output reaches the receiver only once promoted.
        public var shadowOf: String?
        /// Strict priority on its links for this DSCP (`priority = "EF"`, InterfaceShaping.priorityLines).
        public var priority: String?
        /// Its own address space for the links between its routers (`address_space =
        /// "10.0.0.0/24"`; /30s from it in order), which other VNets may share; nil: /30s from
        /// the lab's 198.19.0.0/16, unique across the lab.
        public var addressSpace: String?
        /// Multicast groups it carries (`Multicast.swift`).
        public var groups: [MulticastGroup]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, tun, routers, ingress, egress, queue, reserve, priority
            case groups = "group"
            case addressSpace = "address_space"
            case shadowOf = "shadow_of"
            case helloS = "hello_s"
            case deadS = "dead_s"
            case links = "link"
        }

        /// A VNet of one router (ingress and egress at once) has no links.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            tun = try c.decode(String.self, forKey: .tun)
            helloS = try c.decode(Int.self, forKey: .helloS)
            deadS = try c.decode(Int.self, forKey: .deadS)
            routers = try c.decode([String].self, forKey: .routers)
            ingress = try c.decode(String.self, forKey: .ingress)
            egress = try c.decode(String.self, forKey: .egress)
            links = try c.decodeIfPresent([Link].self, forKey: .links) ?? []
            queue = try c.decodeIfPresent(QueuePolicy.self, forKey: .queue)
            reserve = try c.decodeIfPresent(String.self, forKey: .reserve)
            shadowOf = try c.decodeIfPresent(String.self, forKey: .shadowOf)
            priority = try c.decodeIfPresent(String.self, forKey: .priority)
            addressSpace = try c.decodeIfPresent(String.self, forKey: .addressSpace)
            groups = try c.decodeIfPresent([MulticastGroup].self, forKey: .groups) ?? []
        }
    }

    /// A link between two routers of a VNet, as `node:interface` endpoints (containerlab's way).
    public struct Link: Codable, Sendable, Equatable {
        public var endpoints: [String]
        /// OSPF cost, both directions.
        public var cost: Int
        /// The path this link belongs to (`P1,1`), so that events can name the path.
        public var path: String?
        /// Conditions at lab up, both directions (events change them later).
        public var rate: String?
        public var delayMs: Double?
        public var jitterMs: Double?
        public var lossPct: Double?
        public var queueMs: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case endpoints, cost, path, rate
            case delayMs = "delay_ms"
            case jitterMs = "jitter_ms"
            case lossPct = "loss_pct"
            case queueMs = "queue_ms"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            endpoints = try c.decode([String].self, forKey: .endpoints)
            cost = try c.decode(Int.self, forKey: .cost)
            path = try c.decodeIfPresent(String.self, forKey: .path)
            rate = try c.decodeIfPresent(String.self, forKey: .rate)
            delayMs = try c.number(.delayMs)
            jitterMs = try c.number(.jitterMs)
            lossPct = try c.number(.lossPct)
            queueMs = try c.number(.queueMs)
        }

        public var a: Endpoint { Endpoint(endpoints[0]) }
        public var b: Endpoint { Endpoint(endpoints[1]) }

        /// The conditions this link starts with.
        public func conditions() throws -> LinkConditions {
            var conditions = LinkConditions()
            if let rate { conditions.rate = try BitRate(parsing: rate) }
            conditions.delayMs = delayMs ?? 0
            conditions.jitterMs = jitterMs ?? 0
            conditions.lossPct = lossPct ?? 0
            if let queueMs { conditions.queueMs = queueMs }
            return conditions
        }
    }

    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var node: String
        public var interface: String

        public init(node: String, interface: String) {
            self.node = node
            self.interface = interface
        }

        init(_ text: String) {
            let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
            node = parts.first ?? ""
            interface = parts.count > 1 ? parts[1] : ""
        }

        public var description: String { "\(node):\(interface)" }
    }

    /// Reads and checks a topology file.
    public static func load(_ path: String) throws -> Topology {
        let topology = try loadTOML(Topology.self, from: path, kind: "topology")
        try topology.validate(file: path)
        return topology
    }

    /// Checks that names are unique and short enough, that links join routers of their own
    /// VNet, and that every VNet can reach its egress from its ingress.
    public func validate(file: String = "topology") throws {
        func fail(_ message: String) -> LabError { LabError("\(file): \(message)") }
        var nodes: Set<String> = [sender, receiver]
        guard sender != receiver else { throw fail("sender and receiver must be different nodes") }
        for node in access?.nodes ?? [] {
            guard nodes.insert(node).inserted else { throw fail("[access]: node '\(node)' is named twice") }
        }
        guard IPv4Address(receiverAddress) != nil else { throw fail("receiver_address '\(receiverAddress)' is not an IPv4 address") }
        guard !vnets.isEmpty, vnets.count <= 32 else { throw fail("a topology has 1 to 32 VNets") }
        var tuns: Set<String> = []
        for name in [sender, receiver] where !Self.isNodeName(name) {
            throw fail("node name '\(name)' must be 1-8 letters, digits or '-'")
        }
        for vnet in vnets {
            guard tuns.insert(vnet.tun).inserted, Self.isInterfaceName(vnet.tun) else {
                throw fail("VNet \(vnet.name): tun '\(vnet.tun)' must be a unique interface name of 1-15 characters")
            }
            guard vnet.helloS > 0, vnet.deadS > vnet.helloS else {
                throw fail("VNet \(vnet.name): hello_s must be positive and dead_s larger than hello_s")
            }
            for router in vnet.routers {
                guard Self.isNodeName(router) else { throw fail("router name '\(router)' must be 1-8 letters, digits or '-'") }
                guard nodes.insert(router).inserted else { throw fail("node '\(router)' is named twice") }
            }
            let routers = Set(vnet.routers)
            guard routers.contains(vnet.ingress), routers.contains(vnet.egress) else {
                throw fail("VNet \(vnet.name): ingress and egress must be among its routers")
            }
            var interfaces: Set<Endpoint> = []
            var adjacency: [String: [String]] = [:]
            for link in vnet.links {
                guard link.endpoints.count == 2 else { throw fail("VNet \(vnet.name): a link has two endpoints") }
                for end in [link.a, link.b] {
                    guard routers.contains(end.node) else {
                        throw fail("VNet \(vnet.name): link endpoint \(end) is not on one of its routers")
                    }
                    guard Self.isInterfaceName(end.interface), interfaces.insert(end).inserted else {
                        throw fail("VNet \(vnet.name): endpoint \(end) needs a unique interface name of 1-15 characters")
                    }
                }
                guard link.cost > 0, link.cost < 65535 else { throw fail("VNet \(vnet.name): link cost must be 1-65534") }
                do { _ = try link.conditions() } catch { throw fail("VNet \(vnet.name): link \(link.a)-\(link.b): \(error)") }
                adjacency[link.a.node, default: []].append(link.b.node)
                adjacency[link.b.node, default: []].append(link.a.node)
            }
            var seen: Set<String> = [vnet.ingress]
            var queue = [vnet.ingress]
            while let node = queue.popLast() {
                for next in adjacency[node] ?? [] where seen.insert(next).inserted { queue.append(next) }
            }
            guard seen.contains(vnet.egress) else { throw fail("VNet \(vnet.name): no link path from \(vnet.ingress) to \(vnet.egress)") }
        }
        guard Set(vnets.map(\.name)).count == vnets.count else { throw fail("VNet names must be unique") }
        for vnet in vnets {
            do { try vnet.queue?.validate() } catch { throw fail("VNet \(vnet.name): \(error)") }
            do { _ = try vnet.space() } catch { throw fail("VNet \(vnet.name): \(error)") }
            if let priority = vnet.priority {
                do { _ = try TrafficMark(parsing: priority) } catch { throw fail("VNet \(vnet.name): priority: \(error)") }
                guard vnet.queue == nil else { throw fail("VNet \(vnet.name): priority and a queue policy together are not supported") }
            }
        }
        let names = vnets.map(\.name).joined(separator: ", ")
        if let defaultVNet, !vnets.contains(where: { $0.name == defaultVNet }) {
            throw fail("default_vnet '\(defaultVNet)' is not a VNet (\(names))")
        }
        var dscps: [UInt8: String] = [:]
        for cls in classes {
            let mark: TrafficMark
            do { mark = try cls.mark } catch { throw fail("class '\(cls.name)': \(error)") }
            guard mark.tos & 0x03 == 0 else {
                throw fail("class '\(cls.name)': tt \(cls.tt) sets ECN bits; a class is a DSCP (the TOS byte's top six bits)")
            }
            guard vnets.contains(where: { $0.name == cls.vnet }) else { throw fail("class '\(cls.name)': no VNet '\(cls.vnet)' (\(names))") }
            if let other = dscps.updateValue(cls.name, forKey: mark.dscp) {
                throw fail("classes '\(other)' and '\(cls.name)' have the same DSCP \(mark.dscp)")
            }
        }
        guard Set(classes.map(\.name)).count == classes.count else { throw fail("class names must be unique") }
        for vnet in vnets {
            guard let of = vnet.shadowOf else { continue }
            guard let production = vnets.first(where: { $0.name == of }), production.shadowOf == nil else {
                throw fail("VNet \(vnet.name): shadow_of '\(of)' is not a production VNet (\(names))")
            }
            guard vnets.filter({ $0.shadowOf == of }).count == 1 else { throw fail("VNet \(of) has more than one shadow") }
            guard vnet.reserve == nil else { throw fail("VNet \(vnet.name): a shadow takes no reservation (its production's traffic is copied to it)") }
        }
        if let access {
            do { try access.validate(vnets: vnets, classes: classes, defaultVNet: defaultVNet) } catch { throw fail("\(error)") }
        } else if let vnet = vnets.first(where: { $0.reserve != nil }) {
            throw fail("VNet \(vnet.name): reserve needs an [access] section (the access link it reserves on)")
        }
        var watched: Set<String> = []
        for monitor in monitors {
            do { try monitor.validate(vnets: vnets) } catch { throw fail("\(error)") }
            for router in monitor.watched(in: vnets.first { $0.name == monitor.vnet }!) where !watched.insert(router).inserted {
                throw fail("[[monitor]]: router '\(router)' is watched twice (one monitoring node per router)")
            }
        }
        try validateHosts(nodes: nodes, fail: fail)
        try validateGroups(fail: fail)
    }

    static func isNodeName(_ name: String) -> Bool {
        (1...8).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
    }

    static func isInterfaceName(_ name: String) -> Bool {
        (1...15).contains(name.utf8.count) && !name.contains("/") && !name.contains(" ") && !name.contains(":")
    }
}

/// Something the lab cannot do; the message says what and, where it can, what to do.
public struct LabError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension IPv4Address {
    func adding(_ n: UInt32) -> IPv4Address { IPv4Address(value &+ n) }
}

extension Topology: KnownKeys {
    public static var keySchema: KeySchema {
        let link = KeySchema(Link.CodingKeys.self)
        let queue = KeySchema(QueuePolicy.CodingKeys.self)
        let vnet = KeySchema(VNet.CodingKeys.self, sections: ["link": link, "queue": queue, "group": KeySchema(keys: ["address", "members"])])
        return KeySchema(
            CodingKeys.self,
            sections: [
                "vnet": vnet, "class": KeySchema(keys: ["name", "tt", "vnet"]), "access": KeySchema(Access.CodingKeys.self),
                "monitor": KeySchema(Monitor.CodingKeys.self), "host": KeySchema(HostSpec.CodingKeys.self), "shadow": KeySchema(Shadow.CodingKeys.self, sections: ["queue": queue]),
            ])
    }
}
