import Foundation
import Lab
import RunRecords
import Units

/// A multicast experiment (`kind = "multicast"`, `Experiments/multicast.toml`): VIOLIN's
/// service the real network does not offer. A CBR stream goes to a group that a VNet of the
/// topology carries (`[[vnet.group]]`); a receiver at every member joins it. The report gives
/// each member's loss table, and sets each member's loss next to what the kernel dropped on
/// the links of its branch of the tree.
public struct MulticastExperimentFile: Decodable, Sendable, KnownKeys {
    public var name: String
    public var description: String?
    /// Relative to the experiment file.
    public var topology: String
    public var schedule: String?
    /// The group (default: the topology's only one).
    public var group: String?
    public var cbr: String
    public var fps: Int
    public var startLeadS: Double
    public var durationS: Double
    public var intervalS: Double

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, topology, schedule, group, cbr, fps
        case startLeadS = "start_lead_s"
        case durationS = "duration_s"
        case intervalS = "interval_s"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        schedule = try c.decodeIfPresent(String.self, forKey: .schedule)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        cbr = try c.decodeIfPresent(String.self, forKey: .cbr) ?? "1mbit"
        fps = try c.decodeIfPresent(Int.self, forKey: .fps) ?? 100
        startLeadS = try c.number(.startLeadS) ?? 3
        durationS = try c.number(.durationS) ?? 30
        intervalS = try c.number(.intervalS) ?? 10
    }

    public static var keySchema: KeySchema { KeySchema(CodingKeys.self, also: ["kind"]) }
}

public struct MulticastExperiment: ExperimentKind {
    public static let kind = "multicast"
    public var file: MulticastExperimentFile
    let topologyFile: String
    let topology: Topology
    let schedule: Schedule?
    /// The VNet that carries the group, and the group.
    let vnet: Int
    let group: Topology.MulticastGroup
    static let port = 5004

    public static func load(_ path: String) throws -> MulticastExperiment {
        let file = try loadTOML(MulticastExperimentFile.self, from: path, kind: "multicast experiment")
        func fail(_ message: String) -> LabError { LabError("\(path): \(message)") }
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        let topology = try Topology.load(topologyFile)
        let groups = topology.vnets.enumerated().flatMap { index, vnet in vnet.groups.map { (index, $0) } }
        let chosen = file.group.map { address in groups.filter { $0.1.address == address } } ?? groups
        guard let (vnet, group) = chosen.first, chosen.count == 1 else {
            let named = groups.map(\.1.address).joined(separator: ", ")
            if groups.isEmpty { throw fail("\(file.topology) has no [[vnet.group]]: no VNet carries a multicast group") }
            throw fail(file.group.map { "group \($0) is not among \(file.topology)'s (\(named))" } ?? "\(file.topology) has several groups (\(named)): say which with group = \"...\"")
        }
        guard file.durationS >= 1, file.durationS <= 3600 else { throw fail("duration_s must be 1-3600") }
        guard file.startLeadS > 0 else { throw fail("start_lead_s must be positive") }
        guard file.intervalS >= 0.1, file.intervalS <= file.durationS else { throw fail("interval_s must be 0.1 s to duration_s") }
        guard (1...10_000).contains(file.fps) else { throw fail("fps must be 1-10000") }
        do { _ = try BitRate(parsing: file.cbr) } catch { throw fail("cbr: \(error)") }
        let schedule = try file.schedule.map { try Schedule.load(ExperimentFile.resolve($0, relativeTo: path)) }
        return MulticastExperiment(file: file, topologyFile: topologyFile, topology: topology, schedule: schedule, vnet: vnet, group: group)
    }

    public var name: String { file.name }
    public var startLeadS: Double { file.startLeadS }
    public var streamS: Double { file.durationS }
    public func timeLimitS(runs: Int) -> Double { file.durationS + 60 }

    static func receiverJSON(_ out: String, _ member: String) -> String { "\(out)/receiver-\(member).json" }

