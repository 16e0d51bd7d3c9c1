import Foundation

/// Plays a schedule on a lab: waits for each event's time (from `start`), applies the events
/// due then as one batch, and logs each with when it was due, when it started and when it took
/// effect (the shaping commands returned), as one JSON line.
public struct SchedulePlayer {
    public let lab: Lab

    public init(lab: Lab) { self.lab = lab }

    /// One applied event, as logged.
    public struct Applied: Codable, Sendable {
        public var kind = "event"
        public var index: Int
        public var event: String
        public var atS: Double
        public var startedS: Double
        /// When the change was in place: every tc and nft command had returned.
        public var appliedS: Double
        public var lateMs: Double
        /// How much of that lateness this machine did not run us at all (`StallWatch`): a stall of
        /// the machine, not of the lab's tools. Nil in records from before it was measured.
        public var stalledMs: Double?
        public var shaper: String
        /// What the shaper could not do for this event (e.g. delay without netem).
        public var limitations: [String]

        public init(
            index: Int, event: String, atS: Double, startedS: Double, appliedS: Double, lateMs: Double, stalledMs: Double? = nil, shaper: String,
            limitations: [String]
        ) {
            self.index = index
            self.event = event
            self.atS = atS
            self.startedS = startedS
            self.appliedS = appliedS
            self.lateMs = lateMs
            self.stalledMs = stalledMs
            self.shaper = shaper
            self.limitations = limitations
        }

        enum CodingKeys: String, CodingKey {
            case kind, index, event, shaper, limitations
            case atS = "at_s"
            case startedS = "started_s"
            case appliedS = "applied_s"
            case lateMs = "late_ms"
            case stalledMs = "stalled_ms"
        }
    }

    /// How long before its due time a batch's processes are started, seconds: more than a
    /// start takes on this machine under load (290 ms seen), short enough that few wait long.
    public static let startAheadS = 1.0

    /// Plays every event; `log` gets each as it takes effect, with its JSON line, and
    /// `afterBatch` each batch of events due at one time once it is in place. Returns what was
    /// applied.
    @discardableResult
    public func play(
        _ schedule: Schedule, start: Date? = nil, afterBatch: ([Applied]) -> Void = { _ in }, log: (Applied, String) -> Void = { _, _ in }
    ) throws -> [Applied] {
        // The first tc and nft runs pay for loading; pay it before the clock starts.
        for node in Set(lab.plan.transitLinks.flatMap { [$0.a.node, $0.b.node] }).sorted().prefix(1) {
            _ = try? lab.host.run(["ip", "netns", "exec", lab.plan.namespace(node), "nft", "list", "table", "inet", "vnetlab"])
            _ = try? lab.host.run(["tc", "-n", lab.plan.namespace(node), "qdisc", "show"])
        }
        let start = start ?? Date()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var applied: [Applied] = []
        var index = 0
        while index < schedule.events.count {
            let at = schedule.events[index].atS
            var batch: [Schedule.Event] = []
            let firstApplied = applied.count
            while index + batch.count < schedule.events.count && schedule.events[index + batch.count].atS == at {
                batch.append(schedule.events[index + batch.count])
            }
            let due = start.addingTimeInterval(at)
            // The batch's processes start up to a second ahead and wait for their input.
            let lead = due.timeIntervalSinceNow - Self.startAheadS
            if lead > 0 { Thread.sleep(forTimeInterval: lead) }
            let waiting = lab.startWaiting(for: batch)
            let watch = StallWatch()
            defer { watch.stop() }
            let wait = due.timeIntervalSinceNow
            let dueUptime = ProcessInfo.processInfo.systemUptime + wait
            if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            let started = Date().timeIntervalSince(start)
            try lab.apply(batch, waiting: waiting)
            let done = (lab.lastEffective ?? Date()).timeIntervalSince(start)
            watch.stop()
            let stalled = watch.stalled(from: dueUptime, to: dueUptime + done - at)
            for (offset, event) in batch.enumerated() {
                let conditions = event.apply(to: LinkConditions())
                let record = Applied(
                    index: index + offset + 1, event: event.summary, atS: at, startedS: rounded(started), appliedS: rounded(done),
                    lateMs: rounded((done - at) * 1000), stalledMs: rounded(stalled * 1000), shaper: lab.shaper.rawValue,
                    limitations: lab.shaper.limitations(conditions))
                applied.append(record)
                log(record, String(decoding: try encoder.encode(record), as: UTF8.self))
            }
            index += batch.count
            afterBatch(Array(applied[firstApplied...]))
        }
        return applied
    }
}

func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
