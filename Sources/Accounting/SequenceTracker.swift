/// Counts for one send-time interval of one sequence space (a path's, or the stream's).
public struct IntervalTally: Sendable, Equatable {
    public var received = 0
    public var bytes = 0
    /// Packets missing: sequence numbers skipped and not (yet) arrived late.
    public var missing = 0
    public var duplicates = 0
    public var reordered = 0

    /// What was sent in the interval, as far as the receiver can tell.
    public var sent: Int { received + missing }
}

/// One sequence space: which numbers arrived, which are missing, which came twice or late.
///
/// Memory is fixed: a ring of `window` bits remembers recent numbers. A number more than
/// `window` behind the highest is too old to tell a duplicate from a late arrival and is only
/// counted (`tooOld`); it stays lost. Missing numbers are attributed to send-time intervals by
/// interpolating send times between the packets around the gap (exact for the totals; at an
/// interval boundary a gap's packets are split in proportion to time).
struct SequenceTracker {
    static let window = 1 << 16

    private(set) var highest: Int64 = -1
    private(set) var highestSendTime: UInt64 = 0
    private(set) var received = 0
    private(set) var duplicates = 0
    private(set) var reordered = 0
    private(set) var tooOld = 0
    private(set) var missing = 0
    private var seen = [UInt64](repeating: 0, count: window / 64)

    enum Outcome: Equatable {
        /// First arrival of this number, in order or ahead of others.
        case new
        /// First arrival, after a higher number had arrived.
        case late
        case duplicate
        case tooOld
    }

    /// Whether `sequence` arrived (as far as the window remembers: an older one reads false).
    func contains(_ sequence: Int64) -> Bool {
        sequence >= 0 && sequence <= highest && highest - sequence < Int64(Self.window) && isSeen(sequence)
    }

    private func isSeen(_ sequence: Int64) -> Bool {
        let slot = Int(sequence % Int64(Self.window))
        return seen[slot >> 6] & (1 << UInt64(slot & 63)) != 0
    }

    private mutating func mark(_ sequence: Int64, _ value: Bool) {
        let slot = Int(sequence % Int64(Self.window))
        if value {
            seen[slot >> 6] |= 1 << UInt64(slot & 63)
        } else {
            seen[slot >> 6] &= ~(1 << UInt64(slot & 63))
        }
    }

    /// Records number `sequence` sent at `sendTime`; attributes gaps and late arrivals to
    /// `tallies` through `interval(_:)` (send time to interval index).
    mutating func record(
        _ sequence: Int64, sendTime: UInt64, bytes: Int, tallies: inout IntervalTallies
    ) -> Outcome {
        let index = tallies.index(sendTime)
        if sequence > highest {
            if sequence - highest > 1 {
                attributeGap(from: highest, to: sequence, fromTime: highestSendTime, toTime: sendTime, tallies: &tallies)
            }
            // Forget the numbers the ring is about to reuse.
            if sequence - highest >= Int64(Self.window) {
                for i in seen.indices { seen[i] = 0 }
            } else {
                var n = highest + 1
                while n < sequence {
                    mark(n, false)
                    n += 1
                }
            }
            mark(sequence, true)
            highest = sequence
            highestSendTime = sendTime
            received += 1
            tallies[index].received += 1
            tallies[index].bytes += bytes
            return .new
        }
        guard highest - sequence < Int64(Self.window) else {
            tooOld += 1
            return .tooOld
        }
        if isSeen(sequence) {
            duplicates += 1
            tallies[index].duplicates += 1
            return .duplicate
        }
        mark(sequence, true)
        received += 1
        reordered += 1
        missing -= 1
        tallies[index].received += 1
        tallies[index].bytes += bytes
        tallies[index].reordered += 1
        tallies[index].missing -= 1
        return .late
    }

    /// Numbers after the highest that were sent but never arrived (the sender said how many
    /// it sent, and when it stopped).
    mutating func close(sent: Int64, lastSendTime: UInt64, tallies: inout IntervalTallies) {
        guard sent - 1 > highest else { return }
        attributeGap(from: highest, to: sent, fromTime: highestSendTime, toTime: lastSendTime, tallies: &tallies)
        highest = sent - 1
        highestSendTime = lastSendTime
    }

    /// Numbers strictly between `low` and `high` are missing; their send times are taken to run
    /// linearly from `fromTime` to `toTime`, and each interval gets the ones that fall in it.
    private mutating func attributeGap(
        from low: Int64, to high: Int64, fromTime: UInt64, toTime: UInt64, tallies: inout IntervalTallies
    ) {
        let count = high - low - 1
        guard count > 0 else { return }
        missing += Int(count)
        let start = low < 0 ? toTime : fromTime
        let firstInterval = tallies.index(start)
        let lastInterval = tallies.index(max(start, toTime))
        if firstInterval == lastInterval {
            tallies[firstInterval].missing += Int(count)
            return
        }
        // Number n (low < n < high) sits at time start + (toTime - start) * (n - low) / (high - low).
        var assigned: Int64 = 0
        for interval in firstInterval..<lastInterval {
            let boundary = Double(tallies.startNanoseconds(interval + 1))
            let fraction = (boundary - Double(start)) / Double(toTime - start)
            // Numbers before the boundary: those with (n - low) < fraction * (high - low).
            let before = min(count, max(0, Int64((fraction * Double(high - low)).rounded(.up)) - 1))
            tallies[interval].missing += Int(before - assigned)
            assigned = before
        }
        tallies[lastInterval].missing += Int(count - assigned)
    }
}

/// Tallies per send-time interval, growing as the stream goes on (one entry per interval).
struct IntervalTallies {
    let intervalNanoseconds: UInt64
    private(set) var tallies: [IntervalTally] = []

    init(intervalNanoseconds: UInt64) { self.intervalNanoseconds = intervalNanoseconds }

    func index(_ sendTime: UInt64) -> Int { Int(sendTime / intervalNanoseconds) }

    func startNanoseconds(_ interval: Int) -> UInt64 { UInt64(interval) * intervalNanoseconds }

    subscript(_ interval: Int) -> IntervalTally {
        get { interval < tallies.count ? tallies[interval] : IntervalTally() }
        // In place: `tallies[i].received += 1` touches the stored tally, no copy in and out.
        _modify {
            if interval >= tallies.count {
                tallies.append(contentsOf: repeatElement(IntervalTally(), count: interval + 1 - tallies.count))
            }
            yield &tallies[interval]
        }
    }

    var count: Int { tallies.count }
}
