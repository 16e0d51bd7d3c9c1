import Foundation
import Packets

/// IP multicast inside a VNet (VIOLIN's example of a service the real network does not offer):
/// a group's packets from the sender are copied along a tree to its members.
///
/// This kernel has no multicast routing (no CONFIG_IP_MROUTE: `/proc/net/ip_mr_vif` is
/// missing), so neither smcroute nor pimd can run here. The tree is therefore forwarded by
/// nftables: at each node of the tree, `dup to NEXTHOP device IF` in the prerouting hook (after
/// the lab's loss chain there, so that a copy meets the link's conditions like any packet) sends
/// one copy per child link, and the original is dropped there (counted) unless the node is a
/// member, whose kernel delivers it to the sockets that joined the group.
extension Topology {
    /// A group a VNet carries (`[[vnet.group]]`): its address and the nodes that receive it
    /// (routers of the VNet, or the topology's receiver).
    public struct MulticastGroup: Codable, Sendable, Equatable {
        public var address: String
        public var members: [String]

        public init(address: String, members: [String]) {
            self.address = address
            self.members = members
        }

        /// Its address, checked: in 224.0.0.0/4 and beyond the link-local 224.0.0.0/24.
        public func group() throws -> IPv4Address {
            guard let address = IPv4Address(address), address.isRoutableMulticast else {
                throw LabError("group '\(address)' is not a routable IPv4 multicast address (224.0.1.0-239.255.255.255)")
            }
            return address
        }
    }

    func validateGroups(fail: (String) -> LabError) throws {
        for vnet in vnets where !vnet.groups.isEmpty {
            guard access == nil else { throw fail("VNet \(vnet.name): multicast groups with [access] are not supported") }
            var seen: Set<String> = []
            for group in vnet.groups {
                do { _ = try group.group() } catch { throw fail("VNet \(vnet.name): \(error)") }
                guard seen.insert(group.address).inserted else { throw fail("VNet \(vnet.name): group \(group.address) is named twice") }
                guard !group.members.isEmpty else { throw fail("VNet \(vnet.name): group \(group.address) has no members") }
                for member in group.members where !vnet.routers.contains(member) && member != receiver {
                    throw fail("VNet \(vnet.name): group \(group.address): member '\(member)' is neither one of its routers (\(vnet.routers.joined(separator: ", "))) nor the receiver")
                }
            }
        }
    }
}

extension LabPlan {
    /// What one node does with one group's packets: the copies it sends on, arriving on `from`.
    public struct MulticastHop: Sendable, Equatable {
        public var vnet: Int
        public var group: IPv4Address
        public var node: String
        /// The interface the group's packets arrive on (the tun, at the sender).
        public var from: String
        /// One copy out of each: the interface and the neighbour's address on that link.
        public var to: [Copy]
        /// Its own sockets receive the group (it keeps the original).
        public var member: Bool

        public struct Copy: Sendable, Equatable {
            public var interface: String
            public var nextHop: IPv4Address
        }
    }

    /// Every group's tree: the shortest paths by OSPF cost from the sender to each member, over
    /// the VNet's links and its access links; one hop per node on it.
    public func multicastHops() throws -> [MulticastHop] {
        var hops: [MulticastHop] = []
        for (index, vnet) in topology.vnets.enumerated() {
            let vnetLinks = links.filter { $0.vnet == index }
            for group in vnet.groups {
                let address = try group.group()
                // Dijkstra from the sender; `parent[node]` is the link it is reached by.
                var distance: [String: Int] = [topology.sender: 0]
                var parent: [String: PlannedLink] = [:]
                var done: Set<String> = []
                while let node = distance.filter({ !done.contains($0.key) }).min(by: { ($0.value, $0.key) < ($1.value, $1.key) })?.key {
                    done.insert(node)
                    for link in vnetLinks where link.a.node == node || link.b.node == node {
                        let next = link.a.node == node ? link.b.node : link.a.node
                        let cost = distance[node]! + link.cost
                        if cost < distance[next] ?? .max {
                            distance[next] = cost
                            parent[next] = link
                        }
                    }
                }
                var children: [String: [MulticastHop.Copy]] = [:]
                var arrival: [String: String] = [topology.sender: vnet.tun]
                var onTree: Set<String> = [topology.sender]
                for member in group.members {
                    var node = member
                    while node != topology.sender, onTree.insert(node).inserted {
                        guard let link = parent[node] else { throw LabError("VNet \(vnet.name): no path from \(topology.sender) to member \(member)") }
                        let (up, down) = link.b.node == node ? (link.a, link.b) : (link.b, link.a)
                        arrival[node] = down.interface
                        children[up.node, default: []].append(.init(interface: up.interface, nextHop: link.b.node == node ? link.bAddress : link.aAddress))
                        node = up.node
                    }
                }
                for node in nodes where onTree.contains(node) {
                    hops.append(
                        MulticastHop(
                            vnet: index, group: address, node: node, from: arrival[node]!, to: children[node] ?? [],
                            member: group.members.contains(node)))
                }
            }
        }
        return hops
    }

    /// The nftables table `vnetmcast` for `node`, or nil when no tree passes it.
    public func multicastRules(node: String) throws -> String? {
        let mine = try multicastHops().filter { $0.node == node }
        guard !mine.isEmpty else { return nil }
        var lines = ["table ip vnetmcast {", "  chain copy {", "    type filter hook prerouting priority -100; policy accept;"]
        for hop in mine {
            let match = "iifname \"\(hop.from)\" ip daddr \(hop.group)"
            for copy in hop.to { lines.append("    \(match) counter dup to \(copy.nextHop) device \"\(copy.interface)\"") }
            lines.append("    \(match) counter \(hop.member ? "accept" : "drop")")
        }
        lines += ["  }", "}"]
        return lines.joined(separator: "\n") + "\n"
    }
}

extension Lab {
    /// Puts every node's `vnetmcast` table in place (after the links, before OSPF).
    func setUpMulticast() throws {
        for node in plan.nodes {
            guard let rules = try plan.multicastRules(node: node) else { continue }
            try host.run(["ip", "netns", "exec", plan.namespace(node), "nft", "-f", "-"], input: rules)
        }
    }
}
