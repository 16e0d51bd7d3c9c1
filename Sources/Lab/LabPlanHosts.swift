import Foundation
import Packets

/// A command of a lab's plan and the host it runs on (nil: this machine, a one-host lab).
public struct PlacedCommand: Sendable, Equatable {
    public var host: String?
    public var argv: [String]

    public init(host: String?, argv: [String]) {
        self.host = host
        self.argv = argv
    }
}

/// Where a lab spread over hosts runs each command. Every command of the lab acts in one
/// namespace it names (`ip -n NS`, `tc -n NS`, `ip netns exec NS`, `ip netns add|del|pids NS`),
/// so the namespace says the host; only a cross-host link's first steps run in a host's own
/// namespace, and the plan places those itself.
extension LabPlan {
    /// The host of a namespace of this lab (nil: one host, or not this lab's namespace).
    public func host(ofNamespace namespace: String) -> String? {
        guard !topology.hosts.isEmpty else { return nil }
        return nodes.first { self.namespace($0) == namespace }.flatMap { topology.host(of: $0) }
    }

    /// The namespace a command acts in, as it names it.
    public static func namespace(of argv: [String]) -> String? {
        for (index, word) in argv.enumerated() where index + 1 < argv.count {
            if word == "-n" || word == "-netns" { return argv[index + 1] }
            if word == "netns", index + 2 < argv.count, ["exec", "add", "del", "delete", "pids"].contains(argv[index + 1]) { return argv[index + 2] }
        }
        return nil
    }

    /// The host a command runs on: its namespace's (nil: one host, or a command that names no
    /// namespace of this lab).
    public func host(forCommand argv: [String]) -> String? { Self.namespace(of: argv).flatMap(host(ofNamespace:)) }

    func place(_ argv: [String]) -> PlacedCommand { PlacedCommand(host: host(forCommand: argv), argv: argv) }

    /// VXLAN network identifiers of this run: a block of 4096 chosen by the run id, so that two
    /// labs over one underlay do not share a VNI (a collision is possible, one in 4000 pairs of
    /// runs; run ids of concurrent labs differ anyway).
    public var vniBase: UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in runID.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return (hash % 4000 + 1) << 12
    }

    /// A link's steps: a veth pair when both ends are on one host, a VXLAN pair otherwise.
    func linkSteps(_ link: PlannedLink, index: Int) -> [PlacedCommand] {
        guard let (cross, hostA, hostB) = crossing(link, index: index) else { return link.vethCommands(namespace: namespace).map(place) }
        return cross.commands(at: cross.a, peer: cross.b, underlayMTU: hostA.underlayMTU).map { PlacedCommand(host: hostA.name, argv: $0) }
            + cross.commands(at: cross.b, peer: cross.a, underlayMTU: hostB.underlayMTU).map { PlacedCommand(host: hostB.name, argv: $0) }
    }

    /// The link as a VXLAN pair, with its ends' hosts, when its ends are on different hosts.
    func crossing(_ link: PlannedLink, index: Int) -> (link: CrossHostLink, a: HostSpec, b: HostSpec)? {
        guard let a = topology.host(of: link.a.node), let b = topology.host(of: link.b.node), a != b,
            let specA = topology.hosts.first(where: { $0.name == a }), let specB = topology.hosts.first(where: { $0.name == b })
        else { return nil }
        func end(_ spec: HostSpec, _ endpoint: Topology.Endpoint, _ address: IPv4Address) -> CrossHostLink.End {
            CrossHostLink.End(
                underlayAddress: underlay[spec.name] ?? spec.underlayAddress ?? "", underlayDevice: spec.underlayDevice,
                namespace: namespace(endpoint.node), device: endpoint.interface, address: "\(address)/30")
        }
        // The plan checked the VNI range and the names when it was made.
        let cross = try! CrossHostLink(vni: vniBase + UInt32(index), a: end(specA, link.a, link.aAddress), b: end(specB, link.b, link.bAddress))
        return (cross, specA, specB)
    }

    /// The MTU of VNet `vnet`'s smallest link when some of its links cross hosts (the sender's
    /// tun into it gets that MTU, and the sender's packets fit every link); nil: 1500 throughout.
    public func mtu(vnet: Int) -> Int? {
        links.filter { $0.vnet == vnet }.compactMap { link -> Int? in
            guard let a = topology.host(of: link.a.node), let b = topology.host(of: link.b.node), a != b else { return nil }
            let mtus = topology.hosts.filter { $0.name == a || $0.name == b }.map(\.underlayMTU)
            return (mtus.min() ?? 1500) - CrossHostLink.overhead
        }.min()
    }

    /// The links between nodes on different hosts, as VXLAN pairs.
    public var crossHostLinks: [CrossHostLink] {
        (links + extraLinks).enumerated().compactMap { index, link in crossing(link, index: index)?.link }
    }

    /// Every host a cross-host link leaves from has an underlay address; at most 4096 links.
    func checkUnderlay() throws {
        guard !topology.hosts.isEmpty else { return }
        guard links.count + extraLinks.count <= 4096 else { throw LabError("a lab over hosts has at most 4096 links (one VNI block)") }
        guard topology.monitors.isEmpty else {
            throw LabError("[[monitor]] in a lab over hosts is not built yet: the monitoring VNets' own links would cross hosts")
        }
        for link in links + extraLinks {
            guard let a = topology.host(of: link.a.node), let b = topology.host(of: link.b.node), a != b else { continue }
            for name in [a, b] where (underlay[name] ?? topology.hosts.first { $0.name == name }?.underlayAddress) == nil {
                throw LabError(
                    "link \(link.name) crosses from host \(a) to \(b), and host \(name) has no underlay address: give it address = \"IPv4\" or ssh = \"user@IPv4\"")
            }
        }
    }
}
