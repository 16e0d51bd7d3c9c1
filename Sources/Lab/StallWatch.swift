import Foundation

/// Finds the time this machine did not run us: a thread wakes every millisecond, and each wake
/// later than that (plus a millisecond of slack) is a stall from where the wake was due to where
/// it came. While the machine is paused (a virtual machine's host took its CPU) or so loaded that
/// a thread that only sleeps is not scheduled, nothing of ours could have run either, so a
/// schedule event's lateness can be told apart from what the stall alone explains.
public final class StallWatch: @unchecked Sendable {
    /// A wake this much later than due counts, seconds.
    public static let slackS = 0.001
    let periodS: Double
    private let lock = NSLock()
    private var running = true
    private var stalls: [ClosedRange<Double>] = []
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    /// Starts watching at once.
    public init(periodS: Double = 0.001) {
        self.periodS = periodS
        let thread = Thread { [unowned self] in self.watch() }
        thread.name = "stall watch"
        thread.qualityOfService = .userInteractive
        self.thread = thread
        thread.start()
    }

    private func watch() {
        var last = ProcessInfo.processInfo.systemUptime
        while true {
            lock.lock()
            let go = running
            lock.unlock()
            guard go else { break }
            usleep(useconds_t(periodS * 1e6))
            let now = ProcessInfo.processInfo.systemUptime
            let due = last + periodS
            if now - due > Self.slackS {
                lock.lock()
                stalls.append(due...now)
                lock.unlock()
            }
            last = now
        }
        done.signal()
    }

    /// Stops the thread (idempotent).
    public func stop() {
        lock.lock()
        let wasRunning = running
        running = false
        lock.unlock()
        if wasRunning { done.wait() }
    }

    /// How much of `from...to` (`ProcessInfo.systemUptime` seconds) fell in stalls, seconds.
    public func stalled(from: Double, to: Double) -> Double {
        lock.lock()
        defer { lock.unlock() }
        return stalls.reduce(0) { sum, stall in sum + max(0, min(stall.upperBound, to) - max(stall.lowerBound, from)) }
    }

    deinit { stop() }
}
