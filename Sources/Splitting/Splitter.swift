/// Splits a stream's packets across paths in proportion to weights, as evenly as the ratio
/// allows: smooth weighted round robin (each pick adds every weight to its path's credit and
/// takes the path with the most, which then pays the total back). 1:1 alternates strictly; 3:1
/// gives A A B A, never A A A B; a zero weight never picks its path. Picks may be weighed by
/// packet size (`next(bytes:)`), so that the shares hold in bytes when packet sizes vary, as
/// they do in VBR video.
///
/// A value type with no I/O: the sender asks it for the next path, a controller sets weights.
public struct WeightedSplitter: Sendable, Equatable {
    public private(set) var weights: [Double]
    private var credit: [Double]

    public init(weights: [Double]) {
        precondition(!weights.isEmpty)
        self.weights = weights
        self.credit = Array(repeating: 0, count: weights.count)
        setWeights(weights)
    }

    /// New weights take effect from the next pick; credit is kept, so a change causes no burst.
    /// Negative or non-finite weights count as zero; all zero sends everything on path 0.
    public mutating func setWeights(_ new: [Double]) {
        precondition(new.count == weights.count)
        weights = new.map { $0.isFinite && $0 > 0 ? $0 : 0 }
        if weights.allSatisfy({ $0 == 0 }) { weights[0] = 1 }
        let total = weights.reduce(0, +)
        weights = weights.map { $0 / total }
        for index in credit.indices where weights[index] == 0 { credit[index] = 0 }
    }

    /// Counts a packet the sender put on `path` by itself (a probe train's frame) as that
    /// path's pick, so that the long-run shares still follow the weights.
    public mutating func take(_ path: Int, bytes: Int = 1) {
        let size = Double(bytes)
        for index in weights.indices where weights[index] > 0 { credit[index] += weights[index] * size }
        credit[path] -= size
    }

    /// The path for the next packet (of `bytes`, when shares are to hold in bytes; every pick
    /// of a stream should then give its size).
    public mutating func next(bytes: Int = 1) -> Int {
        let size = Double(bytes)
        var best = -1
        for index in weights.indices where weights[index] > 0 {
            credit[index] += weights[index] * size
            if best < 0 || credit[index] > credit[best] { best = index }
        }
        credit[best] -= size
        return best
    }
}

/// A split in tiers, filled in order: each packet goes to the first tier that has a VNet with
/// room in its budget (a token bucket at its budgeted rate, `depth` seconds deep), and within a
/// tier by the weights (smooth weighted round robin, as `WeightedSplitter`); the last tier takes
/// what no earlier one has room for. With one tier it is exactly a `WeightedSplitter`. This is
/// how the cleanest VNets are filled first: a large frame fills them up to their room, and only
/// its overflow goes to the lossier tier, instead of a fixed share of every frame.
public struct TieredSplitter: Sendable, Equatable {
    public private(set) var split: WeightedSplitter
    /// Cleanest first; every path in exactly one tier. One tier: no budgets apply.
    public private(set) var tiers: [[Int]]
    /// Bits per second each path may take before its tier is full (earlier tiers only).
    public private(set) var budgets: [Double]
    public var depthSeconds: Double
    private var tokens: [Double]
    private var last: UInt64?
    private var tierSplits: [WeightedSplitter]

    public init(weights: [Double], depthSeconds: Double = 0.08) {
        split = WeightedSplitter(weights: weights)
        tiers = [Array(weights.indices)]
        budgets = Array(repeating: 0, count: weights.count)
        self.depthSeconds = depthSeconds
        tokens = Array(repeating: 0, count: weights.count)
        tierSplits = []
    }

    public var weights: [Double] { split.weights }

    /// New weights, tiers and budgets; tokens are kept for paths whose budget stays.
    public mutating func set(weights: [Double], tiers: [[Int]]? = nil, budgets: [Double]? = nil) {
        let tiers = (tiers ?? []).filter { !$0.isEmpty }
        // Back to one split after tiers: the weighted split starts afresh, or the credit it
        // kept while the tiers chose would push a burst onto the VNets they had spared.
        if self.tiers.count > 1 && tiers.count <= 1 { split = WeightedSplitter(weights: weights) }
        split.setWeights(weights)
        if tiers.count > 1, let budgets, budgets.count == weights.count {
            self.tiers = tiers
            for index in budgets.indices where budgets[index] != self.budgets[index] {
                tokens[index] = budgets[index] * depthSeconds
            }
            self.budgets = budgets
            tierSplits = tiers.map { tier in
                WeightedSplitter(weights: weights.indices.map { tier.contains($0) ? max(weights[$0], 1e-9) : 0 })
            }
        } else {
            self.tiers = [Array(weights.indices)]
            self.budgets = Array(repeating: 0, count: weights.count)
            tierSplits = []
        }
    }

    /// Counts a packet the sender put on `path` by itself (a probe train).
    public mutating func take(_ path: Int, bytes: Int = 1) {
        if tiers.count > 1 { tokens[path] -= Double(bytes * 8) } else { split.take(path, bytes: bytes) }
    }

    /// The path for the next packet of `bytes` at `now` (nanoseconds).
    public mutating func next(bytes: Int, now: UInt64) -> Int {
        guard tiers.count > 1 else { return split.next(bytes: bytes) }
        if let last, now > last {
            let seconds = Double(now - last) / 1e9
            for index in tokens.indices { tokens[index] = min(budgets[index] * depthSeconds, tokens[index] + budgets[index] * seconds) }
        }
        last = now
        let bits = Double(bytes * 8)
        for (number, tier) in tiers.enumerated() {
            let isLast = number == tiers.count - 1
            if !isLast && !tier.contains(where: { tokens[$0] >= bits }) { continue }
            var path = tierSplits[number].next(bytes: bytes)
            if !isLast && tokens[path] < bits { path = tier.filter { tokens[$0] >= bits }.max { tokens[$0] < tokens[$1] }! }
            tokens[path] -= bits
            return path
        }
        return split.next(bytes: bytes)
    }
}

/// A fixed ratio between VNets, written `1:1`, `1:0`, `3:1` (as many numbers as VNets).
public struct SplitRatio: Sendable, Hashable, CustomStringConvertible {
    public var weights: [Double]

    public init(weights: [Double]) { self.weights = weights }

    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        var weights: [Double] = []
        for part in parts {
            guard let value = Double(part), value.isFinite, value >= 0 else { return nil }
            weights.append(value)
        }
        guard !weights.isEmpty, weights.contains(where: { $0 > 0 }) else { return nil }
        self.weights = weights
    }

    public var description: String {
        weights.map { $0 == $0.rounded() ? String(Int($0)) : String($0) }.joined(separator: ":")
    }
}
