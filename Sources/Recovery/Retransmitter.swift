import Control
import Packets

/// Retransmission across VNets (ARQ), with no I/O and no clock of its own: the sender tells it
/// what it wrote, the receiver's NACKs and reports, and the controller's outlook on each VNet;
/// it answers with the packets to send again and the VNet for each.
///
/// - A NACK names path sequences missing on a VNet. Each one still held, not resent within
///   `resendGap`, and still able to arrive before its playout deadline (its frame's time plus
///   the latency, less `margin`) is sent again.
/// - When a VNet is declared dead, nothing after its last arrival will ever show a gap at the
///   receiver: the packets written on it that no report covers are sent again at once.
/// - `arq-same` resends on the VNet that lost the packet (SRT's and RIST's way); `arq` on the
///   live VNet with the best outlook (least random loss, not full), another VNet on a tie.
public struct Retransmitter: Sendable {
    /// One packet to send again: its header (with its origin) and UDP payload bytes, and where.
    public struct Resend: Sendable, Equatable {
        public var header: MediaHeader
        public var payloadBytes: Int
        public var vnet: Int
    }

    /// What recovery did, for the sender's summary.
    public struct Tally: Sendable, Equatable, Codable {
        public var nacks = 0
        /// Path sequences the NACKs asked for.
        public var requested = 0
        public var resent = 0
        /// UDP payload bytes of what was resent.
        public var resentBytes = 0
        /// Of `resent`: on another VNet than the one that lost it.
        public var resentElsewhere = 0
        /// Of `resent`: a dead VNet's packets no report covered.
        public var deadTail = 0
        /// Asked for, but past what the deadline allows.
        public var tooLate = 0
        /// Asked for, but no longer (or never) held: a copy, a retransmission, a reused slot.
        public var notHeld = 0
        /// Asked for again within `resendGap` of the last resend.
        public var recent = 0

        public init() {}
    }

    public let mode: RecoveryMode
    public let latencyNanoseconds: UInt64
    /// A packet resent less time ago than this is not resent again (NACK copies, re-NACKs
    /// before the resend could arrive).
    public var resendGapNanoseconds: UInt64 = 10_000_000
    /// Resend only what can still arrive this long before its deadline.
    public var marginNanoseconds: UInt64
    public private(set) var buffer: RetransmissionBuffer
    public private(set) var tally = Tally()
    /// Per VNet: packets written (the next path sequence), the highest path sequence + 1 a
    /// report showed, whether it was dead at the last look.
    private var written: [UInt32]
    private var reported: [UInt32]
    private var dead: [Bool]
    private var lastNack: UInt32?

    public init(mode: RecoveryMode, vnets: Int, latencySeconds: Double, capacityPerVNet: Int = 4096) {
        self.mode = mode
        latencyNanoseconds = UInt64(max(0, latencySeconds) * 1e9)
        marginNanoseconds = latencyNanoseconds / 10
        buffer = RetransmissionBuffer(vnets: vnets, capacityPerVNet: capacityPerVNet)
        written = Array(repeating: 0, count: vnets)
        reported = Array(repeating: 0, count: vnets)
        dead = Array(repeating: false, count: vnets)
    }

    /// A packet went onto its VNet (stamped: path id and sequence). Originals are kept; copies
    /// (probes) and retransmissions are not.
    public mutating func written(_ header: MediaHeader, payloadBytes: Int, copy: Bool, now: UInt64) {
        let vnet = Int(header.pathID)
        guard written.indices.contains(vnet) else { return }
        written[vnet] = max(written[vnet], header.pathSequence &+ 1)
        guard mode.resends, !copy, header.origin == nil else { return }
        buffer.keep(header, payloadBytes: payloadBytes, writtenAt: now)
    }

    public mutating func received(_ report: ReceiverReport) {
        for path in report.paths where reported.indices.contains(Int(path.pathID)) {
            reported[Int(path.pathID)] = max(reported[Int(path.pathID)], path.highestSequencePlusOne)
        }
    }

