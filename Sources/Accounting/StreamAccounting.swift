import Packets

/// Everything the receiver learns of one stream, per path and per send-time interval: a state
/// machine fed with decoded packets and arrival times; no I/O, no clock of its own.
///
/// Memory does not grow with the stream's length beyond one tally per interval per path: the
/// sequence windows and the frame window are fixed.
public struct StreamAccounting {
    public let streamID: UInt32
    public let intervalNanoseconds: UInt64
    /// Frame types in coding order (frame number = index), when the receiver was given the
    /// trace: it names the type of frames of which no packet arrived.
    let frameTypes: [FrameTypeLetter]?

    var stream: SequenceTracker = SequenceTracker()
    var streamTallies: IntervalTallies
    /// Paths in the order they first appeared, and where each path id sits in that list (-1:
    /// not seen): an array lookup per packet, not a hash.
    var pathList: [PathAccounting] = []
    var pathSlot = [Int](repeating: -1, count: 256)
    var frames = FrameAccounting()
    /// Datagrams dropped undecoded, by reason.
    public internal(set) var dropped: [Wire.DropReason: Int] = [:]
    /// Datagrams of other streams.
    public internal(set) var otherStreams = 0
    public internal(set) var end: StreamEnd?
    /// Whether each path keeps a delay histogram per progress window (`takeProgress`).
    public var keepsProgressWindows = false

    var firstArrival: UInt64?
    var firstSendTime: UInt64 = 0
    public internal(set) var lastArrival: UInt64 = 0

    /// A send time this far beyond what the receiver has seen elapse is not believed.
    static let maximumLead: UInt64 = 600_000_000_000

    public typealias FrameTypeLetter = UInt8

    public init(streamID: UInt32, intervalSeconds: Double, frameTypes: [UInt8]? = nil) {
        precondition(intervalSeconds > 0)
        self.streamID = streamID
        self.intervalNanoseconds = UInt64((intervalSeconds * 1e9).rounded())
        self.streamTallies = IntervalTallies(intervalNanoseconds: intervalNanoseconds)
        self.frameTypes = frameTypes
    }

    /// A datagram that could not be decoded.
    public mutating func drop(_ reason: Wire.DropReason) { dropped[reason, default: 0] += 1 }

    /// A media packet of this stream: `bytes` is the UDP payload length, `tos` what the IP
    /// header carried (nil if unknown), `arrival` the receiver's monotonic clock, `kernelStamp`
    /// the kernel's receive timestamp if it gave one (any clock; only gaps are used).
    public mutating func record(_ header: MediaHeader, bytes: Int, tos: UInt8?, arrival: UInt64, kernelStamp: Int64? = nil) {
        guard header.streamID == streamID else {
            otherStreams += 1
            return
        }
        if firstArrival == nil {
            firstArrival = arrival
            firstSendTime = header.sendTimeNanoseconds
        }
        let elapsed = arrival &- firstArrival!
        guard header.sendTimeNanoseconds <= firstSendTime &+ elapsed &+ Self.maximumLead else {
            drop(.garbled)
            return
        }
        lastArrival = arrival
        let outcome = stream.record(
            Int64(header.streamSequence), sendTime: header.sendTimeNanoseconds, bytes: bytes, tallies: &streamTallies)
        // Relative one-way delay: how much later than the first packet this one arrived,
        // beyond how much later it was sent. Clock offsets between hosts cancel out.
        let delay = Int64(bitPattern: elapsed) - (Int64(bitPattern: header.sendTimeNanoseconds) - Int64(bitPattern: firstSendTime))
        pathList[slot(header.pathID)].record(header, bytes: bytes, tos: tos, stamp: kernelStamp ?? Int64(bitPattern: arrival), delay: delay)
        if outcome == .new || outcome == .late {
            frames.record(header, types: frameTypes)
        }
    }

    /// The sender's end-of-stream message: counts after the last arrival become losses.
    public mutating func record(_ end: StreamEnd, arrival: UInt64) {
        guard end.streamID == streamID else {
            otherStreams += 1
            return
        }
        guard self.end == nil else { return }  // the sender repeats it on every VNet
        let elapsed = firstArrival.map { arrival &- $0 } ?? 0
        guard end.lastSendTimeNanoseconds <= firstSendTime &+ elapsed &+ Self.maximumLead,
            end.paths.count <= ReceiverReport.maximumPaths
        else {
            drop(.garbled)
            return
        }
        self.end = end
        stream.close(sent: Int64(end.streamPackets), lastSendTime: end.lastSendTimeNanoseconds, tallies: &streamTallies)
        for path in end.paths {
            pathList[slot(path.pathID)].close(sent: Int64(path.packetsSent), lastSendTime: end.lastSendTimeNanoseconds)
        }
        frames.close(frameCount: Int64(end.frameCount), types: frameTypes)
    }

    /// The report to send now: cumulative per-path figures.
    public func report(sequence: UInt32, now: UInt64) -> ReceiverReport {
        ReceiverReport(
            streamID: streamID, reportSequence: sequence,
            reportTimeNanoseconds: firstArrival.map { now &- $0 } ?? 0,
            paths: pathList.sorted { $0.id < $1.id }.prefix(ReceiverReport.maximumPaths).map(\.report))
    }

    /// Per path, what arrived and was lost since the last call, and its delay percentiles
    /// (`recv --progress`).
    public mutating func takeProgress() -> [PathProgress] {
        pathList.indices.sorted { pathList[$0].id < pathList[$1].id }.map { pathList[$0].takeProgress() }
    }

    /// Path ids seen so far, in order.
    public var pathIDs: [UInt8] { pathList.map(\.id).sorted() }

