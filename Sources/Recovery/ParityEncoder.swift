import Control
import Packets

/// The sender's FEC: XOR parity over the blocks of an `FECShape`, with no I/O and no clock of
/// its own. It is told each original as its VNet took it (stamped: its path fields are part of
/// what a parity protects) and answers with the parities complete now, each with the VNet it
/// goes on.
///
/// - A row or column's parity goes when all its packets were written, or when its oldest one
///   has waited `maximumWait` (a slow stream, a block cut short by the stream's end): then it
///   covers those written so far (the `covered` bits say which), so that it still comes before
///   the playout deadline of what it protects.
/// - It goes on the live VNet that carried the fewest of its packets (the least lossy of those
///   on a tie), so that one VNet's loss does not take the data and its parity together.
/// - Parity comes out of spare capacity only: when what the sender offered its VNets over the
///   last second (everything it made, parity included, whether it left yet or still waits in
///   the pacing) is above `budgetShare` of what the VNets together can carry
///   (`deliverable`, the controller's estimate), a parity due is skipped (counted), so that FEC
///   never causes the congestion loss it is there to repair. With no estimate (a fixed split)
///   every parity goes.
/// - Memory is bounded: at most `maximumOpen` rows and columns are open; past that the oldest
///   goes as it is.
public struct ParityEncoder: Sendable {
    /// One parity ready, and the VNet for it.
    public struct Ready: Sendable, Equatable {
        public var parity: Parity
        public var vnet: Int
    }

    public struct Tally: Sendable, Equatable, Codable {
        /// Parity packets made, their UDP payload bytes, and those made before their row or
        /// column was complete (waited too long, or the stream ended).
        public var parities = 0
        public var parityBytes = 0
        public var partial = 0
        /// Packets protected (each once per row and once per column).
        public var protected = 0
        /// Parities not sent: the VNets had no room for them.
        public var skipped = 0
    }

    struct Open: Sendable {
        var first: UInt32
        var stride: UInt16
        var span: Int
        var covered: UInt32 = 0
        var fields = ProtectedFields.zero
        var longestPayload = 0
        var newestFrameTime: UInt64 = 0
        var newestSendTime: UInt64 = 0
        var opened: UInt64
        var perVNet: [Int]

        /// Every position of its row or column is in.
        var complete: Bool { covered == (span == 32 ? UInt32.max : (UInt32(1) << UInt32(span)) - 1) }
    }

    public let shape: FECShape
    public let streamID: UInt32
    public let maximumWait: UInt64
    public static let maximumOpen = 1024
    public static let budgetShare = 0.95
    public private(set) var tally = Tally()
    /// What the VNets together can carry now, IPv4 bits per second (nil: not known).
    public var deliverable: Double?
    /// IPv4 bytes offered per quarter second, the last four quarters (slot index, bytes).
    private var offered: [(slot: UInt64, bytes: Int)] = []
    private var open: [UInt64: Open] = [:]
    /// Parities placed on a tie so far (they take turns).
    private var ties = 0
    private let vnets: Int

    /// `latencySeconds`: the playout deadline; a parity waits at most a quarter of it.
    public init(shape: FECShape, streamID: UInt32, vnets: Int, latencySeconds: Double) {
        self.shape = shape
        self.streamID = streamID
        self.vnets = vnets
        maximumWait = UInt64(max(0.001, latencySeconds / 4) * 1e9)
    }

    /// An original went onto its VNet (`header` stamped); `frameTime`: its frame's time on the
    /// sender's clock. Copies and retransmissions are not protected.
    /// `outlook` is asked for only when a parity is due (not once per packet).
    public mutating func written(
        _ header: MediaHeader, payloadBytes: Int, frameTime: UInt64, outlook: @autoclosure () -> [VNetOutlook], now: UInt64
    ) -> [Ready] {
        guard !header.copy, header.origin == nil else { return [] }
        let sequence = header.streamSequence
        let block = UInt64(sequence) / UInt64(shape.blockPackets) * UInt64(shape.blockPackets)
        let place = Int(UInt64(sequence) - block)
        let row = place / shape.columns
        let column = place % shape.columns
        let fields = ProtectedFields(header, payloadBytes: payloadBytes)
        var out: [Ready] = []
        if shape.layout != .columns {
            add(fields, header: header, payloadBytes: payloadBytes, frameTime: frameTime, first: UInt32(block) &+ UInt32(row * shape.columns),
                stride: 1, span: shape.columns, position: column, outlook: outlook, now: now, into: &out)
        }
        if shape.layout != .rows {
            add(fields, header: header, payloadBytes: payloadBytes, frameTime: frameTime, first: UInt32(block) &+ UInt32(column),
                stride: UInt16(shape.columns), span: shape.rows, position: row, outlook: outlook, now: now, into: &out)
        }
        if open.count > Self.maximumOpen, let oldest = open.min(by: { $0.value.opened < $1.value.opened })?.key,
            let ready = close(oldest, outlook: outlook, now: now)
        {
            out.append(ready)
        }
        return out
    }