    public func runs(_ context: HarnessContext) throws -> [LabRun] {
        let out = context.out
        let target = "\(group.address):\(Self.port)"
        return [
            LabRun(name: file.name, folder: out, topology: topology, topologyFile: topologyFile, schedule: schedule) { [file, topology, group, vnet] _, start in
                var processes = group.members.map { member in
                    var receive = ReceiveInvocation(
                        listen: "0.0.0.0:\(Self.port)", intervalS: file.intervalS, idleTimeoutS: 10, packetLog: "\(out)/receiver-\(member)-packets.csv",
                        json: Self.receiverJSON(out, member))
                    receive.join = group.address
                    return RunProcess(name: "receiver-\(member)", node: member, arguments: receive.arguments, role: .listener)
                }
                processes.append(
                    RunProcess(
                        name: "sender", node: topology.sender,
                        arguments: ["send", "--cbr", file.cbr, "--fps", String(file.fps), "--duration", decimal(file.durationS, 3), "--to", target,
                            "--start-at", String(start), "--mode", "uni", "--vnet", topology.vnets[vnet].tun, "--json-file", "\(out)/sender.json"],
                        role: .stream))
                context.print(
                    "CBR \(file.cbr) to \(group.address) in \(topology.vnets[vnet].name) for \(decimal(file.durationS)) s; members \(group.members.joined(separator: ", "))")
                return processes
            }
        ]
    }

    public func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> MulticastResults {
        let run = finished[0]
        let plan = run.lab.plan
        let address = try group.group()
        let hops = try plan.multicastHops().filter { $0.vnet == vnet && $0.group == address }
        let kernel = KernelDrops(plan: plan, from: run.kernel.first!, to: run.kernel.last!)
        // A node's branch: the link directions from the sender down to it, by walking up the tree.
        var parent: [String: (from: String, to: String)] = [:]
        for hop in hops {
            for copy in hop.to {
                guard let link = plan.links.first(where: { ($0.a.node == hop.node && $0.a.interface == copy.interface) || ($0.b.node == hop.node && $0.b.interface == copy.interface) }) else { continue }
                let (near, far) = link.a.node == hop.node && link.a.interface == copy.interface ? (link.a, link.b) : (link.b, link.a)
                parent[far.node] = (near.description, far.description)
            }
        }
        var members: [MulticastResults.Member] = []
        for member in group.members {
            var branch: [(from: String, to: String)] = []
            var node = member
            while let up = parent[node], branch.count < plan.nodes.count {
                branch.insert(up, at: 0)
                node = String(up.from.split(separator: ":")[0])
            }
            let result = try JSONFile.read(ReceiverResult.self, from: Self.receiverJSON(context.out, member), what: "receiver result")
            guard let report = result.report else { throw ExperimentError("the receiver at \(member) accounted no stream (did anything arrive?)") }
            let links = branch.map { step in
                let counted = kernel.links.first { $0.from == step.from && $0.to == step.to }
                return MulticastResults.BranchLink(from: step.from, to: step.to, entered: counted?.entered, dropped: counted?.dropped)
            }
            members.append(
                .init(
                    node: member, host: topology.host(of: member), branch: links, sent: report.total.sent, received: report.paths.map(\.received).reduce(0, +),
                    lost: report.total.lost, duplicates: report.paths.map(\.duplicates).reduce(0, +),
                    intervals: report.intervals))
        }
        let sender = try JSONFile.read(SenderSummary.self, from: "\(context.out)/sender.json", what: "sender summary")
        return MulticastResults(
            experiment: file.name, description: file.description, provenance: context.provenance, group: group.address, vnet: topology.vnets[vnet].name,
            cbr: file.cbr, senderPackets: sender.packets, members: members)
    }

    public static func report(_ results: MulticastResults, folder: String) -> MulticastReport { MulticastReport(results: results, folder: folder) }
}