    /// The receiver's NACK (its copies over other VNets share its sequence and count once).
    public mutating func received(_ nack: Nack, outlook: [VNetOutlook], now: UInt64) -> [Resend] {
        guard mode.resends else { return [] }
        if let lastNack, nack.sequence <= lastNack, lastNack &- nack.sequence < 1 << 31 { return [] }
        lastNack = nack.sequence
        tally.nacks += 1
        var out: [Resend] = []
        for range in nack.ranges {
            // A range longer than the ring cannot be held whole: only its newest part can be.
            let count = UInt32(range.count)
            tally.requested += Int(count)
            let skip = count > UInt32(buffer.capacityPerVNet) ? count - UInt32(buffer.capacityPerVNet) : 0
            tally.notHeld += Int(skip)
            for offset in skip..<count {
                resend(vnet: Int(range.pathID), pathSequence: range.first &+ offset, outlook: outlook, now: now, into: &out)
            }
        }
        return out
    }

    /// The controller's outlook now: a VNet that has just died has its uncovered packets resent.
    public mutating func follow(_ outlook: [VNetOutlook], now: UInt64) -> [Resend] {
        var out: [Resend] = []
        for vnet in dead.indices where vnet < outlook.count {
            let nowDead = !outlook[vnet].live
            defer { dead[vnet] = nowDead }
            guard nowDead, !dead[vnet], mode.resends else { continue }
            let from = max(reported[vnet], written[vnet] > UInt32(buffer.capacityPerVNet) ? written[vnet] - UInt32(buffer.capacityPerVNet) : 0)
            let before = out.count
            var sequence = from
            while sequence < written[vnet] {
                resend(vnet: vnet, pathSequence: sequence, outlook: outlook, now: now, into: &out, quiet: true)
                sequence &+= 1
            }
            tally.deadTail += out.count - before
        }
        return out
    }

    /// Where a packet lost on `lost` goes again (nil: nowhere).
    public static func choose(lost: Int, mode: RecoveryMode, outlook: [VNetOutlook]) -> Int? {
        switch mode {
        case .none, .fec: return nil
        case .arqSame: return lost
        case .arq, .fecArq:
            let live = outlook.indices.filter { outlook[$0].live }
            guard !live.isEmpty else { return outlook.indices.contains(lost) ? lost : nil }
            func score(_ vnet: Int) -> Double { outlook[vnet].lossRate + (outlook[vnet].full ? 0.5 : 0) + (vnet == lost ? 1e-6 : 0) }
            return live.min { score($0) < score($1) }
        }
    }

    private mutating func resend(vnet: Int, pathSequence: UInt32, outlook: [VNetOutlook], now: UInt64, into out: inout [Resend], quiet: Bool = false) {
        guard let entry = buffer.entry(vnet: vnet, pathSequence: pathSequence) else {
            if !quiet { tally.notHeld += 1 }
            return
        }
        guard now &+ marginNanoseconds < entry.frameTime &+ latencyNanoseconds else {
            if !quiet { tally.tooLate += 1 }
            return
        }
        if let at = entry.resentAt, now &- at < resendGapNanoseconds {
            if !quiet { tally.recent += 1 }
            return
        }
        guard let target = Self.choose(lost: vnet, mode: mode, outlook: outlook) else { return }
        var header = entry.header
        header.origin = MediaHeader.Origin(pathID: entry.header.pathID, pathSequence: entry.header.pathSequence)
        header.heldMicroseconds = UInt32(min(UInt64(UInt32.max), (now &- entry.frameTime) / 1000))
        let bytes = entry.payloadBytes + MediaHeader.originSize
        out.append(Resend(header: header, payloadBytes: bytes, vnet: target))
        buffer.markResent(vnet: vnet, pathSequence: pathSequence, at: now)
        tally.resent += 1
        tally.resentBytes += bytes
        if target != vnet { tally.resentElsewhere += 1 }
    }
}
