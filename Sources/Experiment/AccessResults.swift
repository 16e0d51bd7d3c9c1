import Foundation
import Lab
import Units

/// `results.json` of an access-isolation experiment: each flow's rate on the wire in 1 s bins
/// at the receiver, what it should get there, iperf3's own figures, and the access link's HTB
/// counters at both ends.
public struct AccessResults: Codable, Sendable, ResultsDocument {
    public var kind = AccessExperiment.kind
    public var schemaVersion = ResultsSchema.version
    public var experiment: String
    public var description: String?
    public var provenance: Provenance
    public var linkRate: BitRate
    public var assignable: BitRate
    /// At lab up, by VNet name.
    public var reservations: [String: BitRate]
    public var flows: [FlowFigures]
    public var reservationChanges: [ReservationChange]
    /// HTB classes at each end of the access link after the run, by end and class id.
    public var classes: [String: [String: AccessClass]]
    /// Class id -> VNet name.
    public var classNames: [String: String]

    enum CodingKeys: String, CodingKey {
        case kind, experiment, description, provenance, reservations, flows, classes
        case schemaVersion = "schema_version"
        case linkRate = "link_rate"
        case assignable
        case reservationChanges = "reservation_changes"
        case classNames = "class_names"
    }

    public static func load(_ path: String) throws -> AccessResults { try loadDocument(path, kind: "access results") }

    /// A live reservation change as the schedule applied it.
    public struct ReservationChange: Codable, Sendable {
        public var event: String
        public var atS: Double
        /// From its due time to when both ends' tc commands had returned.
        public var lateMs: Double
        /// How much of that the machine did not run the lab at all (`SchedulePlayer.Applied`).
        public var stalledMs: Double?
        enum CodingKeys: String, CodingKey {
            case event
            case atS = "at_s"
            case lateMs = "late_ms"
            case stalledMs = "stalled_ms"
        }

        /// The lateness the lab's own work explains: less what the machine's stall does.
        public var ownLateMs: Double { max(0, lateMs - (stalledMs ?? 0)) }

        /// The target: in effect within `boundMs` of its time. A stall of the whole machine is
        /// not the reservation's doing, so it is judged net of one, and the note says when that
        /// made the difference.
        public func check(boundMs: Double) -> TargetCheck {
            let stalled = stalledMs ?? 0
            return TargetCheck(
                target: "a live reservation change takes effect within \(decimal(boundMs)) ms", run: event,
                measured: "\(decimal(lateMs, 1)) ms" + (stalled >= 1 ? ", \(decimal(stalled, 1)) ms of it a stall of the machine" : ""),
                pass: ownLateMs <= boundMs,
                note: lateMs > boundMs && ownLateMs <= boundMs ? "within \(decimal(boundMs)) ms net of the machine's stall, when nothing of the lab could run" : nil)
        }
    }

    /// What iperf3's server said of a flow.
    public struct IperfSummary: Codable, Sendable {
        public var receivedMbitS: Double
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case receivedMbitS = "received_mbit_s"
            case seconds
        }