    /// Rows and columns whose oldest packet has waited `maximumWait`: their parity now.
    public mutating func expire(outlook: [VNetOutlook], now: UInt64) -> [Ready] {
        let due = open.filter { now &- $0.value.opened >= maximumWait }.keys.sorted()
        return due.compactMap { close($0, outlook: { outlook }, now: now) }
    }

    /// Every open row and column's parity: the stream ends.
    public mutating func finish(outlook: [VNetOutlook], now: UInt64) -> [Ready] {
        open.keys.sorted().compactMap { close($0, outlook: { outlook }, now: now) }
    }

    /// The sender made packets for its VNets (`ipv4Bytes` on the wire, any kind): what the
    /// parity's budget goes by. Counted when made, not when written: a VNet's pacing holds
    /// what it cannot carry, and what it writes is never more than it carries.
    public mutating func offered(ipv4Bytes: Int, now: UInt64) {
        let slot = now / 250_000_000
        if let last = offered.last, last.slot == slot {
            offered[offered.count - 1].bytes += ipv4Bytes
        } else {
            offered.append((slot, ipv4Bytes))
            offered.removeAll { $0.slot + 4 <= slot }
        }
    }

    /// IPv4 bits per second offered over the last second (the current quarter and three before).
    public func recentRate(now: UInt64) -> Double {
        let slot = now / 250_000_000
        return Double(offered.reduce(0) { $0 + ($1.slot + 4 > slot ? $1.bytes : 0) }) * 8
    }

    /// When `expire` next has something (nil: nothing open).
    public var nextExpiry: UInt64? { open.values.lazy.map { $0.opened &+ maximumWait }.min() }

    /// The VNet for a parity of packets `perVNet` of which each VNet carried: the live one that
    /// carried the fewest (the least lossy, then the least full, on a tie); among VNets still
    /// tied, the `turn`-th, so that ties take turns instead of loading one VNet.
    public static func vnet(perVNet: [Int], outlook: [VNetOutlook], turn: Int = 0) -> Int {
        let live = perVNet.indices.filter { $0 < outlook.count && outlook[$0].live }
        let candidates = live.isEmpty ? Array(perVNet.indices) : live
        func score(_ vnet: Int) -> (Int, Double) {
            let o = vnet < outlook.count ? outlook[vnet] : VNetOutlook(live: true)
            return (perVNet[vnet], o.lossRate + (o.full ? 0.5 : 0))
        }
        guard let best = candidates.map(score).min(by: <) else { return 0 }
        let tied = candidates.filter { score($0) == best }
        return tied[turn % tied.count]
    }

    private mutating func add(
        _ fields: ProtectedFields, header: MediaHeader, payloadBytes: Int, frameTime: UInt64, first: UInt32, stride: UInt16, span: Int,
        position: Int, outlook: () -> [VNetOutlook], now: UInt64, into out: inout [Ready]
    ) {
        let key = UInt64(first) << 16 | UInt64(stride)
        var entry = open[key] ?? Open(first: first, stride: stride, span: span, opened: now, perVNet: Array(repeating: 0, count: vnets))
        let bit = UInt32(1) << UInt32(position)
        // A packet twice (copies of one stream packet in duplicate mode): the first one counts.
        guard entry.covered & bit == 0 else { return }
        entry.covered |= bit
        entry.fields ^= fields
        entry.longestPayload = max(entry.longestPayload, payloadBytes - MediaHeader.size)
        entry.newestFrameTime = max(entry.newestFrameTime, frameTime)
        entry.newestSendTime = max(entry.newestSendTime, header.sendTimeNanoseconds)
        if entry.perVNet.indices.contains(Int(header.pathID)) { entry.perVNet[Int(header.pathID)] += 1 }
        tally.protected += 1
        open[key] = entry
        if entry.complete, let ready = close(key, outlook: outlook, now: now) {
            out.append(ready)
        }
    }

    private mutating func close(_ key: UInt64, outlook: () -> [VNetOutlook], now: UInt64) -> Ready? {
        let entry = open.removeValue(forKey: key)!
        let bits = Double(28 + Parity.fixedSize + entry.longestPayload) * 8
        if let deliverable, recentRate(now: now) + bits > Self.budgetShare * deliverable {
            tally.skipped += 1
            return nil
        }
        let parity = Parity(
            streamID: streamID, firstStreamSequence: entry.first, stride: entry.stride, covered: entry.covered, protected: entry.fields,
            payloadBytes: Parity.fixedSize + entry.longestPayload, sendTimeNanoseconds: entry.newestSendTime,
            heldMicroseconds: UInt32(min(UInt64(UInt32.max), (now &- entry.newestFrameTime) / 1000)))
        tally.parities += 1
        tally.parityBytes += parity.payloadBytes
        if !entry.complete { tally.partial += 1 }
        ties += 1
        return Ready(parity: parity, vnet: Self.vnet(perVNet: entry.perVNet, outlook: outlook(), turn: ties))
    }
}
