/// The end-of-stream message (kind 3), beside the others in `WireMessages.swift`;
/// `Docs/wire-format.md` specifies it.

/// The sender's last word on a stream, sent a few times over every VNet: how many packets each
/// path carried, so that losses after the last packet that arrived are counted too.
public struct StreamEnd: Sendable, Equatable {
    public static let fixedSize = 28
    public static let pathSize = 8

    public struct Path: Sendable, Equatable {
        public var pathID: UInt8
        public var packetsSent: UInt32

        public init(pathID: UInt8, packetsSent: UInt32) {
            self.pathID = pathID
            self.packetsSent = packetsSent
        }
    }

    public var streamID: UInt32
    /// Distinct packets of the stream (the next stream sequence).
    public var streamPackets: UInt32
    /// Frames of the stream (the next frame number), zero-size ones included.
    public var frameCount: UInt32
    /// Send time of the last media packet, nanoseconds since the stream started.
    public var lastSendTimeNanoseconds: UInt64
    public var paths: [Path]

    public init(streamID: UInt32, streamPackets: UInt32, frameCount: UInt32, lastSendTimeNanoseconds: UInt64, paths: [Path]) {
        self.streamID = streamID
        self.streamPackets = streamPackets
        self.frameCount = frameCount
        self.lastSendTimeNanoseconds = lastSendTimeNanoseconds
        self.paths = paths
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: Self.fixedSize + paths.count * Self.pathSize)
        w.preamble(.streamEnd)
        w.u32(streamID)
        w.u32(streamPackets)
        w.u32(frameCount)
        w.u64(lastSendTimeNanoseconds)
        w.u8(UInt8(paths.count))
        w.zeros(3)
        for path in paths {
            w.u8(path.pathID)
            w.zeros(3)
            w.u32(path.packetsSent)
        }
        return w.bytes
    }

    public static func decode(_ datagram: UnsafeRawBufferPointer) -> Result<StreamEnd, Wire.DropReason> {
        var r = ByteReader(datagram)
        if let reason = checkPreamble(&r, kind: .streamEnd, fixedSize: fixedSize) { return .failure(reason) }
        let streamID = r.u32()
        let packets = r.u32()
        let frames = r.u32()
        let last = r.u64()
        let count = Int(r.u8())
        r.skip(3)
        guard count <= ReceiverReport.maximumPaths, last < 1 << 62 else { return .failure(.garbled) }
        guard r.remaining >= count * pathSize else { return .failure(.short) }
        var paths: [Path] = []
        for _ in 0..<count {
            let id = r.u8()
            r.skip(3)
            paths.append(Path(pathID: id, packetsSent: r.u32()))
        }
        return .success(StreamEnd(streamID: streamID, streamPackets: packets, frameCount: frames, lastSendTimeNanoseconds: last, paths: paths))
    }
}
