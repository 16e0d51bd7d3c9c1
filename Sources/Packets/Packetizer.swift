/// Cuts frames into packets that fit the path MTU: as few packets as possible, of sizes as equal
/// as possible (no runt at the end to waste a packet's overhead on a shaped link).
public struct Packetizer: Sendable {
    /// Media bytes one packet carries after the IPv4, UDP and media headers.
    public let payloadLimit: Int

    /// For an MTU (the largest IPv4 packet the VNets carry), leaving `reserve` bytes free in
    /// each packet (`MediaHeader.originSize` when packets may be resent, so that a
    /// retransmission still fits).
    public init(mtu: Int, reserve: Int = 0) {
        payloadLimit = mtu - IPv4UDP.headerSize - MediaHeader.size - max(0, reserve)
        precondition(payloadLimit > 0, "an MTU of \(mtu) leaves no room for media")
    }

    /// Payload sizes of the packets of a frame of `bytes`; none for a zero-size frame.
    public func fragments(ofFrame bytes: Int) -> [Int] {
        guard bytes > 0 else { return [] }
        let count = (bytes + payloadLimit - 1) / payloadLimit
        let base = bytes / count
        let extra = bytes % count
        return (0..<count).map { $0 < extra ? base + 1 : base }
    }
}
