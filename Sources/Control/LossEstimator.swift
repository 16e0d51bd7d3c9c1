/// A VNet's random loss rate, with a confidence interval.
///
/// It is fed the packets that arrived and were lost in each receiver report's interval, but
/// only of intervals in which the VNet's queue was flat: loss that comes with a growing queue
/// is congestion (the VNet is full), and says what the VNet can carry, not what it costs.
/// Over a sliding time window, the estimate is lost / (arrived + lost), with a Wilson score
/// interval (which, unlike the normal approximation, stays inside [0, 1] and is honest with few
/// packets or no loss at all).
public struct LossEstimator: Sendable, Equatable {
    /// How far back samples count, nanoseconds.
    public var window: UInt64
    private var samples: [Sample] = []
    public private(set) var packets = 0
    public private(set) var lost = 0

    struct Sample: Sendable, Equatable {
        var time: UInt64
        var packets: Int
        var lost: Int
    }

    public init(windowSeconds: Double = 10) {
        window = UInt64(max(0, windowSeconds) * 1e9)
    }

    /// One report interval's figures (`packets` counts the arrived and the lost).
    public mutating func add(time: UInt64, packets: Int, lost: Int) {
        guard packets > 0 else { return forget(before: time) }
        samples.append(Sample(time: time, packets: packets, lost: min(lost, packets)))
        self.packets += packets
        self.lost += min(lost, packets)
        forget(before: time)
    }

    /// Drops samples older than the window as of `time`.
    public mutating func forget(before time: UInt64) {
        var drop = 0
        while drop < samples.count, time > window, samples[drop].time < time - window {
            packets -= samples[drop].packets
            lost -= samples[drop].lost
            drop += 1
        }
        if drop > 0 { samples.removeFirst(drop) }
    }

    /// Drops every sample from before `time`: the estimate starts at a change point.
    public mutating func restart(from time: UInt64) {
        let drop = samples.prefix { $0.time < time }
        packets -= drop.reduce(0) { $0 + $1.packets }
        lost -= drop.reduce(0) { $0 + $1.lost }
        samples.removeFirst(drop.count)
    }

    /// The point estimate (0 with no packets).
    public var rate: Double { packets == 0 ? 0 : Double(lost) / Double(packets) }

    /// The Wilson score interval at `z` standard deviations (1.96: 95 %); [0, 1] with no packets.
    public func interval(z: Double = 1.96) -> (lower: Double, upper: Double) {
        Self.wilson(lost: lost, of: packets, z: z)
    }

    public static func wilson(lost: Int, of packets: Int, z: Double = 1.96) -> (lower: Double, upper: Double) {
        guard packets > 0 else { return (0, 1) }
        let n = Double(packets)
        let p = Double(lost) / n
        let z2 = z * z
        let centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot() / (1 + z2 / n)
        return (max(0, centre - half), min(1, centre + half))
    }
}
