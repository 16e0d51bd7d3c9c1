import Foundation

/// What OSPF made of the lab: next hops, and waiting for convergence.
extension Lab {
    /// The next hop `node` uses toward `destination` (nil when it has no route).
    public func nextHop(node: String, to destination: String) -> String? {
        struct Route: Decodable { var gateway: String? }
        guard let output = try? host.run(["ip", "-j", "-n", plan.namespace(node), "route", "get", destination]),
            let routes = try? JSONDecoder().decode([Route].self, from: Data(output.utf8))
        else { return nil }
        return routes.first?.gateway
    }

    /// The router at the far end of the link whose address `hop` is, seen from `node`.
    public func neighbour(of node: String, at hop: String) -> String? {
        for link in plan.links {
            if link.a.node == node && link.bAddress.description == hop { return link.b.node }
            if link.b.node == node && link.aAddress.description == hop { return link.a.node }
        }
        return nil
    }

    /// Waits until every VNet routes both ways through OSPF: its ingress has a route to the
    /// receiver and its egress one to the sender. Returns the seconds it took.
    @discardableResult
    public func waitForRouting(timeout: Double) throws -> Double {
        let start = Date()
        while true {
            var missing: [String] = []
            for (index, vnet) in plan.topology.vnets.enumerated() {
                let forward = (try? host.run(["ip", "-n", plan.namespace(vnet.ingress), "route", "show", "\(plan.receiverAddress)/32", "proto", "bird"])) ?? ""
                let back = (try? host.run(["ip", "-n", plan.namespace(vnet.egress), "route", "show", plan.senderPrefix(vnet: index), "proto", "bird"])) ?? ""
                if forward.isEmpty || back.isEmpty { missing.append(vnet.name) }
            }
            if missing.isEmpty { return Date().timeIntervalSince(start) }
            try Lab.checkInterrupted()
            if Date().timeIntervalSince(start) > timeout {
                throw LabError("OSPF did not converge within \(Int(timeout)) s in \(missing.joined(separator: ", ")) (vnetstream lab status shows the neighbours)")
            }
            usleep(100_000)
        }
    }
}
