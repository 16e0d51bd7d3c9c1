/// How the adaptive controller turns packet-train samples into a capacity estimate
/// (Docs/controller.md, "Capacity, from packet trains").
extension AdaptiveController {
    /// The estimate from the last few train samples: the mean of the last two when they agree
    /// (a real shift shows in two trains in a row), otherwise the median, so one odd train
    /// does not move the split.
    static func estimate(from samples: [Double]) -> Double {
        let n = samples.count
        if n >= 2, abs(samples[n - 1] - samples[n - 2]) <= 0.15 * max(samples[n - 1], samples[n - 2]) {
            return (samples[n - 1] + samples[n - 2]) / 2
        }
        if n >= 3 { return samples.sorted()[1] }
        return samples[n - 1]
    }
}
