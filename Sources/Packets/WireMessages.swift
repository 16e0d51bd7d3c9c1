/// VNetStream's messages on the wire, version 5. Specified in `Docs/wire-format.md`; every
/// field is big-endian. Encoding and decoding are pure functions over bytes: no I/O here.
public enum Wire {
    /// `VN`, the first two bytes of every VNetStream datagram.
    public static let magic: UInt16 = 0x564E
    public static let version: UInt8 = 5

    public enum Kind: UInt8, Sendable {
        case media = 1
        case report = 2
        case streamEnd = 3
        /// The receiver's request to resend packets it found missing (`Nack`).
        case nack = 4
        /// A media packet sent again: the media header, then where it was first sent.
        case retransmission = 5
        /// FEC: the XOR of up to 32 media packets (`Parity`, in `ParityMessage.swift`).
        case parity = 6
    }

    /// Why a datagram was dropped instead of decoded; the receiver and sender count each.
    public enum DropReason: String, Error, Sendable, CaseIterable, Codable {
        /// Fewer bytes than the message's fixed part.
        case short
        /// Not ours: the magic is wrong.
        case foreign
        /// Ours, but a version this build does not speak (a newer sender, say).
        case futureVersion = "future_version"
        /// A kind this build does not know, or not the kind expected here.
        case unknownKind = "unknown_kind"
        /// Ours and the right length, but its fields contradict each other.
        case garbled
    }
}

/// The fixed header in front of every media packet's payload.
public struct MediaHeader: Sendable, Equatable {
    public static let size = 40

    public var streamID: UInt32
    /// Counts every distinct packet of the stream (copies in duplicate mode share it).
    public var streamSequence: UInt32
    /// Counts the packets sent on this path, from 0.
    public var pathSequence: UInt32
    public var frameNumber: UInt32
    /// Sender's clock, nanoseconds since the stream started: the frame's time (what a playout
    /// deadline and the per-interval frame counts go by).
    public var sendTimeNanoseconds: UInt64
    public var fragmentIndex: UInt16
    public var fragmentCount: UInt16
    public var pathID: UInt8
    /// The frame's coding type as a letter (`I`, `P`, `B`, `H`, `-`).
    public var frameType: UInt8
    /// The TOS byte (TT field) the sender set on this packet, so the receiver can check it.
    public var mark: UInt8
    /// How many frames right before this one (in coding order) the sender shed, up to
    /// `maximumShedRun` (a longer run is reported as that many): the receiver counts them as
    /// shed, not lost.
    public var shedBefore: UInt8
    /// The stream sends every B frame after both its reference frames (coding order, as
    /// encoders emit B frames); clear: B frames come between their references (display order).
    public var referencesFirst: Bool
    /// The sender keeps what it sends and resends what a NACK asks for (`send --recovery`): the
    /// receiver NACKs only such streams.
    public var resends = false
    /// A copy of a packet sent before or beside it (probe padding, a probe of a dead VNet), not
    /// part of the split: FEC never protects one, so the receiver keeps the original's fields.
    public var copy = false
    /// How long the packet waited in the sender's pacing onto its VNet, microseconds (a
    /// probe train's packets share one wait). A retransmission's counts from its send time.
    public var heldMicroseconds: UInt32
    /// A retransmission's first sending: the VNet and path sequence it was lost under (nil: an
    /// original). Its own path id and path sequence are those of the VNet it goes on now.
    public var origin: Origin?

    /// Where a packet was first sent.
    public struct Origin: Sendable, Equatable, Hashable {
        public var pathID: UInt8
        public var pathSequence: UInt32

        public init(pathID: UInt8, pathSequence: UInt32) {
            self.pathID = pathID
            self.pathSequence = pathSequence
        }
    }

    /// Bytes a retransmission adds after the media header: its origin.
    public static let originSize = 8
    /// Bytes of this header on the wire: `size`, plus the origin for a retransmission.
    public var encodedSize: Int { origin == nil ? Self.size : Self.size + Self.originSize }

