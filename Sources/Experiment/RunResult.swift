import Accounting
import Control
import Foundation

/// One run's results, computed from its raw logs: what `results.json` holds per run.
public struct RunResult: Codable, Sendable {
    public struct VNetFigures: Codable, Sendable, Equatable {
        public var vnet: Int
        /// Packets put on this VNet, copies included.
        public var sent: Int
        /// Of them, probe copies.
        public var copies: Int
        /// Packets of the stream lost (no copy arrived anywhere) that were sent on this VNet as
        /// part of the split (in duplicate mode every VNet carried every packet).
        public var lost: Int
        /// `lost` over every packet of the stream sent in the interval: the paper's per-VNet column.
        public var lossPctOfAll: Double
        /// Packets sent on this VNet (copies included) that did not arrive over it.
        public var pathLost: Int
        /// Mean rate of what the VNet carried (copies included), IPv4 bits.
        public var kbitS: Double

        enum CodingKeys: String, CodingKey {
            case vnet, sent, copies, lost
            case lossPctOfAll = "loss_pct_of_all"
            case pathLost = "path_lost"
            case kbitS = "kbit_s"
        }
    }

    public struct Interval: Codable, Sendable, Equatable {
        public var startS: Double
        public var endS: Double
        /// Distinct packets of the stream sent (by send time).
        public var sent: Int
        /// Of them, those of which no copy arrived.
        public var lost: Int
        public var lossPct: Double
        /// The fluid lower bound: the loss of a fluid queue with the VNets' capacity and queue,
        /// fed the same packets.
        public var fluidBoundPct: Double
        public var perVNet: [VNetFigures]
        /// Of the lost, those sent onto a failed VNet within the leave allowance of its failure
        /// (the targets' `leave_ms`): what a sender that leaves in time still loses. nil in
        /// results from before it was counted.
        public var lostLeaving: Int?
        /// The interval's frames: decodable, lost, shed, against the capacity share (traces
        /// with frame types only).
        public var frames: FrameFigures?
        /// From the receiver's playout (its deadline, `latency_ms`): the stream's packets not
        /// delivered by their deadline after recovery, percent of those sent; how many a
        /// retransmission delivered; originals that came after their deadline. (`loss_pct` is
        /// the network's loss.) nil in results from before they were counted.
        public var residualLossPct: Double?
        public var recovered: Int?
        public var late: Int?
        /// Packets FEC rebuilt in time (nil: the run had no parity).
        public var recoveredFEC: Int?

        enum CodingKeys: String, CodingKey {
            case sent, lost, frames, recovered, late
            case recoveredFEC = "recovered_fec"
            case residualLossPct = "residual_loss_pct"
            case startS = "start_s"
            case endS = "end_s"
            case lossPct = "loss_pct"
            case fluidBoundPct = "fluid_bound_pct"
            case perVNet = "per_vnet"
            case lostLeaving = "lost_leaving"
        }

        /// The loss less what was lost leaving failed VNets within the allowance, percent.
        public var lossAfterLeavingPct: Double { percent(Double(lost - (lostLeaving ?? 0)), Double(sent)) }
    }

    /// How the split followed a change of capacity.
    public struct Shift: Codable, Sendable, Equatable {
        public var atS: Double
        /// Each VNet's share of the capacity right after the change, percent.
        public var capacitySharePct: [Double]
        /// Seconds until every window's split (`RunAnalysis.shareWindowS` long, or half the
        /// condition's length when that is shorter) stayed within `tolerancePct` points of the
        /// capacity shares until the next change; nil if it never did.
        public var settleS: Double?
        public var tolerancePct: Double

        enum CodingKeys: String, CodingKey {
            case atS = "at_s"
            case capacitySharePct = "capacity_share_pct"
            case settleS = "settle_s"
            case tolerancePct = "tolerance_pct"
        }
    }

    /// What the sender did when a VNet's route failed.
    public struct Failover: Codable, Sendable, Equatable {
        public var vnet: Int
        public var path: String
        public var failedS: Double
        public var reroutedS: Double?
        /// From the failure to the last packet of the split sent on the VNet before it was left.
        public var leftMs: Double?
        /// From the reroute to the first packet of the split on the VNet again.
        public var returnedAfterS: Double?
        /// The VNet flapped by this outage (`RunAnalysis.flapWindowS`): a controller that puts
        /// it behind the steady VNets need not return to it while they have room. nil: no.
        public var flapping: Bool?

