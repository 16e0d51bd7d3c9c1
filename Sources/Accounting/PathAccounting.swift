import Packets

/// One path's accounting: its sequence space, delay and jitter, TOS marks.
struct PathAccounting {
    let id: UInt8
    var tracker = SequenceTracker()
    var tallies: IntervalTallies
    var delay = DelayTally()
    var delayByInterval: [DelayTally] = []
    /// Smoothed relative delay (1/16 gain) and RFC 3550 jitter, nanoseconds.
    var smoothedDelay: Double = 0
    var jitter: Double = 0
    var previousTransit: Int64?
    /// Packets seen per TOS byte value.
    var markCounts = [Int](repeating: 0, count: 256)
    var markMismatches = 0
    var trains = PacketTrains()
    /// The first and the latest arrival on this path (kernel stamps where the kernel gave them):
    /// the span over which the path carried what arrived.
    var firstStamp: Int64?
    var lastStamp: Int64 = 0
    /// The latest arrival on the receiver's monotonic clock (how idle the path is, for
    /// reports), and the path's packet time: the gap between two arrivals in sequence order of
    /// which the second was sent while the first still queued (its send gap at most the first
    /// one's queueing delay: a frame's fragments, a train, any packet behind a queue), which is
    /// the bottleneck's time per packet. The largest in this
    /// and the previous 1 s bucket, nanoseconds; gaps from the kernel stamps where there are any.
    var lastArrival: UInt64?
    var previousArrival: (sequence: UInt32, sendTime: UInt64, stamp: Int64, transit: Int64)?
    var packetTime = BucketMaximum()
    /// Relative delays of the whole stream, and of the current progress window (only kept
    /// when progress lines are asked for: a record costs some nanoseconds per packet).
    var delays = DelayHistogram()
    var windowDelays: DelayHistogram?
    /// Received and missing when the progress window began.
    var windowStartReceived = 0
    var windowStartMissing = 0

    init(id: UInt8, intervalNanoseconds: UInt64, progressWindow: Bool = false) {
        self.id = id
        if progressWindow { windowDelays = DelayHistogram() }
        self.tallies = IntervalTallies(intervalNanoseconds: intervalNanoseconds)
    }

    mutating func record(_ header: MediaHeader, bytes: Int, tos: UInt8?, stamp: Int64, arrival: UInt64, delay transit: Int64) {
        let outcome = tracker.record(
            Int64(header.pathSequence), sendTime: header.sendTimeNanoseconds, bytes: bytes, tallies: &tallies)
        guard outcome == .new || outcome == .late else { return }
        if firstStamp == nil { firstStamp = stamp }
        // The network's measures go by when the packet left the sender (its departure), not by
        // its frame's time: a wait in the sender's pacing is not the network's.
        let departure = header.departureNanoseconds
        if let previous = previousArrival, previous.sequence < header.pathSequence, stamp >= previous.stamp,
            departure >= previous.sendTime,
            Int64(departure - previous.sendTime) <= max(0, previous.transit - min(delay.minimum, transit))
        {
            packetTime.record(UInt64(stamp - previous.stamp), at: arrival)
        }
        previousArrival = (header.pathSequence, departure, stamp, transit)
        lastArrival = max(lastArrival ?? 0, arrival)
        lastStamp = max(lastStamp, stamp)
        trains.record(
            pathSequence: Int64(header.pathSequence), sendTime: departure,
            bytes: bytes + IPv4UDP.headerSize, stamp: stamp)
        if let tos {
            markCounts[Int(tos)] += 1
            if tos != header.mark { markMismatches += 1 }
        }
        if let previousTransit {
            jitter += (Double(abs(transit - previousTransit)) - jitter) / 16
            smoothedDelay += (Double(transit) - smoothedDelay) / 16
        } else {
            smoothedDelay = Double(transit)
        }
        previousTransit = transit
        delay.add(transit)
        delays.record(nanoseconds: transit)
        windowDelays?.record(nanoseconds: transit)
        let index = tallies.index(header.sendTimeNanoseconds)
        if index >= delayByInterval.count {
            delayByInterval.append(contentsOf: repeatElement(DelayTally(), count: index + 1 - delayByInterval.count))
        }
        delayByInterval[index].add(transit)
    }