    /// When the packet left the sender: the send time plus its wait in the pacing. What the
    /// network's delay, packet time and probe trains go by, so that the sender's own wait does
    /// not read as queueing in the network.
    public var departureNanoseconds: UInt64 { sendTimeNanoseconds &+ UInt64(heldMicroseconds) * 1000 }

    public static let maximumShedRun: UInt8 = 31
    /// The copy bit of the frame flags.
    public static let copyFlag: UInt8 = 0x20

    public init(
        streamID: UInt32, streamSequence: UInt32, pathSequence: UInt32, frameNumber: UInt32,
        sendTimeNanoseconds: UInt64, fragmentIndex: UInt16, fragmentCount: UInt16, pathID: UInt8,
        frameType: UInt8, mark: UInt8, shedBefore: UInt8 = 0, referencesFirst: Bool = false, heldMicroseconds: UInt32 = 0,
        origin: Origin? = nil
    ) {
        self.origin = origin
        self.streamID = streamID
        self.streamSequence = streamSequence
        self.pathSequence = pathSequence
        self.frameNumber = frameNumber
        self.sendTimeNanoseconds = sendTimeNanoseconds
        self.fragmentIndex = fragmentIndex
        self.fragmentCount = fragmentCount
        self.pathID = pathID
        self.frameType = frameType
        self.mark = mark
        self.shedBefore = min(shedBefore, Self.maximumShedRun)
        self.referencesFirst = referencesFirst
        self.heldMicroseconds = heldMicroseconds
    }

    /// Writes the header into `buffer` at `offset` (which must have `encodedSize` bytes there).
    public func write(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + encodedSize <= buffer.count)
        var w = ByteStore(buffer, offset: offset)
        w.u16(Wire.magic)
        w.u8(Wire.version)
        w.u8(origin == nil ? Wire.Kind.media.rawValue : Wire.Kind.retransmission.rawValue)
        w.u32(streamID)
        w.u32(streamSequence)
        w.u32(pathSequence)
        w.u32(frameNumber)
        w.u64(sendTimeNanoseconds)
        w.u16(fragmentIndex)
        w.u16(fragmentCount)
        w.u8(pathID)
        w.u8(frameType)
        w.u8(mark)
        w.u8(frameFlags)
        w.u32(heldMicroseconds)
        if let origin {
            w.u8(origin.pathID)
            w.u8(0)
            w.u16(0)
            w.u32(origin.pathSequence)
        }
    }

    /// The frame-flags byte: the shed run (bits 0-4), copy (5), resends (6), references first (7).
    public var frameFlags: UInt8 {
        get {
            min(shedBefore, Self.maximumShedRun) | (copy ? Self.copyFlag : 0) | (resends ? 0x40 : 0) | (referencesFirst ? 0x80 : 0)
        }
        set {
            shedBefore = newValue & Self.maximumShedRun
            copy = newValue & Self.copyFlag != 0
            resends = newValue & 0x40 != 0
            referencesFirst = newValue & 0x80 != 0
        }
    }

    public var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: encodedSize)
        bytes.withUnsafeMutableBytes { write(into: $0, at: 0) }
        return bytes
    }

    /// Decodes a media header (an original's or a retransmission's) from the start of
    /// `datagram`, or says why not.
    public static func decode(_ datagram: UnsafeRawBufferPointer) -> Result<MediaHeader, Wire.DropReason> {
        var r = ByteReader(datagram)
        let retransmission = datagram.count >= 4 && datagram[3] == Wire.Kind.retransmission.rawValue
        if let reason = checkPreamble(&r, kind: retransmission ? .retransmission : .media, fixedSize: retransmission ? size + originSize : size) {
            return .failure(reason)
        }
        var header = MediaHeader(
            streamID: r.u32(), streamSequence: r.u32(), pathSequence: r.u32(), frameNumber: r.u32(),
            sendTimeNanoseconds: r.u64(), fragmentIndex: r.u16(), fragmentCount: r.u16(), pathID: r.u8(),
            frameType: r.u8(), mark: r.u8())
        header.frameFlags = r.u8()
        header.heldMicroseconds = r.u32()
        if retransmission {
            let pathID = r.u8()
            r.skip(3)
            header.origin = Origin(pathID: pathID, pathSequence: r.u32())
        }
        guard header.fragmentCount > 0, header.fragmentIndex < header.fragmentCount,
            header.sendTimeNanoseconds < 1 << 62
        else { return .failure(.garbled) }
        return .success(header)
    }

    public static func decode(_ bytes: [UInt8]) -> Result<MediaHeader, Wire.DropReason> {
        bytes.withUnsafeBytes { decode($0) }
    }
}

