/// Measures a path's bottleneck rate from packet trains, at the receiver.
///
/// A train is three or more packets with consecutive path sequences and the same departure
/// (send time plus the time held in the sender's pacing, within a microsecond): one frame's
/// fragments sent back to back, plus copies when the sender probes, or, on a VNet where the
/// stream waits in the pacing, the stream's own next packets in place of the copies. A token bucket
/// lets the first packet or two through on its burst allowance; once that is spent, packets
/// leave the bottleneck one transmission time apart. So the rate is the bytes of packets 3..n
/// over the receive-time gap between packet 2 and packet n. Trains need no extra bandwidth
/// beyond the probe copies, and they measure what the path could carry, not just what it
/// carried, so an under-used path's capacity is known too.
///
/// Assumes the bottleneck's burst allowance is at most about two packets (true of the lab's
/// TBF links, burst max(1600 B, rate/250), below 3 Mbit/s; netem's rate has none): a larger
/// bucket makes trains read high.
public struct PacketTrains: Sendable {
    /// Trains of fewer packets than this give no sample.
    public static let minimumPackets = 3

    private var lastSequence: Int64 = -2
    private var lastSendTime: UInt64 = 0
    private var position = 0
    private var secondStamp: Int64 = 0
    private var lastStamp: Int64 = 0
    private var bytesAfterSecond = 0

    /// The latest train's rate, bits per second (0 before the first).
    public private(set) var latestBitsPerSecond: Double = 0
    /// Trains measured so far.
    public private(set) var samples = 0

    public init() {}

    /// A packet of the path arrived: `bytes` as it crossed the network (IPv4), `stamp` when it
    /// arrived (nanoseconds on any clock that does not jump: the kernel's receive timestamp is
    /// best, being free of this process's scheduling).
    public mutating func record(pathSequence: Int64, sendTime: UInt64, bytes: Int, stamp: Int64) {
        // One departure, to the microsecond the header says it in: a train's packets that
        // waited in the sender's pacing share it, rounded up from nanoseconds.
        let sameDeparture = sendTime >= lastSendTime ? sendTime - lastSendTime < 1000 : lastSendTime - sendTime < 1000
        if pathSequence == lastSequence + 1 && sameDeparture && position > 0 {
            position += 1
            if position == 2 {
                secondStamp = stamp
                bytesAfterSecond = 0
            } else {
                bytesAfterSecond += bytes
                lastStamp = stamp
            }
        } else {
            finish()
            position = 1
        }
        lastSequence = pathSequence
        lastSendTime = sendTime
    }

    /// Ends the train in progress (the next packet does this by itself).
    public mutating func finish() {
        defer { position = 0 }
        guard position >= Self.minimumPackets else { return }
        let gap = lastStamp - secondStamp
        guard gap > 0 else { return }
        let rate = Double(bytesAfterSecond) * 8e9 / Double(gap)
        guard rate.isFinite, rate > 0 else { return }
        latestBitsPerSecond = rate
        samples += 1
    }
}
