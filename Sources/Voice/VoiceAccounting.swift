import Foundation
import VoiceQuality

/// A voice call as the receiver sees it (RFC 3550's receiver statistics and a playout buffer
/// model), and what the E-model makes of it, per bin of the call's own time. Pure: arrivals
/// in, a report out.
public struct VoiceAccounting: Sendable {
    struct Arrival: Sendable {
        var timestamp: UInt32
        var sendNanoseconds: UInt64?
        var arrivalNanoseconds: UInt64
    }

    /// Packets by extended sequence number (the first arrival of each).
    private var arrivals: [Int64: Arrival] = [:]
    private var highest: Int64?
    private var first: Int64?
    public private(set) var duplicates = 0
    public private(set) var received = 0
    /// RFC 3550's interarrival jitter, in timestamp units, in arrival order.
    private var jitter = 0.0
    private var last: (transit: Double, arrival: UInt64)?
    public private(set) var ssrc: UInt32?

    public init() {}

    /// The extended sequence number of `sequence`: the one nearest the highest so far.
    func extend(_ sequence: UInt16) -> Int64 {
        guard let highest else { return Int64(sequence) }
        let base = highest & ~0xffff
        let candidates = [base - 0x10000, base, base + 0x10000].map { $0 + Int64(sequence) }
        return candidates.min { abs($0 - highest) < abs($1 - highest) }!
    }

    public mutating func arrived(_ header: RTPHeader, sendNanoseconds: UInt64?, arrivalNanoseconds: UInt64) {
        if ssrc == nil { ssrc = header.ssrc }
        guard header.ssrc == ssrc else { return }
        let ext = extend(header.sequence)
        guard arrivals[ext] == nil else {
            duplicates += 1
            return
        }
        received += 1
        arrivals[ext] = Arrival(timestamp: header.timestamp, sendNanoseconds: sendNanoseconds, arrivalNanoseconds: arrivalNanoseconds)
        highest = max(highest ?? ext, ext)
        first = min(first ?? ext, ext)
        // RFC 3550 A.8: the transit time's change between consecutive arrivals, in timestamp units.
        let transit = Double(arrivalNanoseconds) * G711Voice.clockRate / 1e9 - Double(header.timestamp)
        if let last { jitter += (abs(transit - last.transit) - jitter) / 16 }
        last = (transit, arrivalNanoseconds)
    }

    public var jitterMs: Double { jitter / G711Voice.clockRate * 1000 }

    /// One bin of the call (by the packets' place in the call, 20 ms each).
    public struct Bin: Codable, Sendable, Equatable {
        public var startS: Double
        public var expected: Int
        public var received: Int
        public var lost: Int
        /// Arrived after their playout time.
        public var late: Int
        public var meanDelayMs: Double?
        /// Network delay + playout buffer + packetisation, the E-model's Ta.
        public var mouthToEarMs: Double?
        public var jitterMs: Double
        /// Lost or late, percent: the E-model's Ppl.
        public var pplPct: Double
        public var burstR: Double
        public var r: Double
        public var mos: Double

        enum CodingKeys: String, CodingKey {
            case expected, received, lost, late, r, mos
            case startS = "start_s"
            case meanDelayMs = "mean_delay_ms"
            case mouthToEarMs = "mouth_to_ear_ms"
            case jitterMs = "jitter_ms"
            case pplPct = "ppl_pct"
            case burstR = "burst_r"
        }
    }

    /// What became of one packet of the call, by its place in it (0: the first that arrived).
    public struct Fate: Sendable, Equatable {
        public var place: Int
        /// When it was sent (CLOCK_MONOTONIC ns): its own stamp, or for a lost one the first's
        /// plus its place (the call is paced at 20 ms). nil when no stamp was read.
        public var sendNanoseconds: Double?
        public var received: Bool
        /// Arrived after its playout time.
        public var late: Bool
        public var delayMs: Double?
        /// Network delay + playout buffer + packetisation, the E-model's Ta.
        public var mouthToEarMs: Double?

        public var played: Bool { received && !late }
    }

