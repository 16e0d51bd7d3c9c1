import Foundation
import Lab
import RunRecords

/// The traffic-class kind (`kind = "classes"`, e.g. `Experiments/paper-qos-classes.toml`): one
/// lab, one stream per class of the topology, marked with the class's TT field and sent from
/// plain sockets at the edge, which classifies them into their VNets; captures inside each
/// VNet; per class, loss and one-way delay.
public struct ClassExperiment: ExperimentKind {
    public static let kind = "classes"
    public let file: ClassExperimentFile
    public let path: String
    let topologyFile: String
    let topology: Topology
    static let port: UInt16 = 5004

    public static func load(_ path: String) throws -> ClassExperiment {
        let file = try ClassExperimentFile.load(path)
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        let topology = try Topology.load(topologyFile)
        for cls in file.classes where !topology.classes.contains(where: { $0.name == cls.name }) {
            throw LabError(
                "\(path): class '\(cls.name)' is not in \(file.topology) (it has: \(topology.classes.map(\.name).joined(separator: ", ")))")
        }
        return ClassExperiment(file: file, path: path, topologyFile: topologyFile, topology: topology)
    }

    public var name: String { file.name }
    public var startLeadS: Double { file.startLeadS }
    var durationS: Double { Double(file.packets) / file.packetsPerSecond }
    public var streamS: Double { durationS }
    public func timeLimitS(runs: Int) -> Double { durationS + 60 }

    /// Where the captures go: each VNet's ingress, from the edge and toward every neighbour.
    static func capturePoints(_ plan: LabPlan) -> [(vnet: String, end: Topology.Endpoint)] {
        var points: [(String, Topology.Endpoint)] = []
        for (index, vnet) in plan.topology.vnets.enumerated() {
            points.append((vnet.name, .init(node: vnet.ingress, interface: LabPlan.ingressInterface)))
            for link in plan.transitLinks where link.vnet == index {
                if link.a.node == vnet.ingress { points.append((vnet.name, link.b)) }
                if link.b.node == vnet.ingress { points.append((vnet.name, link.a)) }
            }
        }
        return points
    }

    func pcap(_ out: String, vnet: String, end: Topology.Endpoint) -> String { "\(out)/captures/\(vnet)-\(end.node)-\(end.interface).pcap" }

    public func runs(_ context: HarnessContext) throws -> [LabRun] {
        let out = context.out
        try FileManager.default.createDirectory(atPath: "\(out)/captures", withIntermediateDirectories: true)
        let marks = try file.classes.map { cls in try topology.classes.first { $0.name == cls.name }!.mark }
        let to = "\(topology.receiverAddress):\(Self.port)"
        return [
            LabRun(name: file.name, folder: out, topology: topology, topologyFile: topologyFile) { [file, topology] lab, start in
                var processes = Self.capturePoints(lab.plan).map { vnet, end in
                    RunProcess(
                        name: "capture-\(vnet)-\(end.node)-\(end.interface)", node: end.node,
                        arguments: CaptureInvocation(
                            interface: end.interface, pcap: pcap(out, vnet: vnet, end: end), filter: "udp dst port \(Self.port)",
                            seconds: Int(durationS + file.startLeadS + 120)
                        ).arguments, role: .listener, ending: .whenOthersEnd)
                }
                let receiver = ReceiveInvocation(
                    listen: to, intervalS: max(1, durationS), idleTimeoutS: 10, packetLog: "\(out)/receiver-packets.csv",
                    json: "\(out)/receiver.json")
                processes.append(RunProcess(name: "receiver", node: topology.receiver, arguments: receiver.arguments, role: .listener))
                let sender = MarkedSendInvocation(
                    to: to, packetsPerSecond: file.packetsPerSecond, packetBytes: file.packetBytes, count: file.packets, arrivals: file.arrivals,
                    seed: file.seed, startAt: start, tos: marks.map(\.tos), packetLog: "\(out)/sender-packets.csv", json: "\(out)/sender.json")
                processes.append(RunProcess(name: "sender", node: topology.sender, arguments: sender.arguments, role: .stream))
                context.print(
                    "sending \(file.packets) packets of \(file.packetBytes) B at \(decimal(file.packetsPerSecond)) packets/s per class (\(file.arrivals.rawValue)), \(decimal(durationS, 1)) s"
                )
                return processes
            }
        ]
    }

    public func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> ClassResults {
        let out = context.out
        let lab = finished[0].lab
        let plan = lab.plan
        let marks = try file.classes.map { cls in try topology.classes.first { $0.name == cls.name }!.mark }
        let shifts = try? JSONFile.read(MarkedSenderSummary.self, from: "\(out)/sender.json")
        let figures = try ClassAnalysis.figures(sentLog: "\(out)/sender-packets.csv", receivedLog: "\(out)/receiver-packets.csv")
        let queues = plan.queueSummaries
        var classes: [ClassResults.ClassFigures] = []
        for (index, cls) in file.classes.enumerated() {
            let declared = topology.classes.first { $0.name == cls.name }!
            let f = figures[UInt32(index + 1)] ?? .init(sent: 0, received: 0, lossPct: 100, delaysMs: [])
            classes.append(
                .init(
                    name: cls.name, tt: marks[index].description, tos: Int(marks[index].tos), sensitive: cls.sensitive, vnet: declared.vnet,
                    queue: queues[declared.vnet] ?? "", sent: f.sent, received: f.received, lossPct: round3(f.lossPct),
                    delayMsMean: f.mean.map(round3), delayMsP50: f.percentile(0.5).map(round3), delayMsP99: f.percentile(0.99).map(round3),
                    delayMsMax: f.delaysMs.max().map(round3), paperLossPct: cls.paperLossPct, paperDelayMs: cls.paperDelayMs))
        }
        let seen = try Self.capturePoints(plan).map { vnet, end in
            let file = pcap(out, vnet: vnet, end: end)
            return ClassResults.VNetCapture(
                vnet: vnet, point: end.description, file: context.relative(file), packetsByTOS: try ClassAnalysis.packetsByTOS(pcap: file, port: Self.port))
        }
        return ClassResults(
            experiment: file.name, description: file.description, provenance: context.provenance, red: plan.red, packetsPerClass: file.packets, packetsPerSecond: file.packetsPerSecond, packetBytes: file.packetBytes,
            arrivals: file.arrivals, classes: classes, senderScheduleShifts: shifts?.scheduleShifts, senderScheduleShiftS: shifts?.scheduleShiftS,
            captures: seen, definitions: ClassResults.definitionTexts)
    }

    public static func report(_ results: ClassResults, folder: String) -> ClassReport { ClassReport(results: results) }
}
