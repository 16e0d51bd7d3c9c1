import Foundation

/// A VNet's outages as a cost (Docs/controller.md, "Flapping VNets"), after route flap damping
/// (RFC 2439): each outage (a dead declaration) adds 1 to a penalty that halves every
/// `halfLife` seconds. Above `suppress` the VNet is flapping; it is steady again once the
/// penalty has decayed below `reuse`. While it flaps, the placement charges it the share of
/// its traffic its next outages should cost: the outage rate the penalty implies (penalty over
/// its mean life, halfLife / ln 2) times how long an outage lasts before the sender leaves it.
/// One outage alone never flaps (1 < `suppress`): a VNet that failed once and came back is
/// trusted again at once, as before.
public struct OutageHistory: Sendable, Equatable {
    public var halfLife: Double
    public var suppress: Double
    public var reuse: Double
    /// The penalty as of `penaltyTime` (nanoseconds on the sender's clock).
    public private(set) var penalty = 0.0
    public private(set) var penaltyTime: UInt64 = 0
    public private(set) var flapping = false
    /// Outages counted.
    public private(set) var outages = 0

    /// `suppress` 0 turns damping off: no VNet ever flaps.
    public init(halfLife: Double = 20, suppress: Double = 1.5, reuse: Double = 0.5) {
        self.halfLife = halfLife
        self.suppress = suppress
        self.reuse = reuse
    }

    /// The penalty decayed to `now`.
    public func penalty(at now: UInt64) -> Double {
        guard penalty > 0, halfLife > 0 else { return 0 }
        let age = now > penaltyTime ? Double(now - penaltyTime) / 1e9 : 0
        return penalty * exp2(-age / halfLife)
    }

    /// Counts an outage at `now`; returns whether the VNet started flapping.
    public mutating func outage(at now: UInt64) -> Bool {
        penalty = penalty(at: now) + 1
        penaltyTime = max(now, penaltyTime)
        outages += 1
        guard suppress > 0, !flapping, penalty > suppress else { return false }
        flapping = true
        return true
    }

    /// Returns whether the VNet stopped flapping by `now` (its penalty decayed below `reuse`).
    public mutating func settle(at now: UInt64) -> Bool {
        guard flapping, penalty(at: now) < reuse else { return false }
        flapping = false
        return true
    }

    /// Outages per second, as the penalty implies at `now`.
    public func rate(at now: UInt64) -> Double { halfLife > 0 ? penalty(at: now) * M_LN2 / halfLife : 0 }

    /// The share of its traffic a flapping VNet should lose to outages, each costing
    /// `outageSeconds` before the sender leaves it: 0 while it does not flap, at most 1.
    public func cost(at now: UInt64, outageSeconds: Double) -> Double {
        flapping ? min(1, rate(at: now) * max(0, outageSeconds)) : 0
    }
}
