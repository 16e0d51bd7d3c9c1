import Foundation
import Packets
import Units

/// Monitoring VNets (the troubleshooting paper's "Moni"): beside every watched router of a
/// production VNet, a monitoring node fed by copies of the traffic that crosses the router,
/// with links of its own. The production VNet is not told: no route, address or OSPF
/// interface of it changes, and a copy never leaves the monitoring node.
///
/// Laid out as: watched router `mon` -- Moni `mir` (the mirror link, shaped at the router's
/// end); the Monis of one `[[monitor]]` in a chain in the order of `routers`, Moni k `up` --
/// Moni k-1 `down`; the first Moni's `up` -- the collector's `mN` (N: the monitor's number).
/// Moni nodes are named `mon_ROUTER`, the collector `mon_col` (a `_` no topology node has).
extension Topology {
    public struct Monitor: Codable, Sendable, Equatable {
        /// The VNet it watches.
        public var vnet: String
        /// Its routers to watch, in the chain's order (default: all of them, in the VNet's order).
        public var routers: [String]?
        /// `in`: what each watched router receives on every one of its interfaces; `out`:
        /// what it sends; `both`.
        public var direction: Direction?
        /// Which packets are copied: `all`, `stream` (the project's media packets), a DSCP
        /// (`dscp:EF`, `dscp:46`), or a UDP port (`port:5004`).
        public var traffic: String?
        /// How copies are made: `tc` (`mirred egress mirror` on a u32 filter on clsact) or
        /// `nft` (`dup to` in a netdev chain).
        public var method: Method?
        /// The mirror links' rate, shaped with TBF at the router's end: copies beyond it are
        /// dropped there, counted, and never hold the router's own traffic. Default: unshaped
        /// (the veth's own `noqueue`), the cheapest copy: a TBF in the copies' path cost this
        /// machine's router about a tenth of its forwarding rate at 64-byte packets.
        public var mirrorRate: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case vnet, routers, direction, traffic, method
            case mirrorRate = "mirror_rate"
        }

        public init(
            vnet: String, routers: [String]? = nil, direction: Direction? = nil, traffic: String? = nil, method: Method? = nil,
            mirrorRate: String? = nil
        ) {
            self.vnet = vnet
            self.routers = routers
            self.direction = direction
            self.traffic = traffic
            self.method = method
            self.mirrorRate = mirrorRate
        }

        public enum Direction: String, Codable, Sendable, CaseIterable {
            case `in`, out, both
            var hooks: [MirrorHook] {
                switch self {
                case .in: [.ingress]
                case .out: [.egress]
                case .both: [.ingress, .egress]
                }
            }
        }

        public enum Method: String, Codable, Sendable, CaseIterable {
            case tc, nft
        }

        public var directionOrDefault: Direction { direction ?? .in }
        public var methodOrDefault: Method { method ?? .tc }
        public var mirrorLinkRate: BitRate? { get throws { try mirrorRate.map(BitRate.init(parsing:)) } }
        public var filter: MirrorFilter { get throws { try MirrorFilter(parsing: traffic ?? "stream") } }

        /// The watched routers, in the chain's order.
        public func watched(in vnet: VNet) -> [String] { routers ?? vnet.routers }

        func validate(vnets: [VNet]) throws {
            guard let production = vnets.first(where: { $0.name == vnet }) else {
                throw LabError("[[monitor]]: no VNet '\(vnet)' (\(vnets.map(\.name).joined(separator: ", ")))")
            }
            let watched = watched(in: production)
            guard !watched.isEmpty, Set(watched).count == watched.count else {
                throw LabError("[[monitor]] of \(vnet): routers must name each router once")
            }
            for router in watched where !production.routers.contains(router) {
                throw LabError("[[monitor]] of \(vnet): '\(router)' is not one of its routers (\(production.routers.joined(separator: ", ")))")
            }
            for link in production.links {
                for end in [link.a, link.b] where watched.contains(end.node) && end.interface == MonitorPlan.routerMirrorInterface {
                    throw LabError("[[monitor]] of \(vnet): \(end): the interface name '\(MonitorPlan.routerMirrorInterface)' is the monitor's own")
                }
            }
            do {
                _ = try filter
                _ = try mirrorLinkRate
            } catch { throw LabError("[[monitor]] of \(vnet): \(error)") }
        }
    }
}

/// Where a copy is taken: as the router receives a packet (before its firewall), or as it
/// sends one (after its firewall, before the qdisc).
public enum MirrorHook: String, Codable, Sendable {
    case ingress, egress
}

/// Which packets a monitor copies, as a u32 match, an nft expression and a BPF filter: the
/// same packets all three ways.
public enum MirrorFilter: Sendable, Equatable, CustomStringConvertible {
    case all
    /// The project's media packets: UDP whose payload starts with the magic, wire version and kind.
    case stream
    case dscp(UInt8)
    case udpPort(UInt16)

    public init(parsing text: String) throws {
        let lower = text.lowercased()
        if lower == "all" {
            self = .all
        } else if lower == "stream" {
            self = .stream
        } else if lower.hasPrefix("dscp:") {
            let value = String(text.dropFirst(5))
            if let number = UInt8(value), number < 64 {
                self = .dscp(number)
            } else {
                do { self = .dscp(try TrafficMark(parsing: value).dscp) } catch {
                    throw LabError("traffic '\(text)': a DSCP is a name (EF, AF41) or 0-63")
                }
            }
        } else if lower.hasPrefix("port:"), let port = UInt16(text.dropFirst(5)), port > 0 {
            self = .udpPort(port)
        } else {
            throw LabError("traffic '\(text)' is none of all, stream, dscp:NAME, port:N")
        }
    }

    public var description: String {
        switch self {
        case .all: "all"
        case .stream: "stream"
        case .dscp(let d): "dscp:\(d)"
        case .udpPort(let p): "port:\(p)"
        }
    }

    /// The media magic, version and kind as the first 32 bits of a UDP payload.
    static var mediaWord: UInt32 { UInt32(Wire.magic) << 16 | UInt32(Wire.version) << 8 | UInt32(Wire.Kind.media.rawValue) }

    /// `tc filter ... u32` match arguments (IPv4 without options, as the lab's packets are).
    var u32Match: [String] {
        switch self {
        case .all: ["match", "u32", "0", "0"]
        case .stream: ["match", "ip", "protocol", "17", "0xff", "match", "u32", "0x" + String(Self.mediaWord, radix: 16), "0xffffffff", "at", "28"]
        case .dscp(let d): ["match", "ip", "dsfield", "0x" + String(d << 2, radix: 16), "0xfc"]
        case .udpPort(let p): ["match", "ip", "protocol", "17", "0xff", "match", "ip", "dport", String(p), "0xffff"]
        }
    }

    /// An nft expression for a netdev chain.
    var nftMatch: String {
        switch self {
        case .all: "meta protocol ip"
        case .stream: "meta protocol ip meta l4proto udp @th,64,32 0x" + String(Self.mediaWord, radix: 16)
        case .dscp(let d): "meta protocol ip ip dscp \(d)"
        case .udpPort(let p): "meta protocol ip udp dport \(p)"
        }
    }

    /// A pcap filter expression for the Moni's capture.
    public var bpf: String {
        switch self {
        case .all: "ip"
        case .stream: "udp and udp[8:4] = 0x" + String(Self.mediaWord, radix: 16)
        case .dscp(let d): "ip and (ip[1] & 0xfc) = 0x" + String(d << 2, radix: 16)
        case .udpPort(let p): "udp dst port \(p)"
        }
    }
}
