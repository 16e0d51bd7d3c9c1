import Foundation
import TOMLKit
import Units

/// Timed condition shifts, relative to the start of a run (`Experiments/schedules/*.toml`).
public struct Schedule: Codable, Sendable, Equatable {
    public var name: String
    public var description: String?
    public var events: [Event]

    enum CodingKeys: String, CodingKey {
        case name, description
        case events = "event"
    }

    /// One change. Exactly one target: every link of a VNet, every link of a path, or one link
    /// (named by either endpoint). Then what changes: rate, delay, jitter, loss, or `action`
    /// `down` (blackhole both directions) / `up`.
    public struct Event: Codable, Sendable, Equatable {
        public var atS: Double
        public var vnet: String?
        public var path: String?
        public var link: String?
        public var rate: String?
        public var delayMs: Double?
        public var jitterMs: Double?
        public var lossPct: Double?
        public var action: String?

        enum CodingKeys: String, CodingKey {
            case vnet, path, link, rate, action
            case atS = "at_s"
            case delayMs = "delay_ms"
            case jitterMs = "jitter_ms"
            case lossPct = "loss_pct"
        }

        public init(atS: Double) { self.atS = atS }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            guard let at = try c.number(.atS) else {
                throw DecodingError.keyNotFound(CodingKeys.atS, .init(codingPath: c.codingPath, debugDescription: "every event needs at_s"))
            }
            atS = at
            vnet = try c.decodeIfPresent(String.self, forKey: .vnet)
            path = try c.decodeIfPresent(String.self, forKey: .path)
            link = try c.decodeIfPresent(String.self, forKey: .link)
            rate = try c.decodeIfPresent(String.self, forKey: .rate)
            delayMs = try c.number(.delayMs)
            jitterMs = try c.number(.jitterMs)
            lossPct = try c.number(.lossPct)
            action = try c.decodeIfPresent(String.self, forKey: .action)
        }

        /// `vnet1`, `P1,1` or `in1:p11`.
        public var target: String { vnet ?? path ?? link ?? "?" }

        /// A short human description: `vnet1 rate 600kbit`, `P1,1 down`.
        public var summary: String {
            var parts = [target]
            if let rate { parts.append("rate \(rate)") }
            if let delayMs { parts.append("delay \(number(delayMs)) ms") }
            if let jitterMs { parts.append("jitter \(number(jitterMs)) ms") }
            if let lossPct { parts.append("loss \(number(lossPct)) %") }
            if let action { parts.append(action) }
            return parts.joined(separator: " ")
        }

        /// These conditions, changed as the event says.
        public func apply(to conditions: LinkConditions) throws -> LinkConditions {
            var next = conditions
            if let rate { next.rate = try BitRate(parsing: rate) }
            if let delayMs { next.delayMs = delayMs }
            if let jitterMs { next.jitterMs = jitterMs }
            if let lossPct { next.lossPct = lossPct }
            switch action {
            case "down": next.down = true
            case "up": next.down = false
            default: break
            }
            return next
        }
    }

    public static func load(_ path: String) throws -> Schedule {
        let schedule = try loadTOML(Schedule.self, from: path, kind: "schedule")
        try schedule.validate(file: path)
        return schedule
    }

    public func validate(file: String = "schedule") throws {
        for (index, event) in events.enumerated() {
            let where_ = "\(file): event \(index + 1) (at \(number(event.atS)) s)"
            let targets = [event.vnet, event.path, event.link].compactMap { $0 }
            guard targets.count == 1 else { throw LabError("\(where_): name exactly one of vnet, path or link") }
            guard event.atS >= 0, event.atS.isFinite else { throw LabError("\(where_): at_s must be zero or more") }
            if let action = event.action, action != "down" && action != "up" {
                throw LabError("\(where_): action is down or up, not '\(action)'")
            }
            guard event.rate != nil || event.delayMs != nil || event.jitterMs != nil || event.lossPct != nil || event.action != nil else {
                throw LabError("\(where_): says nothing to change (rate, delay_ms, jitter_ms, loss_pct or action)")
            }
            if let loss = event.lossPct, !(0...100).contains(loss) { throw LabError("\(where_): loss_pct is 0 to 100") }
            do { _ = try event.apply(to: LinkConditions()) } catch { throw LabError("\(where_): \(error)") }
        }
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
