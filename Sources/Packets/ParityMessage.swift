/// The parity message (kind 6) of forward error correction, beside the others in
/// `WireMessages.swift`; `Docs/wire-format.md` specifies it.

/// What FEC protects of one media packet: the fields the receiver accounts it by, as it was
/// first sent (its first VNet and path sequence, its UDP payload length), packed in 32 bytes
/// that XOR word by word. A parity carries the XOR of its packets' fields; the receiver, with
/// all of them but one, XORs the parity with the others' and has the missing one.
public struct ProtectedFields: Sendable, Equatable {
    public static let size = 32
    public static let zero = ProtectedFields(words: (0, 0, 0, 0))

    var words: (UInt64, UInt64, UInt64, UInt64)

    init(words: (UInt64, UInt64, UInt64, UInt64)) { self.words = words }

    /// An original's fields (`header` as written, with its path fields stamped), or a
    /// retransmission's, which carry its origin's path fields and length: the same 32 bytes.
    public init(_ header: MediaHeader, payloadBytes: Int) {
        let pathID = header.origin?.pathID ?? header.pathID
        let pathSequence = header.origin?.pathSequence ?? header.pathSequence
        let length = header.origin == nil ? payloadBytes : payloadBytes - MediaHeader.originSize
        words = (
            UInt64(header.frameNumber) << 32 | UInt64(header.fragmentIndex) << 16 | UInt64(header.fragmentCount),
            header.sendTimeNanoseconds,
            UInt64(pathSequence) << 32 | UInt64(UInt16(clamping: length)) << 16 | UInt64(pathID) << 8 | UInt64(header.frameType),
            UInt64(header.mark) << 56 | UInt64(header.frameFlags & ~MediaHeader.copyFlag) << 48
        )
    }

    public static func ^ (a: ProtectedFields, b: ProtectedFields) -> ProtectedFields {
        ProtectedFields(words: (a.words.0 ^ b.words.0, a.words.1 ^ b.words.1, a.words.2 ^ b.words.2, a.words.3 ^ b.words.3))
    }

    public static func ^= (a: inout ProtectedFields, b: ProtectedFields) { a = a ^ b }

    public static func == (a: ProtectedFields, b: ProtectedFields) -> Bool {
        a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
    }

    /// The packet these fields describe, rebuilt as stream packet `streamSequence`: its header
    /// (its origin says where it was first sent) and its UDP payload length as first sent; nil
    /// when the fields contradict themselves (a parity that does not fit what arrived).
    public func rebuilt(streamID: UInt32, streamSequence: UInt32) -> (header: MediaHeader, payloadBytes: Int)? {
        let pathSequence = UInt32(truncatingIfNeeded: words.2 >> 32)
        let pathID = UInt8(truncatingIfNeeded: words.2 >> 8)
        let length = Int(UInt16(truncatingIfNeeded: words.2 >> 16))
        let flags = UInt8(truncatingIfNeeded: words.3 >> 48)
        var header = MediaHeader(
            streamID: streamID, streamSequence: streamSequence, pathSequence: pathSequence, frameNumber: UInt32(truncatingIfNeeded: words.0 >> 32),
            sendTimeNanoseconds: words.1, fragmentIndex: UInt16(truncatingIfNeeded: words.0 >> 16), fragmentCount: UInt16(truncatingIfNeeded: words.0),
            pathID: pathID, frameType: UInt8(truncatingIfNeeded: words.2), mark: UInt8(truncatingIfNeeded: words.3 >> 56),
            origin: MediaHeader.Origin(pathID: pathID, pathSequence: pathSequence))
        header.frameFlags = flags
        guard header.fragmentCount > 0, header.fragmentIndex < header.fragmentCount, header.sendTimeNanoseconds < 1 << 62,
            length >= MediaHeader.size, words.3 & 0xFFFF_FFFF_FFFF == 0, flags & MediaHeader.copyFlag == 0
        else { return nil }
        return (header, length)
    }

    func write(_ w: inout ByteStore) {
        w.u64(words.0)
        w.u64(words.1)
        w.u64(words.2)
        w.u64(words.3)
    }
}

/// A parity packet: the XOR of up to 32 media packets of the stream, `stride` stream sequences
/// apart from `firstStreamSequence` on (1: a row of an FEC block; the column count: a column),
/// those whose bit is set in `covered`. It travels on a VNet as any packet does (its own path
/// sequence there), on another VNet than most of what it protects.
public struct Parity: Sendable, Equatable {
    public static let fixedSize = 72
    /// The most packets one parity covers (the bits of `covered`).
    public static let maximumSpan = 32
    /// The largest stride: a column of a block at most 32 wide.
    public static let maximumStride: UInt16 = 32

