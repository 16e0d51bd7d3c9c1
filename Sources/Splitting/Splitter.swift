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
