import Foundation

/// Changing a running lab's conditions: the schedule's events, applied in place.
extension Lab {
    /// The transit links an event names.
    public func links(for event: Schedule.Event) throws -> [LabPlan.PlannedLink] { try plan.links(for: event) }

    /// Applies an event to every link it names, in both directions, in place (tc replace on
    /// the fixed handle; nftables chains flushed and refilled atomically), all nodes at once.
    /// Returns the commands it ran.
    @discardableResult
    public func apply(_ event: Schedule.Event) throws -> [String] { try apply([event]) }

    /// Starts ahead what applying `events` will run (`Host.startWaiting`), for `apply(_:waiting:)`
    /// at their due moment. Nil when the events cannot be planned now (`apply` says why).
    public func startWaiting(for events: [Schedule.Event]) -> (any WaitingCommands)? {
        lock.lock()
        defer { lock.unlock() }
        guard let change = try? plan.change(events, conditions: state.conditions, blackholes: state.blackholes, reservations: state.reservations) else { return nil }
        return host.startWaiting(change.commands.map(\.argv))
    }

    /// Applies events due at the same moment as one batch: one tc and one nft call per node,
    /// all nodes at once.
    /// `waiting`, from `startWaiting(for:)` with the same events, runs the commands in processes
    /// already started.
    @discardableResult
    public func apply(_ events: [Schedule.Event], waiting: (any WaitingCommands)? = nil) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        defer { waiting?.cancel() }
        let switches = events.filter(\.change.switchesVNets)
        let change = try plan.change(events, conditions: state.conditions, blackholes: state.blackholes, reservations: state.reservations)
        let commands = change.commands
        try (waiting ?? NothingWaiting(host: host)).run(commands, timeout: Command.defaultTimeout)
        lastEffective = Date()
        state.conditions = change.conditions
        state.blackholes = change.blackholes
        state.reservations = change.reservations
        try save()
        var ran = commands.map { ($0.argv.joined(separator: " ")) + ": " + ($0.input ?? "").replacingOccurrences(of: "\n", with: "; ") }
        // Switches after the links' changes, in the file's order; the batch took effect at the first switch.
        var switched: Date?
        for event in switches {
            let vnet = event.target.description
            switch event.change {
            case .promote:
                let promotion = try promoteLocked(vnet: vnet, overlapS: Self.defaultOverlapS)
                ran.append("promote \(vnet): \(promotion.standby) standby after \(number(promotion.overlapS)) s of overlap")
            case .copying(let on):
                try setCopyingLocked(shadow: vnet, on: on)
                ran.append("\(on ? "activate" : "deactivate") \(vnet): the entry copies into it \(on ? "again" : "no more")")
            default:
                ran.append("retire \(vnet): " + (try retireLocked(vnet: vnet)).joined(separator: ", "))
                lastEffective = Date()
            }
            switched = switched ?? lastEffective
        }
        if let switched { lastEffective = switched }
        return ran
    }
}
