import Lab
import Monitoring
import RunRecords

/// Loss located along each path by the monitoring VNets, with the lab's links and the end
/// points' packet logs (`LossLocator` does the placing).
public enum LocatedLoss {
    /// The lab's links as the locator reads them: every router port and the link direction
    /// into it; per VNet the link in from the sender's side and the link out to the receiver.
    public static func hopMap(_ plan: LabPlan) -> LossLocator.HopMap {
        typealias Arrival = LossLocator.HopMap.Arrival
        var arrivals: [String: Arrival] = [:]
        var ingress: [UInt8: Arrival] = [:]
        var egress: [UInt8: Arrival] = [:]
        for link in plan.links {
            let forward = Arrival(link: link.name, from: link.a.description, to: link.b.description)
            let backward = Arrival(link: link.name, from: link.b.description, to: link.a.description)
            if link.access {
                if link.b.interface == LabPlan.ingressInterface {
                    arrivals[link.b.description] = forward
                    ingress[UInt8(link.vnet)] = forward
                } else {
                    arrivals[link.a.description] = backward
                    egress[UInt8(link.vnet)] = forward
                }
            } else {
                arrivals[link.b.description] = forward
                arrivals[link.a.description] = backward
            }
        }
        return .init(arrivals: arrivals, ingress: ingress, egress: egress)
    }

    /// `sent` nil: the packets some hop or the receiver saw (the sender's log was not kept).
    public static func locate(plan: LabPlan, summaries: [MirrorSummary], sent: [SentPacket]?, received: [ReceivedPacket]) -> LossLocator.Result {
        let sentByPath = sent.map { packets in
            Dictionary(grouping: packets.filter { !$0.localDrop }, by: { UInt8($0.vnet - 1) }).mapValues { $0.map(\.pathSequence) }
        }
        let receivedByPath = Dictionary(grouping: received, by: { UInt8($0.vnet - 1) }).mapValues { Set($0.map(\.pathSequence)) }
        return LossLocator.locate(summaries: summaries, sent: sentByPath, received: receivedByPath, map: hopMap(plan))
    }
}
