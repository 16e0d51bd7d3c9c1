import Foundation
import Lab
import RunRecords
import Voice

/// `results.json` of the shadow-voip experiment: the call as the receiver, the production
/// VNet's exit and the shadow's exit saw it, per phase and per bin, with the background
/// throughput at each exit; what the switch did; A with its shadow idle and active.
public struct ShadowVoiceResults: Codable, Sendable, ResultsDocument {
    public var kind = ShadowVoiceExperiment.kind
    public var schemaVersion = ResultsSchema.version
    public var experiment: String
    public var description: String?
    public var provenance: Provenance
    public var production: String
    public var shadow: String
    /// Seconds per phase as run (after `time_scale`).
    public var phaseS: Double
    public var binS: Double
    public var playoutMs: Double
    public var load: BackgroundLoad.Summary
    public var phases: [PhaseRow]
    public var bins: [BinRow]
    public var switches: [SwitchRow]
    /// The receiver's copies of one packet beyond the first, over the whole call.
    public var receiverDuplicates: Int
    public var isolation: Isolation?
    /// The phase boundaries' events as the lab applied them: `at_s: what (late_ms)`.
    public var events: [String]
    public var exitDrops: Lab.ExitDrops?
    /// What each ITGSend segment (a third of a phase) did.
    public var background: [SegmentRow] = []

    public struct SegmentRow: Codable, Sendable, Equatable {
        public var segment: Int
        public var flowsFinished: Int
        /// The first line of its log that tells of an error, if any.
        public var trouble: String?
    }

    /// One phase: what Table 1 says, and the call's figures per observer (nil: it saw nothing).
    public struct PhaseRow: Codable, Sendable, Equatable {
        public var phase: Int
        public var production: String
        public var active: [String]
        public var priority: [String]
        public var load: String
        public var receiver: VoiceAccounting.Bin?
        public var productionVNet: VoiceAccounting.Bin?
        public var shadowVNet: VoiceAccounting.Bin?
        /// What left each exit toward the receiver, Mbit/s (the call's 80 kbit/s included).
        public var exitMbit: [String: Double]
    }

    /// One bin of Fig. 7: lost or late (the E-model's Ppl), percent, per observer; exit throughput.
    public struct BinRow: Codable, Sendable, Equatable {
        public var startS: Double
        public var receiverPct: Double?
        public var productionPct: Double?
        public var shadowPct: Double?
        public var exitMbit: [String: Double]
    }

    /// A switch of production: packets of the call that an exit had and the receiver never got
    /// although the VNet that brought them was production then (or both were, during the overlap).
    public struct SwitchRow: Codable, Sendable, Equatable {
        public var atS: Double
        public var to: String
        public var lostBySwitch: Int
        /// The call's packets sent within 2 s either side of the switch, and those the receiver got.
        public var aroundSent: Int
        public var aroundReceived: Int
    }

    /// The production VNet's call over the last third of a phase before its shadow became
    /// active, and over every third after it with the same background (the same departures
    /// replayed) while the shadow was active and the production VNet had no priority: the spread
    /// of those is the noise the idle third is judged against.
    public struct Isolation: Codable, Sendable, Equatable {
        public var atS: Double
        public var idle: VoiceAccounting.Bin
        public var active: [VoiceAccounting.Bin]
        /// What was offered into the production VNet (at its entry, Mbit/s, the call included)
        /// in the idle third and in each active one (nil in results from before it was counted).
        public var idleOfferedMbit: Double?
        public var activeOfferedMbit: [Double]?
        /// The thirds of the same plan left out, as `start s: offered Mbit/s`: what was offered
        /// there was off the thirds' median by more than `offeredTolerance` (an ITGSend that
        /// fell behind its departures), so their background was not the same.
        public var leftOut: [String]?

        /// How far a third's offered load may be off the median of the thirds of its plan and
        /// still count as the same background: a fraction. The call's loss at a high load moves
        /// several points with a few percent of load.
        public static let offeredTolerance = 0.015

        /// The median of the offered loads over the idle third and every third of its plan.
        public var offeredMedianMbit: Double?

        /// Whether the idle third's background was its plan's (not counted: taken as so).
        public var idleComparable: Bool { idleOfferedMbit.map { Self.comparable($0, median: offeredMedianMbit) } ?? true }

        static func comparable(_ offered: Double, median: Double?) -> Bool {
            guard let median, median > 0 else { return true }
            return abs(offered - median) <= offeredTolerance * median
        }

