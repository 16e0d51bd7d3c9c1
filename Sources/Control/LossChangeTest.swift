import Foundation

/// Whether a VNet's random loss has risen to `lossyRate` or fallen to `cleanRate`: two one-sided
/// CUSUM tests (Page's), one per direction, over the report intervals in which its queue was
/// flat (the same samples as `LossEstimator`).
///
/// Each test adds up the log-likelihood ratio of the two rates, floored at 0: towards lossy, a
/// lost packet adds ln(p1/p0) (2.3 nats for 1 % against 0.1 %) and a received one takes away
/// ln((1-p0)/(1-p1)) (0.009); towards clean the other way round. A test that reaches
/// `threshold` says so. Unlike a sliding window's estimate, the sum does not wait for the
/// clean packets of the last 20 s to leave before loss that began now can show: at 4 nats, two
/// losses within 67 packets or three within 320 turn a clean VNet lossy, while a clean VNet
/// needs about 440 packets without a loss (net) to turn clean. Rates between the two drift
/// towards the nearer one: the tests are neutral at about 0.39 % for 1 % against 0.1 %.
///
/// A report interval's losses count as one: a queue that overflowed at a moment the flat-queue
/// test missed, or a reroute's blip, loses several packets together, and random loss at the
/// rates this tells apart seldom loses two packets of one interval (at 5 % and two packets an
/// interval, 0.25 % of intervals).
public struct LossChangeTest: Sendable, Equatable {
    public let cleanRate: Double
    public let lossyRate: Double
    public let threshold: Double
    /// Evidence for the lossy rate over the clean one, nats, and when its excursion from 0
    /// began (the change point, nil at 0).
    public private(set) var towardLossy = 0.0
    public private(set) var lossySince: UInt64?
    /// Evidence for the clean rate over the lossy one, and when its excursion began.
    public private(set) var towardClean = 0.0
    public private(set) var cleanSince: UInt64?

    /// `cleanRate` < `lossyRate`, both fractions in (0, 1); `threshold` in nats.
    public init(cleanRate: Double = 0.001, lossyRate: Double = 0.01, threshold: Double = 4) {
        precondition(cleanRate > 0 && cleanRate < lossyRate && lossyRate < 1 && threshold > 0)
        self.cleanRate = cleanRate
        self.lossyRate = lossyRate
        self.threshold = threshold
    }

    /// One report interval: `packets` arrived or were lost, `lost` of them lost.
    public mutating func add(time: UInt64, packets: Int, lost: Int) {
        guard packets > 0 else { return }
        let losses = Double(min(1, max(0, lost)))
        let received = Double(max(0, packets - min(packets, max(0, lost))))
        let perLoss = log(lossyRate / cleanRate)
        let perReceived = log((1 - cleanRate) / (1 - lossyRate))
        let step = losses * perLoss - received * perReceived
        if towardLossy == 0 && step > 0 { lossySince = time }
        towardLossy = max(0, towardLossy + step)
        if towardLossy == 0 { lossySince = nil }
        if towardClean == 0 && step < 0 { cleanSince = time }
        towardClean = max(0, towardClean - step)
        if towardClean == 0 { cleanSince = nil }
    }

    public var saysLossy: Bool { towardLossy >= threshold }
    public var saysClean: Bool { towardClean >= threshold }

    /// Starts both tests afresh (after the VNet changed state on their word).
    public mutating func reset() {
        towardLossy = 0
        towardClean = 0
        lossySince = nil
        cleanSince = nil
    }
}
