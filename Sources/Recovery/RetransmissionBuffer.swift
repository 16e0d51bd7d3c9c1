import Packets

/// What the sender keeps of each packet it wrote, so that it can send it again: a ring per
/// VNet indexed by path sequence. Memory is fixed when it is made (`capacityPerVNet` entries per
/// VNet, `bytesPerEntry` each: the header and sizes, not the payload, which is filler); a packet
/// is found only while its slot has not been reused and its deadline has not passed.
public struct RetransmissionBuffer: Sendable {
    public struct Entry: Sendable, Equatable {
        /// As it was first written: its path id and path sequence say where it was lost.
        public var header: MediaHeader
        public var payloadBytes: Int
        /// The frame's time on the sender's monotonic clock: written time minus its pacing wait.
        public var frameTime: UInt64
        /// When it was last sent again (nil: never).
        public var resentAt: UInt64?
    }

    public let capacityPerVNet: Int
    private var rings: [[Entry?]]
    /// Entries held now (slots in use).
    public private(set) var held = 0

    public init(vnets: Int, capacityPerVNet: Int) {
        precondition(vnets > 0 && capacityPerVNet > 0)
        self.capacityPerVNet = capacityPerVNet
        rings = Array(repeating: Array(repeating: nil, count: capacityPerVNet), count: vnets)
    }

    /// The ring's fixed memory, bytes (what `--recovery` costs whatever the stream's length).
    public var bytes: Int { rings.count * capacityPerVNet * MemoryLayout<Entry?>.stride }

    /// Keeps a packet as written on its VNet (`header.pathID`, `header.pathSequence`).
    public mutating func keep(_ header: MediaHeader, payloadBytes: Int, writtenAt: UInt64) {
        let vnet = Int(header.pathID)
        guard rings.indices.contains(vnet) else { return }
        let slot = Int(header.pathSequence % UInt32(capacityPerVNet))
        if rings[vnet][slot] == nil { held += 1 }
        let wait = UInt64(header.heldMicroseconds) * 1000
        rings[vnet][slot] = Entry(header: header, payloadBytes: payloadBytes, frameTime: writtenAt > wait ? writtenAt - wait : 0)
    }

    /// The packet sent as `pathSequence` on `vnet`, if still held.
    public func entry(vnet: Int, pathSequence: UInt32) -> Entry? {
        guard rings.indices.contains(vnet) else { return nil }
        guard let entry = rings[vnet][Int(pathSequence % UInt32(capacityPerVNet))], entry.header.pathSequence == pathSequence else { return nil }
        return entry
    }

    public mutating func markResent(vnet: Int, pathSequence: UInt32, at now: UInt64) {
        let slot = Int(pathSequence % UInt32(capacityPerVNet))
        guard rings.indices.contains(vnet), rings[vnet][slot]?.header.pathSequence == pathSequence else { return }
        rings[vnet][slot]!.resentAt = now
    }
}
