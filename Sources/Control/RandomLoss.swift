/// How the adaptive controller tells random loss from congestion and marks VNets lossy or
/// clean (Docs/controller.md, "Random loss, from losses at a flat queue").
extension AdaptiveController {
    /// Whether `lost` of `lost + received` packets is more than random loss at `randomRate`
    /// (the upper end of its interval) explains, by more than one packet.
    public static func congestiveLoss(lost: Int, received: Int, randomRate: Double) -> Bool {
        lost > 0 && Double(lost) > randomRate * Double(lost + max(0, received)) + 1
    }

    /// Turns a VNet lossy when its random loss is certainly above the lossy threshold, clean
    /// when certainly below the clean one; returns whether it changed.
    mutating func updateLossy(_ path: inout Path, _ index: Int) -> Bool {
        // Turning lossy asks less certainty (one standard deviation) than turning clean (two):
        // leaving a VNet that loses is cheap while the others have room, and should be quick.
        let interval = path.loss.interval()
        if !path.lossy, path.loss.interval(z: 1).lower * 100 > parameters.lossyAbovePct {
            path.lossy = true
            events.append(
                ControlEvent(
                    kind: .lossy, vnet: index,
                    detail: "random loss \(Self.percent(path.loss.rate)) % (\(Self.percent(interval.lower))-\(Self.percent(interval.upper))) of \(path.loss.packets)"))
            return true
        }
        if path.lossy, interval.upper * 100 < parameters.cleanBelowPct {
            path.lossy = false
            events.append(
                ControlEvent(kind: .clean, vnet: index, detail: "random loss below \(Self.percent(interval.upper)) % over \(path.loss.packets) packets"))
            return true
        }
        return false
    }

    static func percent(_ fraction: Double) -> String {
        let value = (fraction * 10000).rounded() / 100
        return value == value.rounded() ? String(Int(value)) : String(value)
    }
}
