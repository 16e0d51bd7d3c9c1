/// How the adaptive controller tells random loss from congestion and marks VNets lossy or
/// clean (Docs/controller.md, "Random loss, from losses at a flat queue").
extension AdaptiveController {
    /// Whether `lost` of `lost + received` packets is more than random loss at `randomRate`
    /// (the upper end of its interval) explains, by more than one packet.
    public static func congestiveLoss(lost: Int, received: Int, randomRate: Double) -> Bool {
        lost > 0 && Double(lost) > randomRate * Double(lost + max(0, received)) + 1
    }

    /// Turns a VNet lossy when its change test says its random loss rose to `lossyAbovePct`,
    /// clean when it says the loss fell to `cleanBelowPct`; returns whether it changed. Either
    /// way the estimate restarts at the change point the test found, so that the rate the
    /// placement charges is the new one, not an average with what went before.
    mutating func updateLossy(_ path: inout Path, _ index: Int) -> Bool {
        if !path.lossy, path.lossTest.saysLossy {
            path.lossy = true
            if let since = path.lossTest.lossySince { path.loss.restart(from: since) }
            path.lossTest.reset()
            let interval = path.loss.interval()
            events.append(
                ControlEvent(
                    kind: .lossy, vnet: index,
                    detail: "random loss \(Self.percent(path.loss.rate)) % (\(Self.percent(interval.lower))-\(Self.percent(interval.upper))) of \(path.loss.packets)"))
            return true
        }
        if path.lossy, path.lossTest.saysClean {
            path.lossy = false
            if let since = path.lossTest.cleanSince { path.loss.restart(from: since) }
            path.lossTest.reset()
            events.append(
                ControlEvent(
                    kind: .clean, vnet: index,
                    detail: "random loss \(Self.percent(path.loss.rate)) % of \(path.loss.packets) packets"))
            return true
        }
        return false
    }

    static func percent(_ fraction: Double) -> String {
        let value = (fraction * 10000).rounded() / 100
        return value == value.rounded() ? String(Int(value)) : String(value)
    }
}
