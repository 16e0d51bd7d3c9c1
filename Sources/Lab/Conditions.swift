import Foundation

/// Changing a running lab's conditions: the schedule's events, applied in place.
extension Lab {
    /// The transit links an event names.
    public func links(for event: Schedule.Event) throws -> [LabPlan.PlannedLink] {
        let found: [LabPlan.PlannedLink]
        switch event.target {
        case .vnet(let vnet):
            guard let index = plan.topology.vnets.firstIndex(where: { $0.name == vnet }) else {
                throw LabError("no VNet '\(vnet)' in \(plan.topology.name) (\(plan.topology.vnets.map(\.name).joined(separator: ", ")))")
            }
            found = plan.transitLinks.filter { $0.vnet == index }
        case .path(let path):
            found = plan.transitLinks.filter { $0.path == path }
        case .link(let name):
            found = plan.transitLinks.filter { $0.a.description == name || $0.b.description == name }
        }
        guard !found.isEmpty else { throw LabError("no link in \(plan.topology.name) matches '\(event.target)'") }
        return found
    }

    /// Applies an event to every link it names, in both directions, in place (tc replace on
    /// the fixed handle; nftables chains flushed and refilled atomically), all nodes at once.
    /// Returns the commands it ran.
    @discardableResult
    public func apply(_ event: Schedule.Event) throws -> [String] { try apply([event]) }

    /// Applies events due at the same moment as one batch: one tc and one nft call per node,
    /// all nodes at once.
    @discardableResult
    public func apply(_ events: [Schedule.Event]) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        var tcByNode: [String: [String]] = [:]
        var nftByNode: [String: [String]] = [:]
        var next = state.conditions
        var changed: [String: (link: LabPlan.PlannedLink, before: LinkConditions)] = [:]
        for event in events {
            for link in try links(for: event) {
                let before = next[link.name] ?? link.initial
                if changed[link.name] == nil { changed[link.name] = (link, before) }
                next[link.name] = event.apply(to: before)
            }
        }
        // A blackhole needs one end of a link; take the node most of the changed links share,
        // so that a whole path goes down or up in as few nodes (transactions) as possible.
        var shared: [String: Int] = [:]
        for entry in changed.values { for end in [entry.link.a, entry.link.b] { shared[end.node, default: 0] += 1 } }
        var blackholes = state.blackholes
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
                let shaping = plan.shaping(end, of: link, conditions: after)
                let old = plan.shaping(end, of: link, conditions: before)
                if shaping.tcLines != old.tcLines { tcByNode[end.node, default: []] += shaping.tcLines }
                nftByNode[end.node, default: []] += shaping.nftLines(from: old.conditions)
            }
        }
        var commands: [(argv: [String], input: String?)] = []
        for (node, lines) in tcByNode {
            commands.append((["tc", "-n", plan.namespace(node), "-batch", "-"], lines.joined(separator: "\n") + "\n"))
        }
        for (node, lines) in nftByNode where !lines.isEmpty {
            commands.append((["ip", "netns", "exec", plan.namespace(node), "nft", "-f", "-"], lines.joined(separator: "\n") + "\n"))
        }
        try host.runConcurrently(commands)
        lastEffective = Date()
        state.conditions = next
        state.blackholes = blackholes
        try save()
        return commands.map { ($0.argv.joined(separator: " ")) + ": " + ($0.input ?? "").replacingOccurrences(of: "\n", with: "; ") }
    }
}
