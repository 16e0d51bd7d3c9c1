import Packets

/// Decides where a stream's packets go: the split's weights, and per frame whether to send a
/// probe train or copies. A value type with no I/O and no clock of its own: the sender tells it
/// what it sent and what reports arrived, with the time, and asks before each frame.
public protocol SplitController {
    /// The current weights, one per VNet (the splitter normalises them).
    var weights: [Double] { get }
    /// VNets in tiers to fill in order, cleanest first, when there are several (nil: one split
    /// by the weights), and each VNet's budget before its tier counts as full, bits per second.
    var tiers: [[Int]]? { get }
    var budgets: [Double]? { get }
    /// What the live VNets together can deliver now, bits per second (the source sheds frames
    /// when the stream needs more); nil when the mode does not know.
    var deliverableRate: Double? { get }
    /// The rate to pace each VNet's packets at, bits per second, and how long a packet may wait
    /// for it (nil: no pacing, or none for that VNet).
    var pacingRates: [Double?]? { get }
    var pacingHoldNanoseconds: UInt64 { get }
    /// What to do with the next frame of `fragmentBytes` (IPv4 bytes of each packet). A key
    /// frame (an I frame) carries no probe train: a train overflows a short queue on purpose,
    /// and a lost I frame costs its whole group.
    mutating func plan(fragmentBytes: [Int], keyFrame: Bool, now: UInt64) -> FramePlan
    /// One packet went out on `vnet` with that path sequence.
    mutating func sent(vnet: Int, pathSequence: UInt32, bytes: Int, now: UInt64)
    /// A receiver report arrived over `vnet`.
    mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64)
    /// What changed since the last call, for the log (state changes, new estimates).
    mutating func takeEvents() -> [ControlEvent]
    /// Each VNet's prospects for a packet sent on it now (where a retransmission goes).
    func outlook(now: UInt64) -> [VNetOutlook]
}

/// What the controller expects of a VNet for one more packet now.
public struct VNetOutlook: Sendable, Equatable {
    /// It delivers (not declared dead; for a fixed split: it has a weight).
    public var live: Bool
    /// Its random loss rate as estimated (0 to 1; 0 when it is not known to lose).
    public var lossRate: Double
    /// Its queue may be overflowing: what is sent now may be lost to congestion.
    public var full: Bool

    public init(live: Bool, lossRate: Double = 0, full: Bool = false) {
        self.live = live
        self.lossRate = lossRate
        self.full = full
    }
}

extension SplitController {
    /// A frame that is not a key frame.
    public mutating func plan(fragmentBytes: [Int], now: UInt64) -> FramePlan { plan(fragmentBytes: fragmentBytes, keyFrame: false, now: now) }
    public var tiers: [[Int]]? { nil }
    public var budgets: [Double]? { nil }
    public var deliverableRate: Double? { nil }
    public var pacingRates: [Double?]? { nil }
    public var pacingHoldNanoseconds: UInt64 { 0 }
    /// Without estimates: a VNet with a weight is live, and nothing more is known.
    public func outlook(now: UInt64) -> [VNetOutlook] { weights.map { VNetOutlook(live: $0 > 0) } }
}

/// How one frame goes out.
public struct FramePlan: Equatable, Sendable {
    /// Every packet on every VNet (duplicate mode).
    public var everywhere = false
    /// The frame's first `trainPackets` packets on this VNet, back to back (then copies of its
    /// largest packet when it has fewer): a capacity probe the receiver measures. The frame's
    /// other packets are split as usual.
    public var train: Int?
    public var trainPackets = 0
    /// The train is copies only (of the frame's largest packet): the VNet loses at random or
    /// flaps, so the stream's own packets stay off it while its capacity is measured.
    public var trainOfCopies = false
    /// A copy of the frame's first packet on each of these VNets (probing a dead VNet costs the
    /// stream nothing: the receiver counts a packet lost only if no copy arrived).
    public var copiesOn: [Int] = []

    public init(everywhere: Bool = false, train: Int? = nil, trainPackets: Int = 0, copiesOn: [Int] = []) {
        self.everywhere = everywhere
        self.train = train
        self.trainPackets = trainPackets
        self.copiesOn = copiesOn
    }

    /// The weighted split alone.
    public static let split = FramePlan()
}

/// A change the controller made, as logged.
public struct ControlEvent: Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// No progress in the path's sequence while reports arrive: weight 0, probed with copies.
        case dead
        /// Progress again after being dead.
        case alive
        /// A new capacity estimate (train, or delivered rate while saturated).
        case capacity
        /// Random loss (at a flat queue) is certainly above the lossy threshold: the VNet is
        /// filled only after the cleaner ones.
        case lossy
        /// Its random loss is certainly below the clean threshold again.
        case clean
        /// Its outages came too often (`OutageHistory`): filled only after the steady VNets.
        case flapping
        /// No outage for long enough: steady again.
        case steady
    }

    public var kind: Kind
    public var vnet: Int
    /// The estimate behind the event, bits per second (capacity events).
    public var bitsPerSecond: Double?
    /// Where it came from: `train`, `saturated`, or for dead: how long the path stalled, in ms.
    public var detail: String

    public init(kind: Kind, vnet: Int, bitsPerSecond: Double? = nil, detail: String) {
        self.kind = kind
        self.vnet = vnet
        self.bitsPerSecond = bitsPerSecond
        self.detail = detail
    }
}

/// A fixed split: `static` with a ratio, `uni` with one VNet's weight alone. Never moves.
public struct StaticSplit: SplitController {
    public let weights: [Double]

    public init(weights: [Double]) { self.weights = weights }

    public mutating func plan(fragmentBytes: [Int], keyFrame: Bool, now: UInt64) -> FramePlan { .split }
    public mutating func sent(vnet: Int, pathSequence: UInt32, bytes: Int, now: UInt64) {}
    public mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64) {}
    public mutating func takeEvents() -> [ControlEvent] { [] }
}

/// Every packet on every VNet: the stream survives as long as one VNet delivers each packet,
/// at the cost of sending everything once per VNet.
public struct DuplicateSplit: SplitController {
    public let weights: [Double]

    public init(vnets: Int) { weights = Array(repeating: 1, count: vnets) }

    public mutating func plan(fragmentBytes: [Int], keyFrame: Bool, now: UInt64) -> FramePlan { FramePlan(everywhere: true) }
    public mutating func sent(vnet: Int, pathSequence: UInt32, bytes: Int, now: UInt64) {}
    public mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64) {}
    public mutating func takeEvents() -> [ControlEvent] { [] }
}