    mutating func close(sent: Int64, lastSendTime: UInt64) {
        tracker.close(sent: sent, lastSendTime: lastSendTime, tallies: &tallies)
    }

    /// TOS byte values seen, with their counts.
    /// What arrived and was lost on this path since the last call, with the delay percentiles
    /// of what arrived; the window starts again.
    mutating func takeProgress() -> PathProgress {
        let progress = PathProgress(
            path: id, received: tracker.received - windowStartReceived, lost: max(0, tracker.missing) - windowStartMissing,
            delayMsP50: windowDelays?.percentile(50), delayMsP99: windowDelays?.percentile(99))
        windowStartReceived = tracker.received
        windowStartMissing = max(0, tracker.missing)
        windowDelays?.reset()
        return progress
    }

    /// Seconds from the first to the latest arrival (nil before two packets came).
    var arrivalSpanSeconds: Double? {
        guard let firstStamp, tracker.received > 1, lastStamp > firstStamp else { return nil }
        return Double(lastStamp - firstStamp) / 1e9
    }

    var marks: [UInt8: Int] {
        var result: [UInt8: Int] = [:]
        for (value, count) in markCounts.enumerated() where count > 0 { result[UInt8(value)] = count }
        return result
    }

    func report(now: UInt64) -> PathReport {
        PathReport(
            pathID: id, highestSequencePlusOne: UInt32(clamping: tracker.highest + 1),
            packetsReceived: UInt32(clamping: tracker.received), bytesReceived: UInt64(tallies.tallies.reduce(0) { $0 + $1.bytes }),
            packetsLost: UInt32(clamping: max(0, tracker.missing)), packetsReordered: UInt32(clamping: tracker.reordered),
            packetsDuplicated: UInt32(clamping: tracker.duplicates),
            delayMicroseconds: Int32(clamping: Int64(smoothedDelay / 1000)),
            jitterMicroseconds: UInt32(clamping: Int64(jitter / 1000)),
            capacityBitsPerSecond: UInt32(clamping: Int64(trains.latestBitsPerSecond)),
            capacitySamples: UInt32(clamping: trains.samples),
            idleMicroseconds: lastArrival.map { UInt32(clamping: (now &- min(now, $0)) / 1000) } ?? PathReport.neverArrived,
            packetTimeMicroseconds: UInt32(clamping: packetTime.maximum(at: now) / 1000))
    }
}

/// Mean, minimum and maximum of relative delays, nanoseconds.
struct DelayTally: Equatable {
    var count = 0
    var sum: Int64 = 0
    var minimum = Int64.max
    var maximum = Int64.min

    mutating func add(_ value: Int64) {
        count += 1
        sum += value
        minimum = min(minimum, value)
        maximum = max(maximum, value)
    }

    var mean: Double? { count > 0 ? Double(sum) / Double(count) : nil }
}

/// The largest value recorded in the current and the previous bucket of time (1 s): a maximum
/// that forgets within two buckets.
struct BucketMaximum: Equatable {
    var bucketNanoseconds: UInt64 = 1_000_000_000
    var bucket: UInt64 = 0
    var current: UInt64 = 0
    var previous: UInt64 = 0

    mutating func record(_ value: UInt64, at time: UInt64) {
        roll(to: time)
        current = max(current, value)
    }

    func maximum(at time: UInt64) -> UInt64 {
        let now = time / bucketNanoseconds
        if now == bucket { return max(current, previous) }
        if now == bucket + 1 { return current }
        return 0
    }

    private mutating func roll(to time: UInt64) {
        let now = time / bucketNanoseconds
        guard now != bucket else { return }
        previous = now == bucket + 1 ? current : 0
        current = 0
        bucket = now
    }
}