    /// Each path's accounting by id (for reports; the per-packet path uses `pathSlot`).
    var paths: [UInt8: PathAccounting] { Dictionary(uniqueKeysWithValues: pathList.map { ($0.id, $0) }) }

    /// Where path `id` sits in `pathList`, adding it on first sight.
    private mutating func slot(_ id: UInt8) -> Int {
        let slot = pathSlot[Int(id)]
        if slot >= 0 { return slot }
        pathList.append(PathAccounting(id: id, intervalNanoseconds: intervalNanoseconds, progressWindow: keepsProgressWindows))
        pathSlot[Int(id)] = pathList.count - 1
        return pathList.count - 1
    }
}

/// Frames and their fragments: a frame is lost when any of its packets is. A window of recent
/// frames waits for late fragments; older ones are settled. The window is a ring indexed by
/// frame number, and the settled counts are arrays indexed by type letter: no hashing and no
/// allocation per packet.
struct FrameAccounting {
    static let window: Int64 = 4096

    struct Pending {
        var type: UInt8
        var fragments: Int
        var received: Int
    }

    /// Slot `n % window` holds frame n while it waits (`placed`), for `highest - window < n <= highest`.
    var ring = [Pending](repeating: Pending(type: 0, fragments: 0, received: 0), count: Int(window))
    var placed = [Bool](repeating: false, count: Int(window))
    var highest: Int64 = -1
    /// Every frame below this number is settled.
    var settledBelow: Int64 = 0
    /// Frames settled, and of those lost, by type letter.
    var settledFrames = [Int](repeating: 0, count: 256)
    var settledLost = [Int](repeating: 0, count: 256)

    private static func slot(_ number: Int64) -> Int { Int(number & (window - 1)) }

    mutating func record(_ header: MediaHeader, types: [UInt8]?) {
        let number = Int64(header.frameNumber)
        if number < settledBelow { return }  // already settled as lost; too late to help
        if number > highest {
            // Frames leaving the window are settled before their slots are reused.
            settle(below: number - Self.window + 1, types: types)
            // Frames skipped over wait in the window too: a packet of theirs may still come.
            var n = max(highest + 1, number - Self.window + 1)
            while n < number {
                ring[Self.slot(n)] = Pending(type: type(of: n, types), fragments: 1, received: 0)
                placed[Self.slot(n)] = true
                n += 1
            }
            highest = number
        }
        let slot = Self.slot(number)
        if !placed[slot] {
            ring[slot] = Pending(type: header.frameType, fragments: Int(header.fragmentCount), received: 0)
            placed[slot] = true
        }
        ring[slot].type = header.frameType
        ring[slot].fragments = Int(header.fragmentCount)
        ring[slot].received += 1
    }

    private func type(of number: Int64, _ types: [UInt8]?) -> UInt8 {
        guard let types, number >= 0, number < types.count else { return UInt8(ascii: "-") }
        return types[Int(number)]
    }

    /// Settles the frames below `limit`: those waiting in the ring one by one, those never
    /// placed (a gap wider than the window) in bulk, as lost.
    private mutating func settle(below limit: Int64, types: [UInt8]?) {
        guard limit > settledBelow else { return }
        let ringEnd = min(limit, highest + 1)
        var n = max(settledBelow, highest + 1 - Self.window)
        if n > settledBelow { settleLost(from: settledBelow, to: n, types: types) }
        while n < ringEnd {
            let slot = Self.slot(n)
            if placed[slot] {
                let frame = ring[slot]
                settledFrames[Int(frame.type)] += 1
                if frame.received < frame.fragments { settledLost[Int(frame.type)] += 1 }
                placed[slot] = false
            }
            n += 1
        }
        settleLost(from: max(ringEnd, settledBelow), to: limit, types: types)
        settledBelow = limit
    }

    /// Frames `low..<high`, of which nothing arrived, settled as lost. Without types (or past
    /// the trace's end) they count in bulk, so a garbled frame number cannot make this loop long.
    private mutating func settleLost(from low: Int64, to high: Int64, types: [UInt8]?) {
        guard high > low else { return }
        var bulkFrom = low
        if let types, low < types.count {
            let typedEnd = min(high, Int64(types.count))
            for n in low..<typedEnd {
                settledFrames[Int(types[Int(n)])] += 1
                settledLost[Int(types[Int(n)])] += 1
            }
            bulkFrom = typedEnd
        }
        guard high > bulkFrom else { return }
        settledFrames[Int(UInt8(ascii: "-"))] += Int(high - bulkFrom)
        settledLost[Int(UInt8(ascii: "-"))] += Int(high - bulkFrom)
    }

    /// The sender said how many frames there were: the ones never seen are lost.
    mutating func close(frameCount: Int64, types: [UInt8]?) {
        settleLost(from: highest + 1, to: frameCount, types: types)
        highest = max(highest, frameCount - 1)
    }

    /// Every frame, settled now: (frames, lost) by type letter.
    func summary() -> [UInt8: (frames: Int, lost: Int)] {
        var result: [UInt8: (frames: Int, lost: Int)] = [:]
        for type in 0..<256 where settledFrames[type] > 0 { result[UInt8(type)] = (settledFrames[type], settledLost[type]) }
        for slot in placed.indices where placed[slot] {
            let frame = ring[slot]
            result[frame.type, default: (0, 0)].frames += 1
            if frame.received < frame.fragments { result[frame.type, default: (0, 0)].lost += 1 }
        }
        return result
    }
}

/// One path's line of `recv --progress`: since the previous line.
public struct PathProgress: Sendable, Equatable {
    public var path: UInt8
    public var received: Int
    /// Losses the sequence numbers showed in the window (gaps; reordering can take some back).
    public var lost: Int
    /// Relative one-way delay percentiles of what arrived, milliseconds.
    public var delayMsP50: Double?
    public var delayMsP99: Double?
}
