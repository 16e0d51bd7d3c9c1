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
            firstSendTime = header.departureNanoseconds
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
        // beyond how much later it left the sender (its departure: a wait in the sender's
        // pacing is not the network's). Clock offsets between hosts cancel out.
        let delay = Int64(bitPattern: elapsed) - (Int64(bitPattern: header.departureNanoseconds) - Int64(bitPattern: firstSendTime))
        pathList[slot(header.pathID)].record(
            header, bytes: bytes, tos: tos, stamp: kernelStamp ?? Int64(bitPattern: arrival), arrival: arrival, delay: delay)
        if outcome == .new || outcome == .late {
            frames.record(header, bytes: bytes, interval: streamTallies.index(header.sendTimeNanoseconds), types: frameTypes)
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
        frames.close(frameCount: Int64(end.frameCount))
    }

    /// The report to send now: cumulative per-path figures.
    public func report(sequence: UInt32, now: UInt64) -> ReceiverReport {
        ReceiverReport(
            streamID: streamID, reportSequence: sequence,
            reportTimeNanoseconds: firstArrival.map { now &- $0 } ?? 0,
            paths: pathList.sorted { $0.id < $1.id }.prefix(ReceiverReport.maximumPaths).map { $0.report(now: now) })
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
