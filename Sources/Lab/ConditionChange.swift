import Foundation
import Units

/// What a batch of schedule events changes, as commands: pure, so that `lab play --dry-run`
/// prints exactly what a lab would run.
extension LabPlan {
    /// The commands that take links from `conditions` (by link name; missing: the link's
    /// initial ones) and `blackholes` (link name -> the end whose `down` set holds it) to what
    /// the events say, with the state after them.
    public struct ConditionChange: Sendable {
        public var commands: [(argv: [String], input: String?)]
        public var conditions: [String: LinkConditions]
        public var blackholes: [String: String]
        /// Reservations on the access link by VNet name, after the events.
        public var reservations: [String: BitRate]
    }

    /// The transit links an event names.
    public func links(for event: Schedule.Event) throws -> [LabPlan.PlannedLink] {
        let found: [LabPlan.PlannedLink]
        switch event.target {
        case .vnet(let vnet):
            guard let index = topology.vnets.firstIndex(where: { $0.name == vnet }) else {
                throw LabError("no VNet '\(vnet)' in \(topology.name) (\(topology.vnets.map(\.name).joined(separator: ", ")))")
            }
            found = transitLinks.filter { $0.vnet == index }
        case .path(let path):
            found = transitLinks.filter { $0.path == path }
        case .link(let name):
            found = transitLinks.filter { $0.a.description == name || $0.b.description == name }
        }
        guard !found.isEmpty else { throw LabError("no link in \(topology.name) matches '\(event.target)'") }
        return found
    }

    public func change(
        _ events: [Schedule.Event], conditions: [String: LinkConditions], blackholes: [String: String],
        reservations: [String: BitRate] = [:]
    ) throws -> ConditionChange {
        var tcByNode: [String: [String]] = [:]
        var nftByNode: [String: [String]] = [:]
        var next = conditions
        var changed: [String: (link: LabPlan.PlannedLink, before: LinkConditions)] = [:]
        var nextReservations = reservations
        for event in events {
            if case .reserve(let rate) = event.change {
                nextReservations[event.target.description] = rate
                continue
            }
            // Switches are the exit's and the entry's (Lab.promote, Lab.retire), not the links'.
            if event.change.switchesVNets { continue }
            for link in try self.links(for: event) {
                if case .priority = event.change, let queue = topology.vnets[link.vnet].queue {
                    throw LabError("\(event.summary): VNet \(topology.vnets[link.vnet].name) has a queue policy (\(queue.summary)); priority and a queue policy together are not supported")
                }
                let before = next[link.name] ?? link.initial
                if changed[link.name] == nil { changed[link.name] = (link, before) }
                next[link.name] = event.apply(to: before)
            }
        }
        // A blackhole needs one end of a link; take the node most of the changed links share,
        // so that a whole path goes down or up in as few nodes (transactions) as possible.
        var shared: [String: Int] = [:]
        for entry in changed.values { for end in [entry.link.a, entry.link.b] { shared[end.node, default: 0] += 1 } }
        var blackholes = blackholes
        for (name, entry) in changed.sorted(by: { $0.key < $1.key }) {
            let link = entry.link
            let before = entry.before
            let after = next[name]!
            if after.down != before.down {
                let end: Topology.Endpoint
                if after.down {
                    end = (shared[link.b.node] ?? 0) > (shared[link.a.node] ?? 0) ? link.b : link.a
                    blackholes[name] = end.description
                } else {
                    end = [link.a, link.b].first { $0.description == blackholes[name] } ?? link.a
                    blackholes[name] = nil
                }
                nftByNode[end.node, default: []].append(InterfaceShaping.blackholeLine(interface: end.interface, down: after.down))
            }
            for end in [link.a, link.b] {
                let new = self.shaping(end, of: link, conditions: after)
                let old = self.shaping(end, of: link, conditions: before)
                if new.tcLines != old.tcLines { tcByNode[end.node, default: []] += new.tcLines }
                nftByNode[end.node, default: []] += new.nftLines(from: old.conditions)
            }
        }
        var commands: [(argv: [String], input: String?)] = []
        for (node, lines) in tcByNode.sorted(by: { $0.key < $1.key }) {
            commands.append((["tc", "-n", namespace(node), "-batch", "-"], lines.joined(separator: "\n") + "\n"))
        }
        for (node, lines) in nftByNode.sorted(by: { $0.key < $1.key }) where !lines.isEmpty {
            commands.append((["ip", "netns", "exec", namespace(node), "nft", "-f", "-"], lines.joined(separator: "\n") + "\n"))
        }
        if nextReservations != reservations { commands += try reservationCommands(from: reservations, to: nextReservations) }
        return ConditionChange(commands: commands, conditions: next, blackholes: blackholes, reservations: nextReservations)
    }
}
