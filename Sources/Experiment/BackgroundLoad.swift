import Foundation
import Lab
import Units


/// Heavy-tailed background traffic sent by a real generator, D-ITG (`ITGSend`, `ITGRecv`;
/// Debian's `d-itg`): `flows` UDP flows of `packet_bytes`-byte payloads, each switching between
/// on and off periods whose lengths are Pareto-distributed (shape `pareto_shape`, means `on_ms`
/// and `off_ms`), sending at a constant rate while on. Aggregated, such on/off sources are
/// self-similar, as Harpoon's traffic in the paper is. A load is the mean share of `capacity`
/// the flows carry together. The times are drawn here from `seed` and replayed by ITGSend, so
/// two segments of the same load and length carry the same pattern.
public struct BackgroundLoad: Decodable, Sendable, Equatable {
    public var capacity: BitRate
    /// The paper's L (20-25 %) and H (60-86 %) as shares of the capacity.
    public var low: Double
    public var high: Double
    public var flows: Int
    public var packetBytes: Int
    public var paretoShape: Double
    public var onMs: Double
    public var offMs: Double
    public var seed: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case capacity, low, high, flows, seed
        case packetBytes = "packet_bytes"
        case paretoShape = "pareto_shape"
        case onMs = "on_ms"
        case offMs = "off_ms"
    }

    public static let defaults = BackgroundLoad(
        capacity: BitRate(bitsPerSecond: 20e6), low: 0.22, high: 0.85, flows: 8, packetBytes: 1400, paretoShape: 1.5, onMs: 500, offMs: 500, seed: 1)

    init(capacity: BitRate, low: Double, high: Double, flows: Int, packetBytes: Int, paretoShape: Double, onMs: Double, offMs: Double, seed: Int) {
        self.capacity = capacity
        self.low = low
        self.high = high
        self.flows = flows
        self.packetBytes = packetBytes
        self.paretoShape = paretoShape
        self.onMs = onMs
        self.offMs = offMs
        self.seed = seed
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Self.defaults
        capacity = try c.decodeIfPresent(String.self, forKey: .capacity).map { text in
            do { return try BitRate(parsing: text) } catch { throw LabError("[load] capacity: \(error)") }
        } ?? d.capacity
        low = try c.number(.low) ?? d.low
        high = try c.number(.high) ?? d.high
        flows = Int(try c.number(.flows) ?? Double(d.flows))
        packetBytes = Int(try c.number(.packetBytes) ?? Double(d.packetBytes))
        paretoShape = try c.number(.paretoShape) ?? d.paretoShape
        onMs = try c.number(.onMs) ?? d.onMs
        offMs = try c.number(.offMs) ?? d.offMs
        seed = Int(try c.number(.seed) ?? Double(d.seed))
    }

    func validate() throws {
        guard capacity.bitsPerSecond > 0 else { throw LabError("[load] capacity must be positive") }
        guard low > 0, high >= low, high <= 1.5 else { throw LabError("[load] low and high are shares of the capacity: 0 < low <= high <= 1.5") }
        guard (1...64).contains(flows) else { throw LabError("[load] flows must be 1-64") }
        guard (64...1472).contains(packetBytes) else { throw LabError("[load] packet_bytes must be 64-1472 (one UDP datagram in a 1500-byte MTU)") }
        guard paretoShape > 1 else { throw LabError("[load] pareto_shape must be above 1 (a finite mean)") }
        guard onMs >= 10, offMs >= 10 else { throw LabError("[load] on_ms and off_ms must be at least 10") }
    }

    /// Each flow's packets per second while on, for a mean load of `share` of the capacity.
    func onRate(share: Double) -> Double {
        let duty = onMs / (onMs + offMs)
        // IPv4 + UDP headers on the wire besides D-ITG's payload.
        let bits = Double(packetBytes + 28) * 8
        return share * capacity.bitsPerSecond / Double(flows) / duty / bits
    }

    /// One flow's inter-departure times, ms, over `durationS` at `share` of the capacity: on
    /// periods at the flow's on-rate, off periods between them, both Pareto (inverse transform
    /// of a seeded generator, so the same flow, load and length give the same times).
    func departures(flow: Int, share: Double, durationS: Double) -> [Double] {
        var random = SplitMix64(seed: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(flow))
        // A Pareto's mean is shape * scale / (shape - 1).
        func pareto(mean: Double) -> Double {
            let scale = mean * (paretoShape - 1) / paretoShape
            return scale / pow(1 - Double.random(in: 0..<1, using: &random), 1 / paretoShape)
        }
        let spacing = 1000 / onRate(share: share)
        let total = durationS * 1000
        var gaps: [Double] = []
        var t = 0.0
        // Each flow starts at a random point of an off period, so that the flows do not all begin at once.
        var gap = Double.random(in: 0..<1, using: &random) * pareto(mean: offMs)
        while t + gap < total {
            let on = pareto(mean: onMs)
            var sent = 0.0
            repeat {
                gaps.append(gap)
                t += gap
                gap = spacing
                sent += spacing
            } while sent < on && t + gap < total
            gap = spacing + pareto(mean: offMs)
        }
        return gaps
    }

    /// Writes ITGSend's multi-flow script for `durationS` at `share` of the capacity toward
    /// `receiver` to `path`, with one inter-departure file per flow beside it (`path.k.idt`):
    /// flow k on UDP port `firstPort + k`, signalled to the ITGRecv on TCP port `signalling`.
    /// D-ITG replays the times (`-Ft`) rather than drawing its own: its own bursty mode (`-B`)
    /// aborts now and then, and its draws differ from run to run.
    func writeScript(to path: String, share: Double, durationS: Double, receiver: String, firstPort: Int, signalling: Int) throws {
        var lines: [String] = []
        for k in 0..<flows {
            let times = departures(flow: k, share: share, durationS: durationS)
            guard !times.isEmpty else { continue }
            let idt = "\(path).\(k + 1).idt"
            try Data((times.map { decimal($0, 3) }.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: idt))
            lines.append(
                "-a \(receiver) -Sdp \(signalling) -rp \(firstPort + k) -T UDP -Ft \(idt) -c \(packetBytes) -z \(times.count) -t \(Int((durationS * 1000).rounded()))")
        }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
    }
}