        /// From `iperf3 -s -J` output; nil when it is missing or not iperf3's.
        static func read(_ path: String) -> IperfSummary? {
            guard let data = FileManager.default.contents(atPath: path),
                let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let end = json["end"] as? [String: Any],
                let sum = (end["sum_received"] ?? end["sum"]) as? [String: Any],
                let bits = (sum["bits_per_second"] as? NSNumber)?.doubleValue
            else { return nil }
            return IperfSummary(receivedMbitS: (bits / 1e4).rounded() / 100, seconds: (sum["seconds"] as? NSNumber)?.doubleValue ?? 0)
        }
    }

    /// Each VNet's reservation over the run: the topology's, then each `reserve` event's from
    /// when it took effect.
    public struct ReservationTimeline: Sendable {
        public var initial: [String: BitRate]
        public var changes: [(atS: Double, vnet: String, rate: BitRate)]

        public init(initial: [String: BitRate], changes: [(atS: Double, vnet: String, rate: BitRate)]) {
            self.initial = initial
            self.changes = changes.sorted { $0.atS < $1.atS }
        }

        init(topology: Topology, applied: [SchedulePlayer.Applied], schedule: Schedule?) {
            var changes: [(Double, String, BitRate)] = []
            for record in applied {
                guard let event = schedule?.events[record.index - 1], case .reserve(let rate) = event.change else { continue }
                changes.append((record.appliedS, event.target.description, rate))
            }
            self.init(initial: topology.reservations, changes: changes)
        }

        public func rate(_ vnet: String, at t: Double) -> BitRate? {
            var rate = initial[vnet]
            for change in changes where change.vnet == vnet && change.atS <= t { rate = change.rate }
            return rate
        }
    }

    public struct FlowFigures: Codable, Sendable {
        public var name: String
        /// Its VNet, if it is in a class; nil: legacy.
        public var vnet: String?
        public var port: Int
        public var plannedStartS: Double
        public var plannedEndS: Double
        /// First and last packet at the receiver.
        public var firstS: Double?
        public var lastS: Double?
        public var binS: Double
        /// Mbit/s on the wire (IPv4 + Ethernet header) per bin from time zero.
        public var mbitS: [Double]
        /// What it should get per bin (nil: not checked in that bin).
        public var expectedMbitS: [Double?]
        public var paperMbitS: Double?
        public var iperf: IperfSummary?
        /// Legacy flows that share the balance with others: their sum is checked, not each.
        public var inAggregate: Bool?
        /// The flows this one sums (an aggregate of legacy flows).
        public var sums: [String]?

        enum CodingKeys: String, CodingKey {
            case name, vnet, port, iperf, sums
            case inAggregate = "in_aggregate"
            case plannedStartS = "planned_start_s"
            case plannedEndS = "planned_end_s"
            case firstS = "first_s"
            case lastS = "last_s"
            case binS = "bin_s"
            case mbitS = "mbit_s"
            case expectedMbitS = "expected_mbit_s"
            case paperMbitS = "paper_mbit_s"
        }

        /// Bins the packets of this flow (by destination port) from time zero. It runs from its
        /// first data packet (`dataBytes` on the wire or more: iperf3's control connection shares
        /// the port and is legacy traffic, so in a flooded legacy class its SYN and parameters
        /// can come seconds before the data) for `plannedEndS - plannedStartS`, however late a
        /// straggler (a FIN's retransmission) comes.
        static func measure(
            name: String, vnet: String?, port: Int, plannedStartS: Double, plannedEndS: Double, packets: [(t: Double, port: Int, bytes: Int)],
            binS: Double, paperMbitS: Double?, iperf: IperfSummary?
        ) -> FlowFigures {
            let own = packets.filter { $0.port == port && $0.t >= 0 }
            let data = own.filter { $0.bytes >= dataBytes }
            let first = data.map(\.t).min()
            let last = first.flatMap { first in data.map(\.t).max().map { min($0, first + plannedEndS - plannedStartS) } }
            let end = max(plannedEndS, own.map(\.t).max() ?? 0)
            var bytes = Array(repeating: 0.0, count: Int((end / binS).rounded(.up)) + 1)
            for packet in own { bytes[min(bytes.count - 1, Int(packet.t / binS))] += Double(packet.bytes) }
            return FlowFigures(
                name: name, vnet: vnet, port: port, plannedStartS: plannedStartS, plannedEndS: plannedEndS, firstS: first, lastS: last, binS: binS, mbitS: bytes.map { ($0 * 8 / binS / 1e4).rounded() / 100 },
                expectedMbitS: Array(repeating: nil, count: bytes.count), paperMbitS: paperMbitS, iperf: iperf)
        }

        /// A packet this large (IPv4 + Ethernet bytes) carries a flow's data, not its control.
        static let dataBytes = 500

        /// The sum of `flows` (legacy ones) bin by bin, from the first's first packet to the last's last.
        static func aggregate(_ flows: [FlowFigures], name: String) -> FlowFigures {
            let bins = flows.map(\.mbitS.count).max() ?? 0
            var sum = Array(repeating: 0.0, count: bins)
            for flow in flows { for (bin, value) in flow.mbitS.enumerated() { sum[bin] += value } }
            return FlowFigures(
                name: name, vnet: nil, port: 0, plannedStartS: flows.map(\.plannedStartS).min() ?? 0, plannedEndS: flows.map(\.plannedEndS).max() ?? 0,
                firstS: flows.compactMap(\.firstS).min(), lastS: flows.compactMap(\.lastS).max(), binS: flows.first?.binS ?? 1,
                mbitS: sum.map { ($0 * 100).rounded() / 100 }, expectedMbitS: Array(repeating: nil, count: bins), paperMbitS: nil, iperf: nil,
                sums: flows.map(\.name))
        }

        /// Fills each flow's expected rate in the bins that count: a flow in a VNet with a
        /// reservation gets it, from 1 s after its first packet (and 1 s after its reservation
        /// changed) to its last; a legacy flow gets the link's rate less the reservations of
        /// the reserved flows sending then, from 1 s after anything started, ended or changed.
        static func expect(_ flows: inout [FlowFigures], link: BitRate, timeline: ReservationTimeline) {
            let settle = 1.0
            var moments = timeline.changes.map(\.atS)
            for flow in flows { moments += [flow.firstS, flow.lastS].compactMap { $0 } }
            let summed = Set(flows.flatMap { $0.sums ?? [] })
            for index in flows.indices where summed.contains(flows[index].name) { flows[index].inAggregate = true }
            for index in flows.indices where flows[index].inAggregate != true {
                let flow = flows[index]
                guard let first = flow.firstS, let last = flow.lastS else { continue }
                for bin in flow.mbitS.indices {
                    let start = Double(bin) * flow.binS
                    let end = start + flow.binS
                    guard start >= first + settle, end <= last else { continue }
                    if let vnet = flow.vnet {
                        guard let rate = timeline.rate(vnet, at: start), timeline.rate(vnet, at: end) == rate,
                            !timeline.changes.contains(where: { $0.vnet == vnet && $0.atS > start - settle && $0.atS < end })
                        else { continue }
                        flows[index].expectedMbitS[bin] = rate.bitsPerSecond / 1e6
                    } else {
                        guard !moments.contains(where: { $0 > start - settle && $0 < end }) else { continue }
                        var reserved = 0.0
                        for other in flows where other.vnet != nil {
                            guard let f = other.firstS, let l = other.lastS, f < start, l > end,
                                let rate = timeline.rate(other.vnet!, at: start)
                            else { continue }
                            reserved += rate.bitsPerSecond
                        }
                        flows[index].expectedMbitS[bin] = (link.bitsPerSecond - reserved) / 1e6
                    }
                }
            }
        }

        /// Checked bins off by more than `tolerance` whose shortfall or excess the next or the
        /// previous bin makes up (the two together within half the tolerance), and those that
        /// none makes up. A stall of the machine at a bin's end (20-30 ms, seen in CI runs) moves
        /// a flow's packets into the next bin: late, not withheld.
        public func offBins(tolerance: Double) -> (madeUp: [Int], not: [Int]) {
            var madeUp: [Int] = []
            var not: [Int] = []
            for (bin, expected) in expectedMbitS.enumerated() {
                guard let expected, expected > 0, abs(mbitS[bin] / expected - 1) > tolerance else { continue }
                let pairs = [bin - 1, bin + 1].filter { expectedMbitS.indices.contains($0) && expectedMbitS[$0] == expected }
                if pairs.contains(where: { abs((mbitS[bin] + mbitS[$0]) / (2 * expected) - 1) <= tolerance / 2 }) {
                    madeUp.append(bin)
                } else {
                    not.append(bin)
                }
            }
            return (madeUp, not)
        }

        /// The checked bins' largest deviation from what was expected, as a fraction, and how many bins.
        public var worst: (deviation: Double, bin: Int, bins: Int)? {
            var worst: (Double, Int)?
            var count = 0
            for (bin, expected) in expectedMbitS.enumerated() {
                guard let expected, expected > 0 else { continue }
                count += 1
                let deviation = mbitS[bin] / expected - 1
                if worst == nil || abs(deviation) > abs(worst!.0) { worst = (deviation, bin) }
            }
            return worst.map { ($0.0, $0.1, count) }
        }
    }
}
