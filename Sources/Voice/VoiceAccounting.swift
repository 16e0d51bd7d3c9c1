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

    /// The report with a fixed playout buffer of `playoutMs` (each packet plays at the first
    /// packet's arrival + the buffer + its place in the call), in bins of `binS`, G.711 with
    /// packet loss concealment.
    public func report(binS: Double, playoutMs: Double) -> VoiceReport {
        guard let first, let highest, let start = arrivals[first] else {
            return VoiceReport(ssrc: nil, expected: 0, received: 0, lost: 0, late: 0, duplicates: duplicates, jitterMs: 0, playoutMs: playoutMs, bins: [], whole: nil)
        }
        let packetNs = G711Voice.packetMs * 1e6
        let perBin = max(1, Int((binS * 1000 / G711Voice.packetMs).rounded()))
        var bins: [Bin] = []
        var fates: [Bool] = []
        var allFates: [Bool] = []
        var delays: [Double] = []
        var mouthToEar: [Double] = []
        var allMouth: [Double] = []
        var allDelays: [Double] = []
        var counts = (received: 0, late: 0)
        var total = (received: 0, late: 0)
        func close(_ index: Int) {
            let expected = fates.count
            let played = fates.filter { $0 }.count
            let pattern = LossPattern(played: fates)
            let ta = mouthToEar.isEmpty ? 0 : mouthToEar.reduce(0, +) / Double(mouthToEar.count)
            let model = EModel.g711(oneWayMs: ta, lossPct: pattern.lossPct, burstR: pattern.burstR)
            bins.append(
                Bin(
                    startS: Double(index * perBin) * G711Voice.packetMs / 1000, expected: expected, received: counts.received,
                    lost: expected - counts.received, late: counts.late, meanDelayMs: delays.isEmpty ? nil : delays.reduce(0, +) / Double(delays.count),
                    mouthToEarMs: mouthToEar.isEmpty ? nil : ta, jitterMs: jitterMs, pplPct: Double(expected - played) / Double(max(1, expected)) * 100,
                    burstR: pattern.burstR, r: model.r, mos: model.mos))
            fates.removeAll()
            delays.removeAll()
            mouthToEar.removeAll()
            counts = (0, 0)
        }
        for ext in first...highest {
            let place = Int(ext - first)
            if place > 0 && place % perBin == 0 { close(place / perBin - 1) }
            guard let arrival = arrivals[ext] else {
                fates.append(false)
                allFates.append(false)
                continue
            }
            counts.received += 1
            total.received += 1
            let playout = Double(start.arrivalNanoseconds) + playoutMs * 1e6 + Double(place) * packetNs
            let late = Double(arrival.arrivalNanoseconds) > playout
            if late {
                counts.late += 1
                total.late += 1
            }
            fates.append(!late)
            allFates.append(!late)
            if let sent = arrival.sendNanoseconds {
                let delay = (Double(arrival.arrivalNanoseconds) - Double(sent)) / 1e6
                delays.append(delay)
                allDelays.append(delay)
                // What the listener hears it after: played at its playout time, spoken a packet before it was sent.
                let heard = (playout - Double(sent)) / 1e6 + G711Voice.packetMs
                mouthToEar.append(heard)
                allMouth.append(heard)
            }
        }
        if !fates.isEmpty { close(Int(highest - first) / perBin) }
        let pattern = LossPattern(played: allFates)
        let ta = allMouth.isEmpty ? 0 : allMouth.reduce(0, +) / Double(allMouth.count)
        let model = EModel.g711(oneWayMs: ta, lossPct: pattern.lossPct, burstR: pattern.burstR)
        let whole = Bin(
            startS: 0, expected: allFates.count, received: total.received, lost: allFates.count - total.received, late: total.late,
            meanDelayMs: allDelays.isEmpty ? nil : allDelays.reduce(0, +) / Double(allDelays.count), mouthToEarMs: allMouth.isEmpty ? nil : ta,
            jitterMs: jitterMs, pplPct: pattern.lossPct, burstR: pattern.burstR, r: model.r, mos: model.mos)
        return VoiceReport(
            ssrc: ssrc, expected: allFates.count, received: total.received, lost: allFates.count - total.received, late: total.late,
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
