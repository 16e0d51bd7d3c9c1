import Foundation
import Units

/// The access link of a running lab: its HTB classes at lab up, and reservations changed live.
extension Lab {
    func setUpAccess() throws {
        guard plan.accessRouter != nil else { return }
        state.reservations = plan.topology.reservations
        for end in plan.accessEnds {
            let ns = plan.namespace(plan.node(end))
            if let rules = plan.accessRules(at: end) { try host.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input: rules) }
            if let shaping = plan.accessShaping(at: end, reservations: state.reservations) {
                try host.run(["tc", "-n", ns, "-batch", "-"], input: shaping.tcLines.joined(separator: "\n") + "\n")
            }
        }
    }

    /// What a live reservation change did, as `lab reserve --json` prints it.
    public struct ReservationChange: Codable, Sendable {
        public var vnet: String
        public var before: BitRate?
        public var after: BitRate
        /// From the first tc command's start to the last one's return (both ends at once).
        public var tookMs: Double
        public var commands: [String]

        enum CodingKeys: String, CodingKey {
            case vnet, before, after, commands
            case tookMs = "took_ms"
        }
    }

    /// Changes VNet `vnet`'s reservation to `rate` at both ends of the access link, in place
    /// (`tc class change`), after admission; saved in the lab's state.
    @discardableResult
    public func reserve(vnet: String, rate: BitRate) throws -> ReservationChange {
        lock.lock()
        defer { lock.unlock() }
        var next = state.reservations
        next[vnet] = rate
        let commands = try plan.reservationCommands(from: state.reservations, to: next)
        let start = Date()
        try host.runConcurrently(commands)
        let took = Date().timeIntervalSince(start)
        lastEffective = Date()
        let before = state.reservations[vnet]
        state.reservations = next
        try save()
        return ReservationChange(
            vnet: vnet, before: before, after: rate, tookMs: (took * 10_000).rounded() / 10,
            commands: commands.map { $0.argv.joined(separator: " ") + ": " + ($0.input ?? "").replacingOccurrences(of: "\n", with: "; ") })
    }
}

/// One HTB class on an end of the access link, as `tc -s class show` prints it (this tc has no
/// JSON for HTB classes): its rates and what it sent and dropped.
public struct AccessClass: Codable, Sendable, Equatable {
    public var id: String
    public var rate: BitRate
    public var ceil: BitRate
    public var bytes: Int
    public var packets: Int
    public var drops: Int

    /// The classes in `tc -s class show dev IF` output, by class id.
    public static func parse(_ text: String) -> [String: AccessClass] {
        var classes: [String: AccessClass] = [:]
        var current: AccessClass?
        func flush() {
            if let current { classes[current.id] = current }
            current = nil
        }
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            if words.first == "class", words.count > 2 {
                flush()
                func value(after key: String) -> BitRate? {
                    words.firstIndex(of: key).flatMap { $0 + 1 < words.count ? try? BitRate(parsing: words[$0 + 1]) : nil }
                }
                current = AccessClass(
                    id: words[2], rate: value(after: "rate") ?? BitRate(bitsPerSecond: 0), ceil: value(after: "ceil") ?? BitRate(bitsPerSecond: 0),
                    bytes: 0, packets: 0, drops: 0)
            } else if words.first == "Sent", words.count > 5 {
                // ` Sent 14343702 bytes 9475 pkt (dropped 0, overlimits 634 requeues 0)`
                current?.bytes = Int(words[1]) ?? 0
                current?.packets = Int(words[3]) ?? 0
                current?.drops = Int(words[6].trimmingCharacters(in: CharacterSet(charactersIn: ","))) ?? 0
            }
        }
        flush()
        return classes
    }
}

extension Lab {
    /// One end's HTB classes now (empty where the topology has no such end).
    public func accessClasses(at end: AccessEnd) throws -> [String: AccessClass] {
        guard plan.accessEnds.contains(end) else { return [:] }
        return AccessClass.parse(try host.run(["tc", "-s", "-n", plan.namespace(plan.node(end)), "class", "show", "dev", plan.interface(end)]))
    }
}
