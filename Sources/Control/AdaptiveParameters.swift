extension AdaptiveController {
    /// The adaptive controller's constants (Docs/controller.md, "Parameters"); every results
    /// document records the ones its runs used. Decoding fills in the defaults of any key a
    /// document older than the key lacks.
    public struct Parameters: Sendable, Equatable, Codable {
        /// How often each live VNet gets a probe train, seconds.
        public var probeInterval: Double = 1
        /// How soon a train follows one that disagreed with the estimate (which it confirms or
        /// overrules), seconds.
        public var confirmProbeDelay: Double = 0.3
        /// Packets in a probe train, originals and copies.
        public var trainPackets = 3
        /// Trains are built only from packets at least this large (IPv4 bytes): two of them must
        /// empty a token bucket's burst allowance before the third is measured.
        public var trainMinimumPacketBytes = 800
        /// The floor and ceiling of the stall (overdue) threshold, milliseconds.
        public var stallMinimumMs: Double = 80
        public var stallMaximumMs: Double = 1000
        /// A stalled VNet is dead only once nothing has arrived on it for this many of its
        /// packet times (as the receiver measures them), and at least `stallIdleMinimumMs`
        /// (Liveness.swift). 4 packet times: a VNet whose capacity drops to a quarter still
        /// delivers a packet within them.
        public var stallPacketTimes: Double = 4
        public var stallIdleMinimumMs: Double = 40
        /// A stall counts only if some report arrived this recently, milliseconds.
        public var reportFreshnessMs: Double = 300
        /// How often a dead VNet gets a copy, seconds.
        public var deadProbeInterval: Double = 0.1
        /// Queueing delay above the VNet's base that means it is saturated, milliseconds.
        public var saturationDelayMs: Double = 20
        /// How much the queueing delay must grow over the rate window to count as saturated
        /// (or packets be lost), milliseconds.
        public var saturationGrowthMs: Double = 5
        /// The window over which delivered rate is measured, seconds.
        public var rateWindow: Double = 0.3
        /// Weights change only when an estimate moved by more than this fraction.
        public var hysteresis: Double = 0.05
        /// Random loss: how far back the estimate (the rate the placement charges) looks,
        /// seconds. A VNet turns lossy when its change test (`LossChangeTest`) has gathered
        /// `lossEvidence` nats for a random loss of `lossyAbovePct` over one of `cleanBelowPct`,
        /// and clean again when it has gathered as much the other way (the two rates are the
        /// hypotheses the test tells apart; rates between drift to the nearer one).
        public var lossWindow: Double = 20
        public var lossyAbovePct: Double = 1
        public var cleanBelowPct: Double = 0.1
        public var lossEvidence: Double = 4
        /// The share of each VNet's capacity the placement fills before it uses a lossier VNet.
        public var headroom: Double = 0.9
        /// Loss rates closer than this (points) are the same tier: shared by capacity.
        public var tierMarginPct: Double = 0.5
        /// Loss counts as random only while what the sender put on the VNet could not have
        /// filled its queue: its own virtual queue (bytes sent but probe trains, drained at the
        /// capacity estimate) stayed below this many milliseconds of capacity plus one MTU
        /// over the last `randomLossHoldoff` seconds. A VBR burst or a saturated VNet overflows
        /// a queue at a moment the receiver's smoothed delay does not show.
        public var randomLossQueueMs: Double = 80
        public var randomLossHoldoff: Double = 1
        /// Pacing onto each VNet: packets go out at most at the VNet's capacity estimate, with a
        /// burst allowance of `pacingBurstMs` of it (two MTUs at least); a packet waits at most
        /// `pacingHoldMs` in the sender (then it goes anyway). 0 hold: no pacing.
        public var pacingBurstMs: Double = 20
        public var pacingHoldMs: Double = 500
        /// Flapping VNets (`OutageHistory`): each outage adds 1 to a penalty halving every
        /// `flapHalfLife` seconds; above `flapSuppress` the VNet flaps and is charged what its
        /// outages cost, below `flapReuse` it is steady again. 0 suppress: no damping.
        public var flapHalfLife: Double = 20
        public var flapSuppress: Double = 1.5
        public var flapReuse: Double = 0.5

        public init() {}

        enum CodingKeys: String, CodingKey {
            case hysteresis
            case probeInterval = "probe_interval_s"
            case confirmProbeDelay = "confirm_probe_delay_s"
            case trainPackets = "train_packets"
            case trainMinimumPacketBytes = "train_minimum_packet_bytes"
            case stallMinimumMs = "stall_minimum_ms"
            case stallMaximumMs = "stall_maximum_ms"
            case stallPacketTimes = "stall_packet_times"
            case stallIdleMinimumMs = "stall_idle_minimum_ms"
            case reportFreshnessMs = "report_freshness_ms"
            case deadProbeInterval = "dead_probe_interval_s"
            case saturationDelayMs = "saturation_delay_ms"
            case saturationGrowthMs = "saturation_growth_ms"
            case rateWindow = "rate_window_s"
            case lossWindow = "loss_window_s"
            case lossyAbovePct = "lossy_above_pct"
            case cleanBelowPct = "clean_below_pct"
            case lossEvidence = "loss_evidence_nats"
            case headroom
            case tierMarginPct = "tier_margin_pct"
            case randomLossQueueMs = "random_loss_queue_ms"
            case randomLossHoldoff = "random_loss_holdoff_s"
            case pacingBurstMs = "pacing_burst_ms"
            case pacingHoldMs = "pacing_hold_ms"
            case flapHalfLife = "flap_half_life_s"
            case flapSuppress = "flap_suppress"
            case flapReuse = "flap_reuse"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Parameters()
            probeInterval = try c.decodeIfPresent(Double.self, forKey: .probeInterval) ?? d.probeInterval
            // Results written before confirming trains: the next one came a probe interval later.
            confirmProbeDelay = try c.decodeIfPresent(Double.self, forKey: .confirmProbeDelay) ?? probeInterval
            trainPackets = try c.decodeIfPresent(Int.self, forKey: .trainPackets) ?? d.trainPackets
            trainMinimumPacketBytes = try c.decodeIfPresent(Int.self, forKey: .trainMinimumPacketBytes) ?? d.trainMinimumPacketBytes
            stallMinimumMs = try c.decodeIfPresent(Double.self, forKey: .stallMinimumMs) ?? d.stallMinimumMs
            stallMaximumMs = try c.decodeIfPresent(Double.self, forKey: .stallMaximumMs) ?? d.stallMaximumMs
            // Results written before the quiet condition: none (overdue alone decided).
            stallPacketTimes = try c.decodeIfPresent(Double.self, forKey: .stallPacketTimes) ?? 0
            stallIdleMinimumMs = try c.decodeIfPresent(Double.self, forKey: .stallIdleMinimumMs) ?? 0
            reportFreshnessMs = try c.decodeIfPresent(Double.self, forKey: .reportFreshnessMs) ?? d.reportFreshnessMs
            deadProbeInterval = try c.decodeIfPresent(Double.self, forKey: .deadProbeInterval) ?? d.deadProbeInterval
            saturationDelayMs = try c.decodeIfPresent(Double.self, forKey: .saturationDelayMs) ?? d.saturationDelayMs
            saturationGrowthMs = try c.decodeIfPresent(Double.self, forKey: .saturationGrowthMs) ?? d.saturationGrowthMs
            rateWindow = try c.decodeIfPresent(Double.self, forKey: .rateWindow) ?? d.rateWindow
            hysteresis = try c.decodeIfPresent(Double.self, forKey: .hysteresis) ?? d.hysteresis
            lossWindow = try c.decodeIfPresent(Double.self, forKey: .lossWindow) ?? d.lossWindow
            lossyAbovePct = try c.decodeIfPresent(Double.self, forKey: .lossyAbovePct) ?? d.lossyAbovePct
            cleanBelowPct = try c.decodeIfPresent(Double.self, forKey: .cleanBelowPct) ?? d.cleanBelowPct
            // Results written before the change test read lossy_above_pct / clean_below_pct as the
            // bounds of a windowed Wilson interval (0.5 / 2); their loss_evidence_nats is absent.
            lossEvidence = try c.decodeIfPresent(Double.self, forKey: .lossEvidence) ?? d.lossEvidence
            headroom = try c.decodeIfPresent(Double.self, forKey: .headroom) ?? d.headroom
            tierMarginPct = try c.decodeIfPresent(Double.self, forKey: .tierMarginPct) ?? d.tierMarginPct
            randomLossQueueMs = try c.decodeIfPresent(Double.self, forKey: .randomLossQueueMs) ?? d.randomLossQueueMs
            randomLossHoldoff = try c.decodeIfPresent(Double.self, forKey: .randomLossHoldoff) ?? d.randomLossHoldoff
            pacingBurstMs = try c.decodeIfPresent(Double.self, forKey: .pacingBurstMs) ?? d.pacingBurstMs
            // Results written before the sender paced: no pacing.
            pacingHoldMs = try c.decodeIfPresent(Double.self, forKey: .pacingHoldMs) ?? 0
            // Results written before flap damping: none.
            flapHalfLife = try c.decodeIfPresent(Double.self, forKey: .flapHalfLife) ?? d.flapHalfLife
            flapSuppress = try c.decodeIfPresent(Double.self, forKey: .flapSuppress) ?? 0
            flapReuse = try c.decodeIfPresent(Double.self, forKey: .flapReuse) ?? d.flapReuse
        }
    }
}
