import Accounting
import Lab
import RunRecords

/// What the kernel counted during a run (`KernelSnapshot`s of every router interface, read
/// before the streams, after each batch of schedule events and at the end), as drops per link
/// direction, router and VNet for each span between readings, and how the receiver's losses
/// reconcile with it.
public struct KernelRecord: Codable, Sendable, Equatable {
    /// When the counters were read, and what did not answer.
    public struct Reading: Codable, Sendable, Equatable {
        public var label: String
        public var atS: Double
        public var failures: [String]

        enum CodingKeys: String, CodingKey {
            case label, failures
            case atS = "at_s"
        }
    }

    /// One VNet's losses, the receiver's against the kernel's:
    /// `receiver_lost = sender_local_drops + link_drops + router_drops + unexplained`.
    /// Beside them, where an unexplained loss would sit: between the sender's tun and the VNet
    /// (`sent - entered`), and between the VNet and the receiver's socket (`left - received`).
    public struct Reconciliation: Codable, Sendable, Equatable {
        public var vnet: Int
        /// Packets the sender put into the VNet's tun, and those the tun would not take.
        public var senderSent: Int
        public var senderLocalDrops: Int
        /// Media packets the VNet's ingress took in and its egress sent on to the receiver.
        public var entered: Int
        public var left: Int
        public var linkDrops: Int
        public var routerDrops: Int
        public var receiverReceived: Int
        public var receiverLost: Int
        /// What neither the sender nor the kernel accounts for.
        public var unexplained: Int

        enum CodingKeys: String, CodingKey {
            case vnet, entered, left, unexplained
            case senderSent = "sender_sent"
            case senderLocalDrops = "sender_local_drops"
            case linkDrops = "link_drops"
            case routerDrops = "router_drops"
            case receiverReceived = "receiver_received"
            case receiverLost = "receiver_lost"
        }
    }

    public var readings: [Reading]
    /// Between consecutive readings.
    public var intervals: [KernelDrops]
    /// From the first reading to the last.
    public var total: KernelDrops
    public var reconciliation: [Reconciliation]
    /// The sum over the VNets of the unexplained losses, in either direction.
    public var unexplained: Int

    /// nil without at least two readings.
    public init?(plan: LabPlan, snapshots: [KernelSnapshot], sender: SenderSummary, receiver: LossReport) {
        guard let first = snapshots.first, let last = snapshots.last, snapshots.count >= 2 else { return nil }
        readings = snapshots.map { Reading(label: $0.label, atS: $0.atS, failures: $0.failures) }
        intervals = zip(snapshots, snapshots.dropFirst()).map { KernelDrops(plan: plan, from: $0, to: $1) }
        total = KernelDrops(plan: plan, from: first, to: last)
        reconciliation = total.vnets.map { kernel in
            let sent = sender.vnets.first { $0.vnet == kernel.vnet }
            let path = receiver.paths.first { $0.vnet == kernel.vnet }
            let lost = path?.lost ?? 0
            let localDrops = sent?.localDrops ?? 0
            return Reconciliation(
                vnet: kernel.vnet, senderSent: sent?.packets ?? 0, senderLocalDrops: localDrops, entered: kernel.entered, left: kernel.left,
                linkDrops: kernel.linkDrops, routerDrops: kernel.routerDrops, receiverReceived: path?.received ?? 0, receiverLost: lost,
                unexplained: lost - localDrops - kernel.linkDrops - kernel.routerDrops)
        }
        unexplained = reconciliation.map { abs($0.unexplained) }.reduce(0, +)
    }
}