        enum CodingKeys: String, CodingKey {
            case vnet, path, flapping
            case failedS = "failed_s"
            case reroutedS = "rerouted_s"
            case leftMs = "left_ms"
            case returnedAfterS = "returned_after_s"
        }
    }

    /// Whether the analysis (from the packet logs) and the receiver's own accounting agree on
    /// the stream's total: packets sent and lost.
    public struct AccountingCheck: Codable, Sendable, Equatable {
        public var analysisSent: Int
        public var analysisLost: Int
        public var receiverSent: Int?
        public var receiverLost: Int?
        public var agrees: Bool

        public init(analysis: Interval, receiver: LossReport.Interval?) {
            analysisSent = analysis.sent
            analysisLost = analysis.lost
            receiverSent = receiver?.sent
            receiverLost = receiver?.lost
            agrees = receiver.map { $0.sent == analysis.sent && $0.lost == analysis.lost } ?? false
        }

        enum CodingKeys: String, CodingKey {
            case agrees
            case analysisSent = "analysis_sent"
            case analysisLost = "analysis_lost"
            case receiverSent = "receiver_sent"
            case receiverLost = "receiver_lost"
        }
    }

    public var source: String
    public var mode: SendMode
    public var shaper: String
    public var lab: String
    /// The loss a splitting mode may have per interval (the source's target), percent.
    public var lossTargetPct: Double
    public var intervals: [Interval]
    public var total: Interval
    public var accounting: AccountingCheck
    /// IPv4 bytes of the stream (each distinct packet once) and of everything sent.
    public var streamBytes: Int
    public var sentBytes: Int
    /// What sending cost beyond the stream itself: copies and duplicates, percent of the stream's bytes.
    public var extraBytesPct: Double
    public var shifts: [Shift]
    public var failovers: [Failover]
    public var capacity: CapacityTimeline
    /// The files it was computed from, relative to the results folder.
    public var logs: [String: String]
    /// What the kernel counted, and the receiver's losses reconciled with it (nil in results
    /// older than schema 3).
    public var kernel: KernelRecord?
    /// The sender shed frames by priority when the VNets fell short (nil: it did not).
    public var shed: Bool?
    /// What recovery did (`recovery` of the source; nil: none).
    public var recovery: RecoveryFigures?
    /// The source's `residual_target_pct` (nil: none).
    public var residualTargetPct: Double?

    /// The sender's and the receiver's sides of recovery in one run.
    public struct RecoveryFigures: Codable, Sendable, Equatable {
        public var mode: String
        public var latencyMs: Double
        /// NACK messages the receiver sent; packets resent (of them on another VNet than the one
        /// that lost it, and of a dead VNet's unreported tail); what resending cost, percent of
        /// the stream's bytes.
        public var nacks: Int
        public var resent: Int
        public var resentElsewhere: Int
        public var deadTail: Int
        public var resentBytesPct: Double
        /// Entries the receiver gave up at their deadline, and the smoothed NACK-to-answer time.
        public var gaveUp: Int
        public var recoveryMs: Double?
        /// FEC (nil: no parity): the block shape, parity packets sent, packets the receiver
        /// rebuilt, and the parity's bytes as % of the stream's.
        public var fec: String?
        public var parities: Int?
        public var rebuilt: Int?
        public var parityBytesPct: Double?

        enum CodingKeys: String, CodingKey {
            case mode, nacks, resent, fec, parities, rebuilt
            case parityBytesPct = "parity_bytes_pct"
            case latencyMs = "latency_ms"
            case resentElsewhere = "resent_elsewhere"
            case deadTail = "dead_tail"
            case resentBytesPct = "resent_bytes_pct"
            case gaveUp = "gave_up"
            case recoveryMs = "recovery_ms"
        }
    }

    enum CodingKeys: String, CodingKey {
        case source, mode, shaper, lab, intervals, total, shifts, failovers, capacity, logs, accounting, kernel, shed, recovery
        case residualTargetPct = "residual_target_pct"
        case lossTargetPct = "loss_target_pct"
        case streamBytes = "stream_bytes"
        case sentBytes = "sent_bytes"
        case extraBytesPct = "extra_bytes_pct"
    }
}
