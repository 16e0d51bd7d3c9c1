import Foundation
import Packets
import TOMLKit
import Units

/// Timed condition shifts, relative to the start of a run (`Experiments/schedules/*.toml`).
public struct Schedule: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var events: [Event]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description
        case events = "event"
    }

    public init(name: String, description: String? = nil, events: [Event]) {
        self.name = name
        self.description = description
        self.events = events
    }

    /// One change to one target at one moment.
    public struct Event: Codable, Sendable, Equatable {
        public var atS: Double
        public var target: Target
        public var change: Change

        /// What an event changes: every link of a VNet, every link of a path, or one link
        /// (named by either endpoint, `in1:p11`).
        public enum Target: Sendable, Equatable, CustomStringConvertible {
            case vnet(String)
            case path(String)
            case link(String)

            public var description: String {
                switch self {
                case .vnet(let name), .path(let name), .link(let name): name
                }
            }
        }

        /// How it changes: new conditions (each one given replaces the link's), a blackhole
        /// in both directions (`down`) and its end (`up`), a VNet's new reservation on the
        /// access link (`reserve = RATE`, with `vnet`), strict priority for one DSCP on the
        /// links (`priority = "EF"`, `"none"` to end it), or, for a VNet and its shadow, the
        /// switch of `lab promote`, the removal of `lab retire`, and copying into a shadow
        /// started or stopped (`action` = promote, retire, activate, deactivate; with `vnet`).
        public enum Change: Sendable, Equatable {
            case shape(Shape)
            case down
            case up
            case reserve(BitRate)
            case priority(TrafficMark?)
            case promote
            case retire
            /// Copying into a shadow VNet starts (`activate`) or stops (`deactivate`).
            case copying(Bool)

            /// Whether it acts on a shadow pair rather than on links.
            public var switchesVNets: Bool {
                switch self {
                case .promote, .retire, .copying: true
                default: false
                }
            }
        }

        /// The conditions an event sets; nil leaves one as it is.
        public struct Shape: Sendable, Equatable {
            public var rate: BitRate?
            public var delayMs: Double?
            public var jitterMs: Double?
            public var lossPct: Double?

            public init(rate: BitRate? = nil, delayMs: Double? = nil, jitterMs: Double? = nil, lossPct: Double? = nil) {
                self.rate = rate
                self.delayMs = delayMs
                self.jitterMs = jitterMs
                self.lossPct = lossPct
            }
        }

        public init(atS: Double, target: Target, change: Change) {
            self.atS = atS
            self.target = target
            self.change = change
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case vnet, path, link, rate, action, reserve, priority
            case atS = "at_s"
            case delayMs = "delay_ms"
            case jitterMs = "jitter_ms"
            case lossPct = "loss_pct"
        }

        /// The file's form: `at_s`, exactly one of `vnet`, `path`, `link`, then one of:
        /// conditions (`rate`, `delay_ms`, `jitter_ms`, `loss_pct`), `action = "down"|"up"`,
        /// `reserve = RATE`, `priority = DSCP|"none"`, or `action = "promote"|"retire"|"activate"|"deactivate"` (a VNet).
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let number = (c.codingPath.last?.intValue).map { $0 + 1 }
            let at = try c.number(.atS)
            func fail(_ message: String) -> LabError {
                LabError("event \(number.map(String.init) ?? "?")\(at.map { " (at \($0.plainText) s)" } ?? ""): \(message)")
            }
            guard let at else { throw fail("every event needs at_s") }
            guard at >= 0, at.isFinite else { throw fail("at_s must be zero or more") }
            atS = at
            let targets: [Target] = [
                try c.decodeIfPresent(String.self, forKey: .vnet).map(Target.vnet),
                try c.decodeIfPresent(String.self, forKey: .path).map(Target.path),
                try c.decodeIfPresent(String.self, forKey: .link).map(Target.link),
            ].compactMap { $0 }
            guard targets.count == 1 else { throw fail("name exactly one of vnet, path or link") }
            target = targets[0]
            let shape = Shape(
                rate: try c.decodeIfPresent(String.self, forKey: .rate).map { text in
                    do { return try BitRate(parsing: text) } catch { throw fail("\(error)") }
                },
                delayMs: try c.number(.delayMs), jitterMs: try c.number(.jitterMs), lossPct: try c.number(.lossPct))
            if let loss = shape.lossPct, !(0...100).contains(loss) { throw fail("loss_pct is 0 to 100") }
            for value in [shape.delayMs, shape.jitterMs].compactMap({ $0 }) where !(value >= 0) {
                throw fail("delay_ms and jitter_ms are zero or more")
            }
            let reshapes = shape != Shape()
            if let text = try c.decodeIfPresent(String.self, forKey: .priority) {
                guard !reshapes, !c.contains(.action), !c.contains(.reserve) else {
                    throw fail("an event either sets a priority or changes something else, not both: make two events")
                }
                if text.lowercased() == "none" {
                    change = .priority(nil)
                } else {
                    do { change = .priority(try TrafficMark(parsing: text)) } catch { throw fail("priority: \(error) (or \"none\")") }
                }
                return
            }
            if let text = try c.decodeIfPresent(String.self, forKey: .reserve) {
                guard case .vnet = target else { throw fail("reserve changes a VNet's reservation: name the vnet") }
                guard !reshapes, !c.contains(.action) else { throw fail("an event either changes a reservation or a link, not both: make two events") }
                let rate: BitRate
                do { rate = try BitRate(parsing: text) } catch { throw fail("reserve: \(error)") }
                guard rate.bitsPerSecond > 0 else { throw fail("reserve must be positive") }
                change = .reserve(rate)
                return
            }
            switch try c.decodeIfPresent(String.self, forKey: .action) {
            case nil:
                guard reshapes else { throw fail("says nothing to change (rate, delay_ms, jitter_ms, loss_pct, action or reserve)") }
                change = .shape(shape)
            case let action? where reshapes && (action == "down" || action == "up"):
                throw fail("an event either changes conditions or takes the target down or up, not both: make two events")
            case let action? where reshapes && Self.switches[action] != nil:
                throw fail("an event either changes conditions or switches VNets, not both: make two events")
            case "down"?: change = .down
            case "up"?: change = .up
            case let action? where Self.switches[action] != nil:
                guard case .vnet = target else { throw fail("\(action) acts on a VNet and its shadow: name the vnet") }
                change = Self.switches[action]!
            case let other?: throw fail("action is down, up, \(Self.switches.keys.sorted().joined(separator: ", ")), not '\(other)'")
            }
        }

        /// The actions that switch VNets, by their name in the file.
        static let switches: [String: Change] = ["promote": .promote, "retire": .retire, "activate": .copying(true), "deactivate": .copying(false)]

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(atS, forKey: .atS)
            switch target {
            case .vnet(let name): try c.encode(name, forKey: .vnet)
            case .path(let name): try c.encode(name, forKey: .path)
            case .link(let name): try c.encode(name, forKey: .link)
            }
            switch change {
            case .shape(let shape):
                try c.encodeIfPresent(shape.rate?.description, forKey: .rate)
                try c.encodeIfPresent(shape.delayMs, forKey: .delayMs)
                try c.encodeIfPresent(shape.jitterMs, forKey: .jitterMs)
                try c.encodeIfPresent(shape.lossPct, forKey: .lossPct)
            case .down: try c.encode("down", forKey: .action)
            case .up: try c.encode("up", forKey: .action)
            case .reserve(let rate): try c.encode(rate.description, forKey: .reserve)
            case .priority(let mark): try c.encode(mark.map { String($0.tos) } ?? "none", forKey: .priority)
            case .promote, .retire, .copying: try c.encode(Self.switches.first { $0.value == change }!.key, forKey: .action)
            }
        }

        /// A short human description: `vnet1 rate 600kbit`, `P1,1 down`.
        public var summary: String {
            var parts = [target.description]
            switch change {
            case .shape(let shape):
                if let rate = shape.rate { parts.append("rate \(rate)") }
                if let delayMs = shape.delayMs { parts.append("delay \(number(delayMs)) ms") }
                if let jitterMs = shape.jitterMs { parts.append("jitter \(number(jitterMs)) ms") }
                if let lossPct = shape.lossPct { parts.append("loss \(number(lossPct)) %") }
            case .down: parts.append("down")
            case .up: parts.append("up")
            case .reserve(let rate): parts.append("reserve \(rate)")
            case .priority(let mark): parts.append("priority \(mark.map(\.description) ?? "none")")
            case .promote, .retire, .copying: parts.append(Self.switches.first { $0.value == change }!.key)
            }
            return parts.joined(separator: " ")
        }

        /// These conditions, changed as the event says.
        public func apply(to conditions: LinkConditions) -> LinkConditions {
            var next = conditions
            switch change {
            case .shape(let shape):
                if let rate = shape.rate { next.rate = rate }
                if let delayMs = shape.delayMs { next.delayMs = delayMs }
                if let jitterMs = shape.jitterMs { next.jitterMs = jitterMs }
                if let lossPct = shape.lossPct { next.lossPct = lossPct }
            case .down: next.down = true
            case .up: next.down = false
            case .priority(let mark):
                next.priorityTOS = mark?.tos
                if mark != nil { next.priorityBands = true }
            case .reserve, .promote, .retire, .copying: break
            }
            return next
        }

        /// The path this event takes down, if it is a path failure.
        public var failedPath: String? {
            if case .path(let name) = target, change == .down { return name }
            return nil
        }
    }

    public static func load(_ path: String) throws -> Schedule {
        let schedule = try loadTOML(Schedule.self, from: path, kind: "schedule")
        try schedule.validate(file: path)
        return schedule
    }

    public func validate(file: String = "schedule") throws {
        guard events.map(\.atS) == events.map(\.atS).sorted() else {
            throw LabError("\(file): events must be in time order")
        }
    }

    /// A copy with every time multiplied by `factor` (a shortened run keeps the same shifts).
    public func scaled(by factor: Double) -> Schedule {
        var copy = self
        for index in copy.events.indices { copy.events[index].atS *= factor }
        return copy
    }
}

extension Schedule: KnownKeys {
    public static var keySchema: KeySchema { KeySchema(CodingKeys.self, sections: ["event": KeySchema(Event.CodingKeys.self)]) }
}
