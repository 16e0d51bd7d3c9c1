import Foundation
import Packets

/// A host of a lab spread over several machines (`[[host]]` in a topology): how to reach it,
/// its underlay, and the nodes placed on it. A topology without hosts runs on this machine, as
/// before; with hosts, a node no host lists runs on the first host, and a monitoring node runs
/// where the router it watches does.
public struct HostSpec: Codable, Sendable, Equatable {
    public var name: String
    /// An ssh destination (`root@203.0.113.7`) or `local` (this machine); nil: an emulated host
    /// (a namespace with its own sshd on this machine), or one a hosts file names.
    public var ssh: String?
    /// The underlay address its tunnels leave from; nil: the ssh destination's, when it is an
    /// IPv4 address.
    public var address: String?
    /// The device its tunnels leave by, and that device's MTU (a cross-host link's is 50 less).
    public var underlayDevice: String
    public var underlayMTU: Int
    public var nodes: [String]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, ssh, address, nodes
        case underlayDevice = "underlay_device"
        case underlayMTU = "underlay_mtu"
    }

    public init(
        name: String, ssh: String? = nil, address: String? = nil, underlayDevice: String = "eth0", underlayMTU: Int = 1500, nodes: [String] = []
    ) {
        self.name = name
        self.ssh = ssh
        self.address = address
        self.underlayDevice = underlayDevice
        self.underlayMTU = underlayMTU
        self.nodes = nodes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name), ssh: try c.decodeIfPresent(String.self, forKey: .ssh),
            address: try c.decodeIfPresent(String.self, forKey: .address),
            underlayDevice: try c.decodeIfPresent(String.self, forKey: .underlayDevice) ?? "eth0",
            underlayMTU: try c.decodeIfPresent(Int.self, forKey: .underlayMTU) ?? 1500, nodes: try c.decodeIfPresent([String].self, forKey: .nodes) ?? [])
    }

    /// `address`, or the ssh destination's host part when that is an IPv4 address.
    public var underlayAddress: String? {
        if let address { return address }
        guard let ssh, ssh != "local" else { return nil }
        let host = ssh.split(separator: "@").last.map(String.init) ?? ssh
        return IPv4Address(host) != nil ? host : nil
    }

    public static let maximumHosts = 200
}

extension Topology {
    /// The host node `node` runs on (nil: the topology has no hosts: this machine).
    public func host(of node: String) -> String? {
        guard let first = hosts.first else { return nil }
        if let host = hosts.first(where: { $0.nodes.contains(node) }) { return host.name }
        let moni = MonitorPlan.moniNode("")
        if node.hasPrefix(moni), let host = hosts.first(where: { $0.nodes.contains(String(node.dropFirst(moni.count))) }) { return host.name }
        return first.name
    }

    /// Hosts named once each, in the node-name alphabet; each listed node a node of the
    /// topology, listed once; underlay addresses IPv4 and distinct.
    func validateHosts(nodes: Set<String>, fail: (String) -> LabError) throws {
        guard hosts.count <= HostSpec.maximumHosts else { throw fail("a topology has at most \(HostSpec.maximumHosts) hosts") }
        var names: Set<String> = []
        var placed: [String: String] = [:]
        var addresses: [String: String] = [:]
        for host in hosts {
            guard Self.isNodeName(host.name), names.insert(host.name).inserted else {
                throw fail("[[host]] '\(host.name)': a host name must be unique, 1-8 letters, digits or '-'")
            }
            if let ssh = host.ssh, ssh.isEmpty || ssh.contains(where: \.isWhitespace) || ssh.hasPrefix("-") {
                throw fail("[[host]] \(host.name): ssh '\(ssh)' is not a destination (user@address, or local)")
            }
            if let address = host.address, IPv4Address(address) == nil {
                throw fail("[[host]] \(host.name): address '\(address)' is not an IPv4 address")
            }
            if let address = host.underlayAddress, let other = addresses.updateValue(host.name, forKey: address) {
                throw fail("[[host]] \(host.name): underlay address \(address) is \(other)'s too")
            }
            guard Self.isInterfaceName(host.underlayDevice) else {
                throw fail("[[host]] \(host.name): underlay_device '\(host.underlayDevice)' is not an interface name of 1-15 characters")
            }
            guard (1280...65535).contains(host.underlayMTU) else {
                throw fail("[[host]] \(host.name): underlay_mtu \(host.underlayMTU) is not 1280-65535")
            }
            for node in host.nodes {
                guard nodes.contains(node) else {
                    throw fail("[[host]] \(host.name): node '\(node)' is not a node of the topology (\(nodes.sorted().joined(separator: ", ")))")
                }
                if let other = placed.updateValue(host.name, forKey: node) {
                    throw fail("node '\(node)' is placed on two hosts, \(other) and \(host.name)")
                }
            }
        }
        if hosts.filter({ $0.ssh == "local" }).count > 1 { throw fail("only one [[host]] can be local (this machine)") }
    }
}
