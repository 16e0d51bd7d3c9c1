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
    /// The playout deadline and what was delivered by it (residual loss, late, recovered).
    var playout: Playout
    /// What to NACK (only when the stream's packets say the sender resends).
    public internal(set) var nackList = NackList()
    /// Whether the sender resends what a NACK asks for (the packets' flag).
    public internal(set) var resends = false
    /// FEC: what parity rebuilt (the stream's parity packets say it sends them).
    var fec = ParityDecoder()
    public internal(set) var parityReceived = false
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

    /// `latencySeconds`: the playout deadline after each frame's time.
    public init(streamID: UInt32, intervalSeconds: Double, frameTypes: [UInt8]? = nil, latencySeconds: Double = 0.2) {
        precondition(intervalSeconds > 0)
        self.streamID = streamID
        self.intervalNanoseconds = UInt64((intervalSeconds * 1e9).rounded())
        self.streamTallies = IntervalTallies(intervalNanoseconds: intervalNanoseconds)
        self.playout = Playout(latencySeconds: latencySeconds, intervalNanoseconds: intervalNanoseconds)
        self.frameTypes = frameTypes
    }

    /// A datagram that could not be decoded.
    public mutating func drop(_ reason: Wire.DropReason) { dropped[reason, default: 0] += 1 }

    /// A media packet of this stream: `bytes` is the UDP payload length, `tos` what the IP
    /// header carried (nil if unknown), `arrival` the receiver's monotonic clock, `kernelStamp`
    /// the kernel's receive timestamp if it gave one (any clock; only gaps are used).
    public mutating func record(_ header: MediaHeader, bytes: Int, tos: UInt8?, arrival: UInt64, kernelStamp: Int64? = nil) {
        guard accepts(header.streamID, sendTime: header.sendTimeNanoseconds, departure: header.departureNanoseconds, arrival: arrival) else { return }
        // Network loss counts originals; a retransmission counts toward what was delivered.
        let retransmission = header.origin != nil
        let outcome =
            retransmission
            ? nil : stream.record(Int64(header.streamSequence), sendTime: header.sendTimeNanoseconds, bytes: bytes, tallies: &streamTallies)
        let first = outcome == .new || outcome == .late
        let deadline = playout.deadline(sendTime: header.sendTimeNanoseconds, firstArrival: firstArrival!, firstSendTime: firstSendTime)
        let path = slot(header.pathID)
        if header.resends {
            resends = true
            noteGaps(header, path: path, arrival: arrival)
        }
        pathList[path].record(
            header, bytes: bytes, tos: tos, stamp: kernelStamp ?? Int64(bitPattern: arrival), arrival: arrival,
            delay: delay(departure: header.departureNanoseconds, arrival: arrival))
        let sequence = Int64(header.streamSequence)
        let deliveredBefore = playout.delivered.contains(sequence)
        playout.record(header, bytes: bytes, arrival: arrival, deadline: deadline, firstOriginal: retransmission ? nil : first)
        if let origin = header.origin { nackList.arrived(origin, now: arrival, retransmission: true) }
        // An original in time after FEC delivered it: the network delivered it, FEC was early.
        if !retransmission, first, arrival <= deadline, parityReceived, fec.overtakes(header.streamSequence) {
            playout.rebuilt[playout.tallies.index(header.sendTimeNanoseconds)] -= 1
        }
        // Frames: each packet once, the first time it came: an original's first arrival (unless
        // a retransmission delivered it before), or a retransmission delivered in time whose
        // original never came.
        let counts =
            retransmission
            ? !deliveredBefore && playout.delivered.contains(sequence) && !stream.contains(sequence) : first && !deliveredBefore
        if counts {
            frames.record(
                header, bytes: retransmission ? bytes - MediaHeader.originSize : bytes, interval: streamTallies.index(header.sendTimeNanoseconds),
                types: frameTypes)
        }
        for packet in fec.arrived(header, payloadBytes: bytes, now: arrival) { recordRebuilt(packet, arrival: arrival) }
    }

    /// A parity packet of this stream (FEC): its path accounts it as one of its packets; what
    /// it rebuilds is delivered as a retransmission would be, counted as FEC's.
    public mutating func record(_ parity: Parity, bytes: Int, tos: UInt8?, arrival: UInt64, kernelStamp: Int64? = nil) {
        guard accepts(parity.streamID, sendTime: parity.sendTimeNanoseconds, departure: parity.departureNanoseconds, arrival: arrival) else { return }
        parityReceived = true
        let header = parity.pathHeader
        let path = slot(header.pathID)
        if resends {
            noteGaps(header, path: path, arrival: arrival)
            // Parity comes with the stream: a loss waits for its row and column before it is
            // NACKed (the sender sends a parity within a quarter of the latency).
            nackList.holdFirstAsk = playout.latencyNanoseconds / 4
        }
        pathList[path].record(
            header, bytes: bytes, tos: tos, stamp: kernelStamp ?? Int64(bitPattern: arrival), arrival: arrival,
            delay: delay(departure: parity.departureNanoseconds, arrival: arrival))
        let deadline = playout.deadline(sendTime: parity.sendTimeNanoseconds, firstArrival: firstArrival!, firstSendTime: firstSendTime)
        for packet in fec.arrived(parity, deadline: deadline, now: arrival) { recordRebuilt(packet, arrival: arrival) }
    }

    /// A packet FEC rebuilt at `arrival`: delivered if in time (and not already), its NACK
    /// withdrawn, its frame's packet counted once.
    private mutating func recordRebuilt(_ packet: ParityDecoder.Rebuilt, arrival: UInt64) {
        let header = packet.header
        let sequence = Int64(header.streamSequence)
        let deliveredBefore = playout.delivered.contains(sequence)
        let deadline = playout.deadline(sendTime: header.sendTimeNanoseconds, firstArrival: firstArrival!, firstSendTime: firstSendTime)
        playout.record(header, bytes: packet.payloadBytes, arrival: arrival, deadline: deadline, firstOriginal: nil, rebuilt: true)
        if let origin = header.origin { nackList.rebuilt(origin, now: arrival) }
        if !deliveredBefore && playout.delivered.contains(sequence) { fec.delivered(rebuilt: header.streamSequence) }
        if !deliveredBefore && playout.delivered.contains(sequence) && !stream.contains(sequence) {
            frames.record(header, bytes: packet.payloadBytes, interval: streamTallies.index(header.sendTimeNanoseconds), types: frameTypes)
        }
    }

    /// Whether a packet is this stream's and believable (counted as another stream's, or as
    /// garbled, if not). The first packet anchors the sender's clock to the receiver's; a send
    /// time too far ahead of what has elapsed is not believed.
    private mutating func accepts(_ id: UInt32, sendTime: UInt64, departure: UInt64, arrival: UInt64) -> Bool {
        guard id == streamID else {
            otherStreams += 1
            return false
        }
        if firstArrival == nil {
            firstArrival = arrival
            firstSendTime = departure
        }
        guard sendTime <= firstSendTime &+ (arrival &- firstArrival!) &+ Self.maximumLead else {
            drop(.garbled)
            return false
        }
        lastArrival = arrival
        return true
    }

    /// Relative one-way delay: how much later than the first packet this one arrived, beyond
    /// how much later it left the sender (its departure: a wait in the sender's pacing is not
    /// the network's). Clock offsets between hosts cancel out.
    private func delay(departure: UInt64, arrival: UInt64) -> Int64 {
        Int64(bitPattern: arrival &- firstArrival!) - (Int64(bitPattern: departure) - Int64(bitPattern: firstSendTime))
    }

    /// Before the path's tracker takes the packet: the path sequences it skipped are missing
    /// (to be NACKed, due by this packet's deadline, an upper bound of theirs), and one that
    /// fills a gap is no longer.
    private mutating func noteGaps(_ header: MediaHeader, path: Int, arrival: UInt64) {
        let highest = pathList[path].tracker.highest
        let sequence = Int64(header.pathSequence)
        if sequence > highest + 1 {
            let latest = max(header.sendTimeNanoseconds, pathList[path].tracker.highestSendTime)
            nackList.missing(
                pathID: header.pathID, first: UInt32(truncatingIfNeeded: highest + 1), count: Int(sequence - highest - 1),
                deadline: playout.deadline(sendTime: latest, firstArrival: firstArrival!, firstSendTime: firstSendTime), now: arrival)
        } else if sequence < highest {
            nackList.arrived(MediaHeader.Origin(pathID: header.pathID, pathSequence: header.pathSequence), now: arrival, retransmission: false)
        }
    }

    /// The NACK to send now, if the sender resends and anything is due.
    public mutating func nack(now: UInt64) -> Nack? { resends ? nackList.due(streamID: streamID, now: now) : nil }

    /// When `nack(now:)` next has something to do (nil: nothing pending).
    public var nextNackDue: UInt64? { resends ? nackList.nextDue : nil }

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
        // A path's lost tail shows no gap (nothing came after it): the end message says how
        // many each path carried, so what is missing past its highest is asked for now.
        if resends, let firstArrival {
            for path in end.paths where pathSlot[Int(path.pathID)] >= 0 {
                let tracker = pathList[pathSlot[Int(path.pathID)]].tracker
                guard Int64(path.packetsSent) > tracker.highest + 1 else { continue }
                nackList.missing(
                    pathID: path.pathID, first: UInt32(truncatingIfNeeded: tracker.highest + 1), count: Int(Int64(path.packetsSent) - tracker.highest - 1),
                    deadline: playout.deadline(sendTime: end.lastSendTimeNanoseconds, firstArrival: firstArrival, firstSendTime: firstSendTime),
                    now: arrival)
            }
        }
        stream.close(sent: Int64(end.streamPackets), lastSendTime: end.lastSendTimeNanoseconds, tallies: &streamTallies)
        playout.close(sent: Int64(end.streamPackets), lastSendTime: end.lastSendTimeNanoseconds)
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
