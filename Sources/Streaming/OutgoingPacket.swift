import Packets

/// A packet on its way from the packetizer to a VNet's tun: its header (the path fields are
/// filled in when it is written), its UDP payload length, the VNet the split chose, and whether
/// it is a copy (probe padding or a probe of a dead VNet) rather than part of the split.
public struct OutgoingPacket: Sendable, Equatable {
    public var header: MediaHeader
    /// UDP payload bytes: the VNetStream header and what follows it.
    public var payloadBytes: Int
    public var vnet: Int
    public var copy: Bool
    /// Part of a probe train: it leaves back to back with the train's other packets, once the
    /// VNet's pacing bucket is full (`VNetPacing`).
    public var train: Bool
    /// A parity packet (FEC), whose path fields are filled in from `header` when it is written;
    /// `header` is how it reads to its path (`Parity.pathHeader`).
    public var parity: Parity?

    public init(header: MediaHeader, payloadBytes: Int, vnet: Int, copy: Bool, train: Bool = false, parity: Parity? = nil) {
        self.parity = parity
        self.header = header
        self.payloadBytes = payloadBytes
        self.vnet = vnet
        self.copy = copy
        self.train = train
    }

    /// Bytes of the whole IPv4 packet.
    public var ipv4Bytes: Int { IPv4UDP.headerSize + payloadBytes }
}

/// A stage between the split and the device writer. It sees the packets of each frame (or
/// bundle) on their way out and may change them, drop them or add to them (parity packets,
/// a retransmission buffer keeping copies). Reports reach it as they reach the controller.
public protocol SenderStage {
    mutating func process(_ packets: inout [OutgoingPacket], now: UInt64)
    mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64)
}

extension SenderStage {
    public mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64) {}
}