extension ByteWriter {
    /// Magic, version and kind: the first four bytes of every message.
    mutating func preamble(_ kind: Wire.Kind) {
        u16(Wire.magic)
        u8(Wire.version)
        u8(kind.rawValue)
    }
}

/// Reads and checks magic, version and kind; nil when they are right and `fixedSize` bytes are there.
func checkPreamble(_ r: inout ByteReader, kind: Wire.Kind, fixedSize: Int) -> Wire.DropReason? {
    guard r.remaining >= 4 else { return .short }
    guard r.u16() == Wire.magic else { return .foreign }
    guard r.u8() == Wire.version else { return .futureVersion }
    guard r.u8() == kind.rawValue else { return .unknownKind }
    guard r.remaining >= fixedSize - 4 else { return .short }
    return nil
}

/// What the receiver knows of one path, cumulative since the stream began.
public struct PathReport: Sendable, Equatable, Codable {
    public static let size = 56
    /// `idleMicroseconds` when nothing has arrived on the path yet (or a report does not say).
    public static let neverArrived = UInt32.max

    public var pathID: UInt8
    /// Highest path sequence seen, plus one (0: nothing yet), so the sender can tell progress.
    public var highestSequencePlusOne: UInt32
    public var packetsReceived: UInt32
    public var bytesReceived: UInt64
    public var packetsLost: UInt32
    public var packetsReordered: UInt32
    public var packetsDuplicated: UInt32
    /// One-way delay relative to the path's first packet, smoothed, microseconds (may be negative).
    public var delayMicroseconds: Int32
    /// RFC 3550 interarrival jitter, microseconds.
    public var jitterMicroseconds: UInt32
    /// The path's bottleneck rate as the latest packet train measured it (IPv4 bits per second;
    /// 0: no train yet), and how many trains have been measured so far (so a sender can tell a
    /// new sample from a repeated one).
    public var capacityBitsPerSecond: UInt32
    public var capacitySamples: UInt32
    /// How long before the report the path's latest packet arrived, microseconds, on the
    /// receiver's clock (`neverArrived`: nothing yet), and the path's packet time: the arrival
    /// gap of a packet that queued behind the one before, the largest of the last 1-2 s (0: none
    /// seen). A dead
    /// path's idle time grows past any packet time; a slow one delivers a packet every packet
    /// time (liveness, Docs/controller.md).
    public var idleMicroseconds: UInt32
    public var packetTimeMicroseconds: UInt32

    public init(
        pathID: UInt8, highestSequencePlusOne: UInt32, packetsReceived: UInt32, bytesReceived: UInt64,
        packetsLost: UInt32, packetsReordered: UInt32, packetsDuplicated: UInt32, delayMicroseconds: Int32,
        jitterMicroseconds: UInt32, capacityBitsPerSecond: UInt32 = 0, capacitySamples: UInt32 = 0,
        idleMicroseconds: UInt32 = PathReport.neverArrived, packetTimeMicroseconds: UInt32 = 0
    ) {
        self.idleMicroseconds = idleMicroseconds
        self.packetTimeMicroseconds = packetTimeMicroseconds
        self.capacityBitsPerSecond = capacityBitsPerSecond
        self.capacitySamples = capacitySamples
        self.pathID = pathID
        self.highestSequencePlusOne = highestSequencePlusOne
        self.packetsReceived = packetsReceived
        self.bytesReceived = bytesReceived
        self.packetsLost = packetsLost
        self.packetsReordered = packetsReordered
        self.packetsDuplicated = packetsDuplicated
        self.delayMicroseconds = delayMicroseconds
        self.jitterMicroseconds = jitterMicroseconds
    }
}

