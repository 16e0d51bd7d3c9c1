import Foundation

extension Lab {
    public struct Status: Codable, Sendable {
        public struct Link: Codable, Sendable {
            public var name: String
            public var vnet: String
            public var path: String?
            public var addresses: [String]
            public var conditions: LinkConditions?
            public var qdiscs: [String]
        }

        public var runID: String
        public var topology: String
        public var shaper: Shaper
        public var shaperReason: String
        public var namespaces: [String]
        public var links: [Link]
        /// `birdc show ospf neighbors` per router.
        public var ospfNeighbours: [String: String]

        enum CodingKeys: String, CodingKey {
            case topology, shaper, namespaces, links
            case runID = "run_id"
            case shaperReason = "shaper_reason"
            case ospfNeighbours = "ospf_neighbours"
        }
    }

    public func status() -> Status {
        let links = plan.links.map { link -> Status.Link in
            let qdiscs = [link.a, link.b].map { end in
                "\(end): " + ((try? host.run(["tc", "-n", plan.namespace(end.node), "qdisc", "show", "dev", end.interface, "root"])) ?? "?")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return Status.Link(
                name: link.name, vnet: plan.topology.vnets[link.vnet].name, path: link.path,
                addresses: ["\(link.a)=\(link.aAddress)", "\(link.b)=\(link.bAddress)"],
                conditions: link.access ? nil : state.conditions[link.name], qdiscs: qdiscs)
        }
        var neighbours: [String: String] = [:]
        for router in state.birds {
            neighbours[router] = (try? host.run(["birdc", "-s", file(router, "ctl"), "show", "ospf", "neighbors"])) ?? "(no answer)"
        }
        return Status(
            runID: runID, topology: plan.topology.name, shaper: shaper, shaperReason: state.shaperReason,
            namespaces: state.namespaces, links: links, ospfNeighbours: neighbours)
    }
}
