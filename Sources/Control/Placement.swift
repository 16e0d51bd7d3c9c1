/// Where a stream goes across VNets, given what each can carry and what each costs in random
/// loss: the rates that minimise the stream's expected loss (written up in
/// `Docs/controller.md`, "The objective").
///
/// The stream's rate r is split into rates x_i with Σ x_i = r. A VNet with capacity c_i and
/// random loss rate p_i loses p_i x_i while x_i stays within its capacity. Minimising Σ p_i x_i
/// subject to x_i ≤ h c_i (h: the headroom kept on every VNet, so its queue stays short) is a
/// fractional knapsack: fill the cleanest VNets first, up to h c_i, then the next cleanest.
/// VNets whose costs are within `tierMargin` of each other form a tier and share what falls
/// to it in proportion to capacity, as they did before loss counted (so with no random loss
/// anywhere the split is capacity-proportional, the paper's). What does not fit under the
/// headroom of all the VNets together is spread over them all in proportion to capacity too
/// (that loss is unavoidable, and proportional loading keeps every queue equally far from
/// overflowing).
public enum Placement {
    public struct VNet: Sendable, Equatable {
        /// Bits per second it can carry.
        public var capacity: Double
        /// Its random loss rate (0 to 1); 0 for a clean VNet.
        public var cost: Double
        /// Dead VNets get nothing.
        public var live: Bool

        public init(capacity: Double, cost: Double = 0, live: Bool = true) {
            self.capacity = capacity
            self.cost = cost
            self.live = live
        }
    }

    /// The rate for each VNet, bits per second (a weight: the splitter normalises). Without a
    /// known stream rate, each live VNet's capacity within the cleanest tier, and the others'
    /// only when no clean tier can be told apart.
    public static func rates(_ vnets: [VNet], stream: Double?, headroom: Double = 0.9, tierMargin: Double = 0.005) -> [Double] {
        var rates = Array(repeating: 0.0, count: vnets.count)
        let usable = vnets.indices.filter { vnets[$0].live && vnets[$0].capacity > 0 }
        guard !usable.isEmpty else { return rates }
        let tiers = Self.tiers(usable, costs: vnets.map(\.cost), margin: tierMargin)
        guard let stream, stream > 0 else {
            for index in tiers[0] { rates[index] = vnets[index].capacity }
            return rates
        }
        var remaining = stream
        for tier in tiers where remaining > 0 {
            let room = tier.map { headroom * vnets[$0].capacity }.reduce(0, +)
            let share = min(remaining, room)
            for index in tier { rates[index] = share * headroom * vnets[index].capacity / room }
            remaining -= share
        }
        if remaining > 0 {
            let total = usable.map { vnets[$0].capacity }.reduce(0, +)
            for index in usable { rates[index] += remaining * vnets[index].capacity / total }
        }
        return rates
    }

    /// The usable VNets grouped by cost, cleanest first; a tier holds VNets whose costs are
    /// within `margin` of its cleanest one. Clean VNets (cost 0) never share a tier with lossy
    /// ones, however small their loss: whether a VNet is lossy is the controller's decision,
    /// made with hysteresis, and the tiers follow it.
    public static func tiers(_ indices: [Int], costs: [Double], margin: Double) -> [[Int]] {
        var tiers: [[Int]] = []
        for index in indices.sorted(by: { costs[$0] < costs[$1] }) {
            if let first = tiers.last?.first, (costs[first] > 0) == (costs[index] > 0), costs[index] - costs[first] <= margin {
                tiers[tiers.count - 1].append(index)
            } else {
                tiers.append([index])
            }
        }
        return tiers
    }

    /// The expected loss rate of the stream placed at `rates` (random loss only, within capacity;
    /// plus what exceeds each VNet's capacity): the objective the placement minimises.
    public static func expectedLoss(_ vnets: [VNet], rates: [Double]) -> Double {
        let total = rates.reduce(0, +)
        guard total > 0 else { return 0 }
        var lost = 0.0
        for (vnet, rate) in zip(vnets, rates) {
            let carried = min(rate, vnet.live ? vnet.capacity : 0)
            lost += (rate - carried) + carried * vnet.cost
        }
        return lost / total
    }
}

extension AdaptiveController {
    /// The weights, tiers and budgets: the placement (`Placement`, Docs/controller.md) as the
    /// splitter realises it. With every live VNet in one loss tier, the weights are the
    /// capacities (capacity-proportional, whatever the stream's rate). With several tiers, the
    /// splitter fills the cleanest tier up to `headroom` of each VNet's capacity and sends what
    /// overflows (a VBR frame's burst) to the next, splitting by capacity within a tier.
    /// Liveness and lossiness changes always apply; estimate changes only beyond the hysteresis.
    /// Capacities are the VNets' carrying rates (`carryingRate`), as pacing and shedding use them.
    mutating func recomputeWeights() {
        let live = paths.indices.filter { !paths[$0].dead }
        guard !live.isEmpty else {
            weights = Array(repeating: 1, count: paths.count)
            appliedEstimates = paths.map(\.carryingRate)
            tiers = nil
            budgets = nil
            return
        }
        let known = live.compactMap { paths[$0].carryingRate }
        let fallback = known.isEmpty ? 1 : known.reduce(0, +) / Double(known.count)
        let vnets = paths.map { path in
            Placement.VNet(
                capacity: path.carryingRate ?? fallback, cost: (path.lossy ? max(path.loss.rate, parameters.lossyAbovePct / 100) : 0) + path.flapCost, live: !path.dead)
        }
        let proposed = vnets.map { $0.live ? $0.capacity : 0 }
        let livenessChanged = zip(proposed, weights).contains { ($0 == 0) != ($1 == 0) } || paths.map(\.charged) != appliedCharged
        let moved = paths.indices.contains { index in
            guard let now = paths[index].carryingRate else { return false }
            guard let before = appliedEstimates[index] else { return true }
            return abs(now - before) > parameters.hysteresis * before
        }
        guard livenessChanged || moved else { return }
        weights = proposed
        appliedEstimates = paths.map(\.carryingRate)
        appliedCharged = paths.map(\.charged)
        let grouped = Placement.tiers(live, costs: vnets.map(\.cost), margin: parameters.tierMarginPct / 100)
        if grouped.count > 1 {
            tiers = grouped + [paths.indices.filter { paths[$0].dead }].filter { !$0.isEmpty }
            budgets = vnets.map { $0.live ? parameters.headroom * $0.capacity : 0 }
        } else {
            tiers = nil
            budgets = nil
        }
    }
}
