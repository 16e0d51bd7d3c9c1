/// The NACK message (kind 4), beside the others in `WireMessages.swift`; `Docs/wire-format.md`
/// specifies it.

/// The receiver's request to resend: runs of path sequences it found missing on a path (a gap
/// in that VNet's sequence), sent over every VNet as reports are. The sender resends what it
/// still holds and what can still arrive in time (`Docs/wire-format.md`, kind 4).
public struct Nack: Sendable, Equatable {
    public static let fixedSize = 16
    public static let rangeSize = 8
    /// The most ranges one NACK carries (it stays within one 1500-byte packet).
    public static let maximumRanges = 128

    /// `count` packets from `first` on, in path `pathID`'s sequence.
    public struct Range: Sendable, Equatable {
        public var pathID: UInt8
        public var first: UInt32
        public var count: UInt16

        public init(pathID: UInt8, first: UInt32, count: UInt16) {
            self.pathID = pathID
            self.first = first
            self.count = count
        }
    }

    public var streamID: UInt32
    /// Counts NACKs, from 0; copies sent over several VNets share it.
    public var sequence: UInt32
    public var ranges: [Range]

    public init(streamID: UInt32, sequence: UInt32, ranges: [Range]) {
        self.streamID = streamID
        self.sequence = sequence
        self.ranges = ranges
    }

    public var encoded: [UInt8] {
        precondition(ranges.count <= Self.maximumRanges)
        var w = ByteWriter(capacity: Self.fixedSize + ranges.count * Self.rangeSize)
        w.preamble(.nack)
        w.u32(streamID)
        w.u32(sequence)
        w.u16(UInt16(ranges.count))
        w.zeros(2)
        for range in ranges {
            w.u8(range.pathID)
            w.zeros(1)
            w.u16(range.count)
            w.u32(range.first)
        }
        return w.bytes
    }

    public static func decode(_ datagram: UnsafeRawBufferPointer) -> Result<Nack, Wire.DropReason> {
        var r = ByteReader(datagram)
        if let reason = checkPreamble(&r, kind: .nack, fixedSize: fixedSize) { return .failure(reason) }
        let streamID = r.u32()
        let sequence = r.u32()
        let count = Int(r.u16())
        r.skip(2)
        guard count <= maximumRanges else { return .failure(.garbled) }
        guard r.remaining >= count * rangeSize else { return .failure(.short) }
        var ranges: [Range] = []
        ranges.reserveCapacity(count)
        for _ in 0..<count {
            let pathID = r.u8()
            r.skip(1)
            let length = r.u16()
            let first = r.u32()
            guard length > 0, Int(pathID) < ReceiverReport.maximumPaths else { return .failure(.garbled) }
            ranges.append(Range(pathID: pathID, first: first, count: length))
        }
        return .success(Nack(streamID: streamID, sequence: sequence, ranges: ranges))
    }

    public static func decode(_ bytes: [UInt8]) -> Result<Nack, Wire.DropReason> {
        bytes.withUnsafeBytes { decode($0) }
    }

    /// Path sequences, in order, as few ranges as cover them (runs longer than 65535 are cut).
    public static func ranges(pathID: UInt8, sequences: [UInt32]) -> [Range] {
        var ranges: [Range] = []
        for sequence in sequences.sorted() {
            if let last = ranges.last, last.pathID == pathID, last.first &+ UInt32(last.count) == sequence, last.count < .max {
                ranges[ranges.count - 1].count += 1
            } else {
                ranges.append(Range(pathID: pathID, first: sequence, count: 1))
            }
        }
        return ranges
    }
}
