#if canImport(Glibc)
import Glibc
#endif
import Units

/// CLOCK_MONOTONIC in nanoseconds: the sender's and receiver's only clock for intervals.
public enum MonotonicClock {
    public static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// Waits for deadlines on the monotonic clock: an absolute sleep to shortly before the
/// deadline (so no drift accumulates), then a short spin to the deadline itself.
public enum Pacer {
    /// How long before a deadline sleeping stops and spinning starts. The kernel's timer slack
    /// (50 µs by default) and wake-up latency sit inside it.
    public static let spinNanoseconds: UInt64 = 100_000

    public static func wait(until deadline: UInt64) {
        let now = MonotonicClock.now()
        if deadline > now + spinNanoseconds {
            let wake = deadline - spinNanoseconds
            var time = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil) == EINTR {}
        }
        while MonotonicClock.now() < deadline {}
    }
}

/// Frame send times as offsets from the stream's start, in nanoseconds.
public struct FrameSchedule: Sendable {
    public var offsets: [UInt64]

    public init(sendTimesSeconds: [Double]) {
        offsets = sendTimesSeconds.map { UInt64(($0 * 1e9).rounded()) }
    }
}

/// Send-time errors against the schedule, in nanoseconds (how late each frame went out).
public struct PacingErrors: Sendable, Codable, Equatable {
    public var frames: Int
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    public var maxMicroseconds: Double

    enum CodingKeys: String, CodingKey {
        case frames
        case p50Microseconds = "p50_us"
        case p99Microseconds = "p99_us"
        case maxMicroseconds = "max_us"
    }

    public init(lateness: [Int64]) {
        let sorted = lateness.sorted()
        func percentile(_ p: Double) -> Double { nearestRank(p, ofSorted: sorted).map { Double($0) / 1000 } ?? 0 }
        frames = sorted.count
        p50Microseconds = percentile(0.5)
        p99Microseconds = percentile(0.99)
        maxMicroseconds = sorted.last.map { Double($0) / 1000 } ?? 0
    }
}
