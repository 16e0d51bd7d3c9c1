import Histogram

/// Relative one-way delays, whose percentiles the reports give. A delay here is relative to
/// the path's first packet, so it may be negative: two HDR histograms (microseconds, three
/// significant digits, up to ten minutes) hold the delays at or above zero and the negated ones
/// below it. Fixed memory; a record is an index computation, no allocation.
struct DelayHistogram {
    private var atOrAbove = DelayHistogram.empty()
    private var below = DelayHistogram.empty()

    private static func empty() -> Histogram<UInt32> {
        Histogram<UInt32>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    }

    var count: UInt64 { atOrAbove.totalCount + below.totalCount }

    mutating func record(nanoseconds: Int64) {
        let microseconds = nanoseconds / 1000
        if microseconds >= 0 {
            _ = atOrAbove.record(UInt64(min(microseconds, 600_000_000)))
        } else {
            _ = below.record(UInt64(min(-microseconds, 600_000_000)))
        }
    }

    /// The delay at `percentile` (0-100), milliseconds; nil when nothing was recorded.
    func percentile(_ percentile: Double) -> Double? {
        let total = count
        guard total > 0 else { return nil }
        let negatives = below.totalCount
        let rank = max(1, (percentile / 100 * Double(total)).rounded(.up))
        if rank <= Double(negatives) {
            // Among the negative ones, counted from the most negative: the k-th smallest delay is
            // the (negatives - k + 1)-th smallest magnitude.
            let fromTop = 100 * (Double(negatives) - rank + 1) / Double(negatives)
            return -Double(below.valueAtPercentile(min(100, fromTop))) / 1000
        }
        let within = 100 * (rank - Double(negatives)) / Double(atOrAbove.totalCount)
        return Double(atOrAbove.valueAtPercentile(min(100, within))) / 1000
    }

    mutating func reset() {
        atOrAbove.reset()
        below.reset()
    }
}