    public var streamID: UInt32
    public var firstStreamSequence: UInt32
    public var pathSequence: UInt32
    /// The newest protected packet's frame time (the interval the parity is tallied in).
    public var sendTimeNanoseconds: UInt64
    /// From that frame time to when the parity was handed to its VNet, microseconds, plus its
    /// wait in the pacing: its departure is the send time plus this, as for a media packet.
    public var heldMicroseconds: UInt32
    public var pathID: UInt8
    public var mark: UInt8
    public var stride: UInt16
    public var covered: UInt32
    public var protected: ProtectedFields
    /// UDP payload bytes on the wire: the fixed part, then the XOR of the protected packets'
    /// payloads after their headers, as long as the longest of them.
    public var payloadBytes: Int

    public init(
        streamID: UInt32, firstStreamSequence: UInt32, stride: UInt16, covered: UInt32, protected: ProtectedFields, payloadBytes: Int,
        sendTimeNanoseconds: UInt64, heldMicroseconds: UInt32 = 0, pathID: UInt8 = 0, pathSequence: UInt32 = 0, mark: UInt8 = 0
    ) {
        self.streamID = streamID
        self.firstStreamSequence = firstStreamSequence
        self.stride = stride
        self.covered = covered
        self.protected = protected
        self.payloadBytes = max(Self.fixedSize, payloadBytes)
        self.sendTimeNanoseconds = sendTimeNanoseconds
        self.heldMicroseconds = heldMicroseconds
        self.pathID = pathID
        self.pathSequence = pathSequence
        self.mark = mark
    }

    /// The stream sequence of position `k` (0..<32).
    public func streamSequence(at k: Int) -> UInt32 { firstStreamSequence &+ UInt32(k) &* UInt32(stride) }

    /// The positions `covered` names.
    public var positions: [Int] { (0..<Self.maximumSpan).filter { covered & (1 << UInt32($0)) != 0 } }

    public var departureNanoseconds: UInt64 { sendTimeNanoseconds &+ UInt64(heldMicroseconds) * 1000 }

    /// How the parity reads to the path it travelled: a packet of that path (its path
    /// sequence, times and mark), for the path's accounting.
    public var pathHeader: MediaHeader {
        MediaHeader(
            streamID: streamID, streamSequence: firstStreamSequence, pathSequence: pathSequence, frameNumber: 0,
            sendTimeNanoseconds: sendTimeNanoseconds, fragmentIndex: 0, fragmentCount: 1, pathID: pathID, frameType: UInt8(ascii: "F"),
            mark: mark, heldMicroseconds: heldMicroseconds)
    }

    /// Writes the fixed part into `buffer` at `offset`; the bytes after it (the payloads' XOR)
    /// are the caller's. Filler payloads XOR to zeros.
    public func write(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        precondition(offset >= 0 && offset + Self.fixedSize <= buffer.count)
        var w = ByteStore(buffer, offset: offset)
        w.u16(Wire.magic)
        w.u8(Wire.version)
        w.u8(Wire.Kind.parity.rawValue)
        w.u32(streamID)
        w.u32(firstStreamSequence)
        w.u32(pathSequence)
        w.u64(sendTimeNanoseconds)
        w.u32(heldMicroseconds)
        w.u8(pathID)
        w.u8(mark)
        w.u16(stride)
        w.u32(covered)
        w.u32(0)
        protected.write(&w)
    }

    public var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: payloadBytes)
        bytes.withUnsafeMutableBytes { write(into: $0, at: 0) }
        return bytes
    }

    public static func decode(_ datagram: UnsafeRawBufferPointer) -> Result<Parity, Wire.DropReason> {
        var r = ByteReader(datagram)
        if let reason = checkPreamble(&r, kind: .parity, fixedSize: fixedSize) { return .failure(reason) }
        let streamID = r.u32()
        let first = r.u32()
        let pathSequence = r.u32()
        let sendTime = r.u64()
        let held = r.u32()
        let pathID = r.u8()
        let mark = r.u8()
        let stride = r.u16()
        let covered = r.u32()
        let reserved = r.u32()
        let protected = ProtectedFields(words: (r.u64(), r.u64(), r.u64(), r.u64()))
        guard stride >= 1, stride <= maximumStride, covered != 0, reserved == 0, sendTime < 1 << 62 else { return .failure(.garbled) }
        return .success(
            Parity(
                streamID: streamID, firstStreamSequence: first, stride: stride, covered: covered, protected: protected,
                payloadBytes: datagram.count, sendTimeNanoseconds: sendTime, heldMicroseconds: held, pathID: pathID,
                pathSequence: pathSequence, mark: mark))
    }

    public static func decode(_ bytes: [UInt8]) -> Result<Parity, Wire.DropReason> {
        bytes.withUnsafeBytes { decode($0) }
    }
}
