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

    /// How packets are scheduled for playout.
    public enum Playout: Sendable, Equatable, CustomStringConvertible {
        /// Packet k plays at the first packet's arrival + the buffer + 20 ms * k.
        case fixed(ms: Double)
        /// An adaptive buffer (Ramjee et al.'s algorithm 1, as RTP phones use it): the playout
        /// delay after the send time is d + 4 v, the exponentially averaged one-way delay and
        /// its variation (weight 0.998002 per packet), recomputed once a second (a jitter buffer
        /// that stretches or shrinks speech; a continuous call has no silences to do it in),
        /// starting from `startMs` and kept within `minMs`...`maxMs`.
        case adaptive(startMs: Double, minMs: Double, maxMs: Double)

        public static let adaptiveDefault = Playout.adaptive(startMs: 60, minMs: 10, maxMs: 500)

        public var description: String {
            switch self {
            case .fixed(let ms): "fixed \(ms.formatted(.number.precision(.fractionLength(0...2)))) ms"
            case .adaptive(let start, let low, let high): "adaptive (d + 4v, from \(Int(start)) ms, \(Int(low))-\(Int(high)) ms)"
            }
        }
    }

    /// Every packet's fate with a fixed playout buffer of `playoutMs`.
    public func fates(playoutMs: Double) -> [Fate] { fates(playout: .fixed(ms: playoutMs)) }

    /// Every packet's fate under `playout`. A packet without a send stamp plays as the fixed
    /// buffer would play it (the adaptive one needs the one-way delay).
    public func fates(playout: Playout) -> [Fate] {
        guard let first, let highest, let start = arrivals[first] else { return [] }
        let packetNs = G711Voice.packetMs * 1e6
        var fates: [Fate] = []
        fates.reserveCapacity(Int(highest - first) + 1)
        let base = start.sendNanoseconds.map { Double($0) }
        // The adaptive buffer's state: the averaged delay and variation (ms), and the delay in force.
        let alpha = 0.998002
        var mean: Double?
        var variation = 0.0
        var adaptiveMs: Double
        var fixedMs = 0.0
        switch playout {
        case .fixed(let ms):
            adaptiveMs = ms
            fixedMs = ms
        case .adaptive(let startMs, _, _): adaptiveMs = startMs
        }
        let perAdjustment = Int((1000 / G711Voice.packetMs).rounded())
        for ext in first...highest {
            let place = Int(ext - first)
            let planned = base.map { $0 + Double(place) * packetNs }
            if case .adaptive(_, let low, let high) = playout, place > 0, place % perAdjustment == 0, let mean {
                adaptiveMs = min(high, max(low, mean + 4 * variation))
            }
            guard let arrival = arrivals[ext] else {
                fates.append(Fate(place: place, sendNanoseconds: planned, received: false, late: false))
                continue
            }
            let playoutNs: Double
            if case .adaptive = playout, let sent = arrival.sendNanoseconds {
                playoutNs = Double(sent) + adaptiveMs * 1e6
            } else {
                let bufferMs: Double
                if case .fixed = playout { bufferMs = fixedMs } else { bufferMs = adaptiveMs }
                playoutNs = Double(start.arrivalNanoseconds) + bufferMs * 1e6 + Double(place) * packetNs
            }
            var fate = Fate(place: place, sendNanoseconds: arrival.sendNanoseconds.map { Double($0) } ?? planned, received: true, late: Double(arrival.arrivalNanoseconds) > playoutNs)
            if let sent = arrival.sendNanoseconds {
                let delay = (Double(arrival.arrivalNanoseconds) - Double(sent)) / 1e6
                fate.delayMs = delay
                // What the listener hears it after: played at its playout time, spoken a packet before it was sent.
                fate.mouthToEarMs = (playoutNs - Double(sent)) / 1e6 + G711Voice.packetMs
                if let previous = mean {
                    mean = alpha * previous + (1 - alpha) * delay
                    variation = alpha * variation + (1 - alpha) * abs(mean! - delay)
                } else {
                    mean = delay
                }
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
    public func report(binS: Double, playoutMs: Double) -> VoiceReport { report(binS: binS, playout: .fixed(ms: playoutMs)) }

    /// The report under `playout`, in bins of `binS`. Its `playout_ms` is the fixed buffer, or
    /// for the adaptive one the mean time from send to playout over the call.
    public func report(binS: Double, playout: Playout) -> VoiceReport {
        let fates = fates(playout: playout)
        var playoutMs = 0.0
        if case .fixed(let ms) = playout { playoutMs = ms }
        guard !fates.isEmpty else {
            return VoiceReport(ssrc: nil, expected: 0, received: 0, lost: 0, late: 0, duplicates: duplicates, jitterMs: 0, playoutMs: playoutMs, bins: [], whole: nil)
        }
        if case .adaptive = playout {
            let held = fates.compactMap { fate in fate.mouthToEarMs.map { $0 - G711Voice.packetMs } }
            playoutMs = held.isEmpty ? 0 : held.reduce(0, +) / Double(held.count)
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
