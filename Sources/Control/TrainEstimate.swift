import Packets

/// How the adaptive controller turns packet-train samples into a capacity estimate
/// (Docs/controller.md, "Capacity, from packet trains").
extension AdaptiveController {
    /// A report's train figures: a new sample moves the estimate; returns whether it came.
    mutating func takeTrainSample(_ path: inout Path, _ index: Int, _ figures: PathReport, now: UInt64) -> Bool {
        guard figures.capacitySamples > path.trainSamplesSeen, figures.capacityBitsPerSecond > 0 else { return false }
        path.trainSamplesSeen = figures.capacitySamples
        let sample = Double(figures.capacityBitsPerSecond)
        path.samples.append(sample)
        if path.samples.count > 3 { path.samples.removeFirst() }
        path.estimate = path.capped(Self.estimate(from: path.samples))
        // A train that disagrees with the estimate waits for a second to confirm it; that
        // second one goes soon, not a probe interval later: after the shortfall's 115 kbit/s
        // went back to 400, the first train read 400 at once and the split waited a second
        // more for the next (the sender shed frames all that time).
        if let estimate = path.estimate, abs(sample - estimate) > 0.15 * max(sample, estimate) {
            path.nextProbe = min(path.nextProbe, now + nanoseconds(parameters.confirmProbeDelay))
        }
        path.trainEstimate = path.estimate
        events.append(ControlEvent(kind: .capacity, vnet: index, bitsPerSecond: path.estimate, detail: "train"))
        return true
    }

    /// The estimate from the last few train samples: the mean of the last two when they agree
    /// (a real shift shows in two trains in a row), otherwise the median, so one odd train
    /// does not move the split. With only two that disagree, the first stands until a third
    /// decides (the confirming train goes soon): the second taking over let one odd train
    /// (348 kbit/s on a 200 kbit/s VNet, 2.5 s into a CI run) hold the split off for 1.3 s.
    public static func estimate(from samples: [Double]) -> Double {
        let n = samples.count
        if n >= 2, abs(samples[n - 1] - samples[n - 2]) <= 0.15 * max(samples[n - 1], samples[n - 2]) {
            return (samples[n - 1] + samples[n - 2]) / 2
        }
        if n >= 3 { return samples.sorted()[1] }
        return samples[0]
    }
}