/// The receiver's report to the sender, sent every `--report-ms` over every VNet.
public struct ReceiverReport: Sendable, Equatable {
    public static let fixedSize = 24
    /// The most paths one report carries (and so one stream may use).
    public static let maximumPaths = 32

    public var streamID: UInt32
    /// Counts reports, from 0; copies sent over several VNets share it.
    public var reportSequence: UInt32
    /// Receiver's clock, nanoseconds since its first packet of the stream.
    public var reportTimeNanoseconds: UInt64
    public var paths: [PathReport]

    public init(streamID: UInt32, reportSequence: UInt32, reportTimeNanoseconds: UInt64, paths: [PathReport]) {
        self.streamID = streamID
        self.reportSequence = reportSequence
        self.reportTimeNanoseconds = reportTimeNanoseconds
        self.paths = paths
    }

    public var encoded: [UInt8] {
        precondition(paths.count <= Self.maximumPaths)
        var w = ByteWriter(capacity: Self.fixedSize + paths.count * PathReport.size)
        w.preamble(.report)
        w.u32(streamID)
        w.u32(reportSequence)
        w.u64(reportTimeNanoseconds)
        w.u8(UInt8(paths.count))
        w.zeros(3)
        for path in paths {
            w.u8(path.pathID)
            w.zeros(3)
            w.u32(path.highestSequencePlusOne)
            w.u32(path.packetsReceived)
            w.u64(path.bytesReceived)
            w.u32(path.packetsLost)
            w.u32(path.packetsReordered)
            w.u32(path.packetsDuplicated)
            w.u32(UInt32(bitPattern: path.delayMicroseconds))
            w.u32(path.jitterMicroseconds)
            w.u32(path.capacityBitsPerSecond)
            w.u32(path.capacitySamples)
            w.u32(path.idleMicroseconds)
            w.u32(path.packetTimeMicroseconds)
        }
        return w.bytes
    }

    public static func decode(_ datagram: UnsafeRawBufferPointer) -> Result<ReceiverReport, Wire.DropReason> {
        var r = ByteReader(datagram)
        if let reason = checkPreamble(&r, kind: .report, fixedSize: fixedSize) { return .failure(reason) }
        let streamID = r.u32()
        let sequence = r.u32()
        let time = r.u64()
        let count = Int(r.u8())
        r.skip(3)
        guard count <= maximumPaths else { return .failure(.garbled) }
        guard r.remaining >= count * PathReport.size else { return .failure(.short) }
        var paths: [PathReport] = []
        paths.reserveCapacity(count)
        for _ in 0..<count {
            let id = r.u8()
            r.skip(3)
            let path = PathReport(
                pathID: id, highestSequencePlusOne: r.u32(), packetsReceived: r.u32(), bytesReceived: r.u64(),
                packetsLost: r.u32(), packetsReordered: r.u32(), packetsDuplicated: r.u32(),
                delayMicroseconds: Int32(bitPattern: r.u32()), jitterMicroseconds: r.u32(),
                capacityBitsPerSecond: r.u32(), capacitySamples: r.u32(), idleMicroseconds: r.u32(), packetTimeMicroseconds: r.u32())
            guard path.packetsReceived <= path.highestSequencePlusOne || path.highestSequencePlusOne == 0 && path.packetsReceived == 0
            else { return .failure(.garbled) }
            paths.append(path)
        }
        return .success(ReceiverReport(streamID: streamID, reportSequence: sequence, reportTimeNanoseconds: time, paths: paths))
    }

    public static func decode(_ bytes: [UInt8]) -> Result<ReceiverReport, Wire.DropReason> {
        bytes.withUnsafeBytes { decode($0) }
    }
}

extension Wire {
    /// The kind of a VNetStream datagram, or why it is not one this build reads.
    public static func kind(of datagram: UnsafeRawBufferPointer) -> Result<Kind, DropReason> {
        guard datagram.count >= 4 else { return .failure(.short) }
        guard UInt16(datagram[0]) << 8 | UInt16(datagram[1]) == magic else { return .failure(.foreign) }
        guard datagram[2] == version else { return .failure(.futureVersion) }
        guard let kind = Kind(rawValue: datagram[3]) else { return .failure(.unknownKind) }
        return .success(kind)
    }
}
