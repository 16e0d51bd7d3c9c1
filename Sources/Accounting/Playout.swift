import Packets

/// The receiver's playout deadline and what is delivered by it: a packet is of use until its
/// frame's time plus the latency, on the receiver's clock (the first packet's arrival anchors
/// the sender's time; the first packet's own network delay is inside the latency, as a player
/// that starts on its first packet has it). What arrives later is *late*.
///
/// Its sequence space is the stream's, fed with originals and retransmissions alike when they
/// come in time: what it misses is the *residual* loss, what the viewer lost after recovery.
/// The stream's own tracker (network loss) takes originals only.
struct Playout {
    let latencyNanoseconds: UInt64
    var delivered = SequenceTracker()
    var tallies: IntervalTallies
    /// Per send-time interval: originals that arrived after their deadline, and retransmissions
    /// that were delivered (in time, and first).
    var late = IntervalCounts()
    var recovered = IntervalCounts()
    /// Per send-time interval: packets FEC rebuilt that were delivered (in time, and first).
    var rebuilt = IntervalCounts()

    init(latencySeconds: Double, intervalNanoseconds: UInt64) {
        latencyNanoseconds = UInt64(max(0, latencySeconds) * 1e9)
        tallies = IntervalTallies(intervalNanoseconds: intervalNanoseconds)
    }

    /// The deadline of a packet whose frame's time is `sendTime`, on the receiver's clock.
    func deadline(sendTime: UInt64, firstArrival: UInt64, firstSendTime: UInt64) -> UInt64 {
        let base = Int64(bitPattern: firstArrival) &+ (Int64(bitPattern: sendTime) &- Int64(bitPattern: firstSendTime))
        return UInt64(max(0, base &+ Int64(latencyNanoseconds)))
    }

    /// A media packet arrived at `arrival`, due by `deadline`: `original` tells whether the
    /// stream's tracker took it as a first arrival (nil: a retransmission).
    /// `rebuilt`: FEC made it, nothing arrived.
    mutating func record(_ header: MediaHeader, bytes: Int, arrival: UInt64, deadline: UInt64, firstOriginal: Bool?, rebuilt: Bool = false) {
        let interval = tallies.index(header.sendTimeNanoseconds)
        guard arrival <= deadline else {
            if firstOriginal == true { late[interval] += 1 }
            return
        }
        let outcome = delivered.record(Int64(header.streamSequence), sendTime: header.sendTimeNanoseconds, bytes: bytes, tallies: &tallies)
        if firstOriginal == nil, outcome == .new || outcome == .late {
            if rebuilt { self.rebuilt[interval] += 1 } else { recovered[interval] += 1 }
        }
    }

    mutating func close(sent: Int64, lastSendTime: UInt64) {
        delivered.close(sent: sent, lastSendTime: lastSendTime, tallies: &tallies)
    }
}

/// One count per send-time interval, growing as the stream goes on.
struct IntervalCounts {
    private(set) var counts: [Int] = []

    subscript(_ interval: Int) -> Int {
        get { interval < counts.count ? counts[interval] : 0 }
        set {
            if interval >= counts.count { counts.append(contentsOf: repeatElement(0, count: interval + 1 - counts.count)) }
            counts[interval] = newValue
        }
    }

    var total: Int { counts.reduce(0, +) }
}

/// The losses the receiver asks the sender to resend (for a stream whose packets say it
/// resends): path sequences missing on each VNet, each with its playout deadline. A NACK names
/// those due, in ranges; an entry is asked for again when no retransmission came within twice
/// the smoothed time recovery takes (at least `minimumRetry`), and given up at its deadline.
/// Bounded: at most `capacity` entries (the oldest are given up first).
public struct NackList: Sendable {
    struct Entry: Sendable {
        var deadline: UInt64
        var nextAt: UInt64
        var lastAsked: UInt64?
    }

    public static let capacity = 4096
    public static let minimumRetry: UInt64 = 20_000_000
    /// Before any recovery was timed.
    public static let initialRetry: UInt64 = 50_000_000
    /// How long a loss waits before it is first asked for (parity may rebuild it meanwhile).
    public var holdFirstAsk: UInt64 = 0