    /// Every packet's fate with a fixed playout buffer of `playoutMs`: each plays at the first
    /// packet's arrival + the buffer + its place in the call.
    public func fates(playoutMs: Double) -> [Fate] {
        guard let first, let highest, let start = arrivals[first] else { return [] }
        let packetNs = G711Voice.packetMs * 1e6
        var fates: [Fate] = []
        fates.reserveCapacity(Int(highest - first) + 1)
        let base = start.sendNanoseconds.map { Double($0) }
        for ext in first...highest {
            let place = Int(ext - first)
            let planned = base.map { $0 + Double(place) * packetNs }
            guard let arrival = arrivals[ext] else {
                fates.append(Fate(place: place, sendNanoseconds: planned, received: false, late: false))
                continue
            }
            let playout = Double(start.arrivalNanoseconds) + playoutMs * 1e6 + Double(place) * packetNs
            var fate = Fate(place: place, sendNanoseconds: arrival.sendNanoseconds.map { Double($0) } ?? planned, received: true, late: Double(arrival.arrivalNanoseconds) > playout)
            if let sent = arrival.sendNanoseconds {
                fate.delayMs = (Double(arrival.arrivalNanoseconds) - Double(sent)) / 1e6
                // What the listener hears it after: played at its playout time, spoken a packet before it was sent.
                fate.mouthToEarMs = (playout - Double(sent)) / 1e6 + G711Voice.packetMs
            }
            fates.append(fate)
        }
        return fates
    }

    /// The figures and the E-model's verdict (G.711 with packet loss concealment) of some of a
    /// call's packets: a bin, a phase, the whole call.
    public static func summary(_ fates: some Collection<Fate>, startS: Double, jitterMs: Double) -> Bin {
        let played = fates.map(\.played)
        let pattern = LossPattern(played: played)
        let delays = fates.compactMap(\.delayMs)
        let mouth = fates.compactMap(\.mouthToEarMs)
        let ta = mouth.isEmpty ? 0 : mouth.reduce(0, +) / Double(mouth.count)
        let model = EModel.g711(oneWayMs: ta, lossPct: pattern.lossPct, burstR: pattern.burstR)
        let received = fates.filter(\.received).count
        return Bin(
            startS: startS, expected: fates.count, received: received, lost: fates.count - received, late: fates.filter(\.late).count,
            meanDelayMs: delays.isEmpty ? nil : delays.reduce(0, +) / Double(delays.count), mouthToEarMs: mouth.isEmpty ? nil : ta,
            jitterMs: jitterMs, pplPct: pattern.lossPct, burstR: pattern.burstR, r: model.r, mos: model.mos)
    }

    /// The report with a fixed playout buffer of `playoutMs`, in bins of `binS` (by the
    /// packets' place in the call, 20 ms each).
    public func report(binS: Double, playoutMs: Double) -> VoiceReport {
        let fates = fates(playoutMs: playoutMs)
        guard !fates.isEmpty else {
            return VoiceReport(ssrc: nil, expected: 0, received: 0, lost: 0, late: 0, duplicates: duplicates, jitterMs: 0, playoutMs: playoutMs, bins: [], whole: nil)
        }
        let perBin = max(1, Int((binS * 1000 / G711Voice.packetMs).rounded()))
        let bins = stride(from: 0, to: fates.count, by: perBin).map { from in
            Self.summary(fates[from..<min(fates.count, from + perBin)], startS: Double(from) * G711Voice.packetMs / 1000, jitterMs: jitterMs)
        }
        let whole = Self.summary(fates, startS: 0, jitterMs: jitterMs)
        return VoiceReport(
            ssrc: ssrc, expected: whole.expected, received: whole.received, lost: whole.lost, late: whole.late,
            duplicates: duplicates, jitterMs: jitterMs, playoutMs: playoutMs, bins: bins, whole: whole)
    }
}

/// What `vnetstream voice recv` reports: the call, per bin and as a whole.
public struct VoiceReport: Codable, Sendable, Equatable {
    public var ssrc: UInt32?
    public var expected: Int
    public var received: Int
    public var lost: Int
    public var late: Int
    public var duplicates: Int
    public var jitterMs: Double
    public var playoutMs: Double
    public var bins: [VoiceAccounting.Bin]
    public var whole: VoiceAccounting.Bin?

    enum CodingKeys: String, CodingKey {
        case ssrc, expected, received, lost, late, duplicates, bins, whole
        case jitterMs = "jitter_ms"
        case playoutMs = "playout_ms"
    }
}