        static func median(_ values: [Double]) -> Double? {
            let sorted = values.sorted()
            guard !sorted.isEmpty else { return nil }
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
    }

    public static func load(_ path: String) throws -> ShadowVoiceResults { try loadDocument(path, kind: "shadow-voip results") }

    static func build(
        experiment: ShadowVoiceExperiment, provenance: Provenance, start: UInt64, observers: [(name: String, packets: [VoicePacket])],
        applied: [SchedulePlayer.Applied], switchesS: [Double], exits: [String: [CounterSample]], entry: [CounterSample] = [], exitDrops: Lab.ExitDrops?
    ) -> ShadowVoiceResults {
        let phaseS = experiment.phaseS
        let binS = experiment.file.binS
        let playoutMs = experiment.file.playoutMs
        let zero = Double(start)
        func seconds(_ fate: VoiceAccounting.Fate) -> Double? { fate.sendNanoseconds.map { ($0 - zero) / 1e9 } }
        // Each observer's fates, and its accounting's jitter.
        var fates: [String: [VoiceAccounting.Fate]] = [:]
        var jitter: [String: Double] = [:]
        var duplicates = 0
        for observer in observers {
            var accounting = VoiceAccounting()
            for packet in observer.packets { accounting.arrived(packet) }
            fates[observer.name] = accounting.fates(playoutMs: playoutMs)
            jitter[observer.name] = accounting.jitterMs
            if observer.name == "receiver" { duplicates = accounting.duplicates }
        }
        func figures(_ name: String, from: Double, to: Double) -> VoiceAccounting.Bin? {
            let inside = (fates[name] ?? []).filter { fate in seconds(fate).map { $0 >= from && $0 < to } ?? false }
            return inside.isEmpty ? nil : VoiceAccounting.summary(inside, startS: from, jitterMs: jitter[name] ?? 0)
        }
        // Throughput from interface counters over their samples inside [from, to], by the run's clock.
        func mbit(_ samples: [CounterSample], _ bytes: KeyPath<CounterSample, Int>, from: Double, to: Double) -> Double? {
            let inside = samples.filter { $0.t - zero / 1e9 >= from && $0.t - zero / 1e9 <= to }
            guard let first = inside.first, let last = inside.last, last.t > first.t else { return nil }
            return (Double(last[keyPath: bytes] - first[keyPath: bytes]) * 8 / (last.t - first.t) / 1e6 * 100).rounded() / 100
        }
        // Exit throughput from the receiver's interface counters.
        func exitMbit(from: Double, to: Double) -> [String: Double] { exits.compactMapValues { mbit($0, \.rxBytes, from: from, to: to) } }
        let production = experiment.production
        let shadow = experiment.shadow
        var phases: [PhaseRow] = []
        for (index, phase) in experiment.phases.enumerated() {
            let from = Double(index) * phaseS
            phases.append(
                PhaseRow(
                    phase: index + 1, production: phase.production, active: phase.active, priority: phase.priority, load: phase.load,
                    receiver: figures("receiver", from: from, to: from + phaseS),
                    // A VNet is scored only in the phases it is active in (the last packets a retired one carried are not a phase).
                    productionVNet: phase.active.contains(production) ? figures(production, from: from, to: from + phaseS) : nil,
                    shadowVNet: phase.active.contains(shadow) ? figures(shadow, from: from, to: from + phaseS) : nil, exitMbit: exitMbit(from: from, to: from + phaseS)))
        }
        let total = phaseS * Double(experiment.phases.count)
        let bins = stride(from: 0.0, to: total, by: binS).map { from in
            BinRow(
                startS: from, receiverPct: figures("receiver", from: from, to: from + binS)?.pplPct, productionPct: figures(production, from: from, to: from + binS)?.pplPct,
                shadowPct: figures(shadow, from: from, to: from + binS)?.pplPct, exitMbit: exitMbit(from: from, to: from + binS))
        }
        // Who was production when: the switches' first transactions, then the overlap.
        let overlap = Lab.defaultOverlapS
        let promotions = zip(switchesS, applied.filter { $0.event.hasSuffix(" promote") }.map { String($0.event.dropLast(" promote".count)) })
        func productionAt(_ t: Double) -> (vnet: String, overlap: Bool) {
            var current = production
            for (at, vnet) in promotions where t >= at {
                if t < at + overlap { return (vnet, true) }
                current = vnet
            }
            return (current, false)
        }
        // A packet is the call's RTP timestamp (it grows by 160 a packet).
        let received = Set((observers.first { $0.name == "receiver" }?.packets ?? []).map(\.timestamp))
        var seenAt: [UInt32: [(vnet: String, t: Double)]] = [:]
        for observer in observers where observer.name != "receiver" {
            for packet in observer.packets { seenAt[packet.timestamp, default: []].append((observer.name, (Double(packet.arrivalNanoseconds) - zero) / 1e9)) }
        }
        var switches: [SwitchRow] = []
        for (at, vnet) in promotions {
            var lost = 0
            for (timestamp, sightings) in seenAt where !received.contains(timestamp) {
                guard sightings.contains(where: { $0.t >= at - 5 && $0.t <= at + overlap + 5 }) else { continue }
                if sightings.contains(where: { sighting in
                    let now = productionAt(sighting.t)
                    return now.overlap || now.vnet == sighting.vnet
                }) { lost += 1 }
            }
            let sentAround = Set(seenAt.filter { $0.value.contains { $0.t >= at - 2 && $0.t <= at + 2 } }.keys)
            switches.append(SwitchRow(atS: at, to: vnet, lostBySwitch: lost, aroundSent: sentAround.count, aroundReceived: sentAround.filter { received.contains($0) }.count))
        }
        // Isolation: the last third before the shadow became active, against the thirds after it
        // with the same background segment (share and length) while the shadow was active and the
        // production VNet had no priority. A third whose offered load was off the others' (an
        // ITGSend behind its departures) had another background, and is left out.
        var isolation: Isolation?
        let segments = (try? experiment.backgroundSegments()) ?? []
        let third = phaseS / 3
        if let activation = experiment.schedule.events.first(where: { $0.change == .copying(true) }),
            let before = segments.last(where: { abs($0.startS + third - activation.atS) < 0.001 }),
            let idle = figures(production, from: before.startS, to: activation.atS)
        {
            let offered = { (segment: ShadowVoiceExperiment.BackgroundSegment) in mbit(entry, \.txBytes, from: segment.startS, to: segment.startS + third) }
            let candidates = segments.filter { segment in
                let phase = experiment.phases[segment.phase]
                return segment.startS >= activation.atS - 0.001 && phase.active.contains(shadow) && phase.active.contains(production)
                    && !phase.priority.contains(production) && segment.share == before.share && abs(segment.lengthS - before.lengthS) < 0.001
            }.compactMap { segment in figures(production, from: segment.startS, to: segment.startS + third).map { (segment, $0, offered(segment)) } }
            let idleOffered = offered(before)
            let median = Isolation.median([idleOffered].compactMap { $0 } + candidates.compactMap(\.2))
            let kept = candidates.filter { $0.2.map { Isolation.comparable($0, median: median) } ?? true }
            let dropped = candidates.filter { candidate in !kept.contains { $0.0 == candidate.0 } }
            if !kept.isEmpty {
                isolation = Isolation(
                    atS: activation.atS, idle: idle, active: kept.map(\.1), idleOfferedMbit: idleOffered, activeOfferedMbit: entry.isEmpty ? nil : kept.compactMap(\.2),
                    leftOut: dropped.isEmpty ? nil : dropped.map { "\(decimal($0.0.startS)) s: \($0.2.map { decimal($0, 2) } ?? "?") Mbit/s" }, offeredMedianMbit: median)
            }
        }
        return ShadowVoiceResults(
            experiment: experiment.file.name, description: experiment.file.description, provenance: provenance, production: production, shadow: shadow,
            phaseS: phaseS, binS: binS, playoutMs: playoutMs, load: experiment.file.load.summary, phases: phases, bins: bins, switches: switches,
            receiverDuplicates: duplicates, isolation: isolation,
            events: applied.map { "\(decimal($0.atS, 1)) s: \($0.event) (effective \(decimal($0.appliedS, 3)) s)" }, exitDrops: exitDrops)
    }
}

extension BackgroundLoad {
    /// The generator's settings as results record them.
    public struct Summary: Codable, Sendable, Equatable {
        public var generator = "D-ITG (ITGSend/ITGRecv), UDP on/off flows"
        public var capacityMbit: Double
        public var low: Double
        public var high: Double
        public var flows: Int
        public var payloadBytes: Int
        public var paretoShape: Double
        public var onMs: Double
        public var offMs: Double
    }

    var summary: Summary {
        Summary(
            capacityMbit: capacity.bitsPerSecond / 1e6, low: low, high: high, flows: flows, payloadBytes: packetBytes, paretoShape: paretoShape, onMs: onMs,
            offMs: offMs)
    }
}