    private var pending: [MediaHeader.Origin: Entry] = [:]
    /// Packets delivered before their gap showed (FEC rebuilt one before the next packet on its
    /// VNet came): the newest `settledCapacity`, so that the gap does not ask for them.
    private var settled: Set<MediaHeader.Origin> = []
    private var settledOrder: [MediaHeader.Origin?] = Array(repeating: nil, count: NackList.settledCapacity)
    private var settledNext = 0
    static let settledCapacity = 1024
    /// Smoothed time from a NACK to the retransmission's arrival (1/8 gain), nanoseconds.
    public private(set) var smoothedRecovery: UInt64?
    public private(set) var sequence: UInt32 = 0
    /// Path sequences asked for (once each), NACK messages made, entries given up at their
    /// deadline (or pushed out), and entries a retransmission answered.
    public private(set) var asked = 0
    public private(set) var nacks = 0
    public private(set) var gaveUp = 0
    public private(set) var answered = 0

    public init() {}

    var retry: UInt64 { smoothedRecovery.map { max(Self.minimumRetry, 2 * $0) } ?? Self.initialRetry }

    /// `count` path sequences from `first` on `pathID` are missing, due by `deadline`.
    mutating func missing(pathID: UInt8, first: UInt32, count: Int, deadline: UInt64, now: UInt64) {
        guard deadline > now else {
            gaveUp += count
            return
        }
        // Only the newest `capacity` of a long gap can be held (the oldest are the least
        // likely to make their deadline, and the sender's ring has reused their slots).
        let skip = max(0, count - Self.capacity)
        gaveUp += skip
        for offset in skip..<count {
            let origin = MediaHeader.Origin(pathID: pathID, pathSequence: first &+ UInt32(offset))
            if !settled.isEmpty, settled.contains(origin) { continue }
            pending[origin] = Entry(deadline: deadline, nextAt: now &+ holdFirstAsk)
        }
        if pending.count > Self.capacity { shed(pending.count - Self.capacity) }
    }

    /// A packet sent as `origin` arrived (late, or resent): nothing more to ask for.
    mutating func arrived(_ origin: MediaHeader.Origin, now: UInt64, retransmission: Bool) {
        guard let entry = pending.removeValue(forKey: origin) else { return }
        guard retransmission else { return }
        answered += 1
        if let asked = entry.lastAsked, now > asked {
            let sample = now - asked
            smoothedRecovery = smoothedRecovery.map { $0 - $0 / 8 + sample / 8 } ?? sample
        }
    }

    /// FEC rebuilt the packet sent as `origin`: withdrawn if asked for, and never asked for if
    /// its gap shows only later.
    mutating func rebuilt(_ origin: MediaHeader.Origin, now: UInt64) {
        if pending.removeValue(forKey: origin) != nil { return }
        if let old = settledOrder[settledNext] { settled.remove(old) }
        settledOrder[settledNext] = origin
        settled.insert(origin)
        settledNext = (settledNext + 1) % Self.settledCapacity
    }

    /// When `due` has something to ask for or give up (nil: nothing pending).
    var nextDue: UInt64? { pending.values.lazy.map { min($0.nextAt, $0.deadline) }.min() }

    /// The NACK to send now (nil: nothing due); entries past their deadline are given up.
    mutating func due(streamID: UInt32, now: UInt64) -> Nack? {
        guard !pending.isEmpty else { return nil }
        var asking: [MediaHeader.Origin] = []
        for (origin, entry) in pending {
            if entry.deadline <= now {
                pending[origin] = nil
                gaveUp += 1
            } else if entry.nextAt <= now {
                asking.append(origin)
            }
        }
        guard !asking.isEmpty else { return nil }
        asking.sort { ($0.pathID, $0.pathSequence) < ($1.pathID, $1.pathSequence) }
        // The oldest first, within what one NACK holds; the rest go in the next one.
        var ranges: [Nack.Range] = []
        for origin in asking {
            if let last = ranges.last, last.pathID == origin.pathID, last.first &+ UInt32(last.count) == origin.pathSequence, last.count < UInt16.max {
                ranges[ranges.count - 1].count += 1
            } else {
                guard ranges.count < Nack.maximumRanges else { break }
                ranges.append(Nack.Range(pathID: origin.pathID, first: origin.pathSequence, count: 1))
            }
            if pending[origin]!.lastAsked == nil { asked += 1 }
            pending[origin]!.lastAsked = now
            pending[origin]!.nextAt = now &+ retry
        }
        let nack = Nack(streamID: streamID, sequence: sequence, ranges: ranges)
        sequence &+= 1
        nacks += 1
        return nack
    }

    public var count: Int { pending.count }

    /// Gives up the `count` entries due soonest.
    private mutating func shed(_ count: Int) {
        for origin in pending.sorted(by: { $0.value.deadline < $1.value.deadline }).prefix(count).map(\.key) {
            pending[origin] = nil
            gaveUp += 1
        }
    }
}
