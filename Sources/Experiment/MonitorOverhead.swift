import Foundation
import Lab
import Monitoring
import RunRecords
import Units

/// The monitoring-overhead experiment (`kind = "monitor-overhead"`,
/// `Experiments/monitoring-overhead.toml`): the troubleshooting paper's Fig. 5. A source, one
/// router and a sink; trafgen floods the router with minimum-size UDP packets as fast as it can,
/// and the router's egress counter gives its forwarding rate in 1 s bins. Phases, one after
/// another, each in a lab of its own: no monitoring, copies by tc mirred, copies by nft dup,
/// and copies with the monitoring node overloaded (stress-ng --cpu and --hdd beside it).
///
/// Placement of work: the source and the router's forwarding (which runs in the source's
/// softirq on a veth) on the first CPU, the monitoring node's process and its load on the last,
/// as the paper's monitoring node had hardware of its own. A copy still costs the router the
/// clone and the hand-over to the mirror link.
public struct MonitorOverheadFile: Decodable, Sendable {
    public var name: String
    public var description: String?
    public var topology: String
    public var phaseS: Double
    /// UDP payload bytes: 18 makes 64-byte frames with the FCS, the paper's size.
    public var payloadBytes: Int
    public var phases: [Phase]
    public var startLeadS: Double

    public enum Phase: String, Codable, Sendable, CaseIterable {
        case baseline, tc, nft, overloaded
    }
    /// The duplication the overloaded phase uses.
    public var overloadMethod: Topology.Monitor.Method

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, topology, phases
        case phaseS = "phase_s"
        case payloadBytes = "payload_bytes"
        case overloadMethod = "overload_method"
        case startLeadS = "start_lead_s"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        phaseS = try c.number(.phaseS) ?? 60
        payloadBytes = Int(try c.number(.payloadBytes) ?? 18)
        phases = try c.decodeIfPresent([Phase].self, forKey: .phases) ?? Phase.allCases
        overloadMethod = try c.decodeIfPresent(Topology.Monitor.Method.self, forKey: .overloadMethod) ?? .nft
        startLeadS = try c.number(.startLeadS) ?? 3
    }
}

extension MonitorOverheadFile: KnownKeys {
    public static var keySchema: KeySchema { KeySchema(CodingKeys.self, also: ["kind"]) }
}

public struct MonitorOverheadExperiment: ExperimentKind {
    public static let kind = "monitor-overhead"
    public var file: MonitorOverheadFile
    let topologyFile: String
    let topology: Topology
    /// Seconds between phases, so that one's lab is quiet before the next starts.
    static let gapS = 4.0
    /// Bins at each end of a phase left out (trafgen starting, stopping).
    static let edgeS = 2.0

    public static func load(_ path: String) throws -> MonitorOverheadExperiment {
        let file = try loadTOML(MonitorOverheadFile.self, from: path, kind: "monitor-overhead experiment")
        func fail(_ message: String) -> LabError { LabError("\(path): \(message)") }
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        let topology = try Topology.load(topologyFile)
        guard topology.vnets.count == 1, topology.vnets[0].routers.count == 1 else {
            throw fail("\(file.topology): the overhead is measured on one VNet of one router (source, router, sink)")
        }
        guard topology.monitors.isEmpty else { throw fail("\(file.topology) has monitors of its own: each phase sets its own") }
        guard file.phaseS >= 3 * Self.edgeS, file.phaseS <= 3600 else { throw fail("phase_s must be \(decimal(3 * Self.edgeS))-3600") }
        guard (18...1400).contains(file.payloadBytes) else { throw fail("payload_bytes must be 18-1400") }
        guard !file.phases.isEmpty, Set(file.phases).count == file.phases.count else { throw fail("phases: each at most once, at least one") }
        return MonitorOverheadExperiment(file: file, topologyFile: topologyFile, topology: topology)
    }

    public var name: String { file.name }
    public var startLeadS: Double { file.startLeadS }
    public var staggerS: Double { file.phaseS + Self.gapS }
    public var streamS: Double { file.phaseS }
    public func timeLimitS(runs: Int) -> Double { staggerS * Double(runs) + 60 }

    var router: String { topology.vnets[0].routers[0] }

    /// The topology of a phase: the file's, with a monitor beside the router for all but the baseline.
    func topology(of phase: MonitorOverheadFile.Phase) -> Topology {
        var topology = self.topology
        let method: Topology.Monitor.Method? =
            switch phase {
            case .baseline: nil
            case .tc: .tc
            case .nft: .nft
            case .overloaded: file.overloadMethod
            }
        if let method { topology.monitors = [Topology.Monitor(vnet: topology.vnets[0].name, direction: .in, traffic: "all", method: method)] }
        return topology
    }

    public func runs(_ context: HarnessContext) throws -> [LabRun] {
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        let last = String(max(0, cpus - 1))
        return try file.phases.map { phase in
            let folder = "\(context.out)/phases/\(phase.rawValue)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            let topology = topology(of: phase)
            return LabRun(name: phase.rawValue, folder: folder, topology: topology, topologyFile: topologyFile) { [file, router] lab, _ in
                let plan = lab.plan
                let phaseS = decimal(file.phaseS, 3)
                // The sink drops the flood as it arrives (no ICMP back, no socket lookups).
                let sink = "\(folder)/sink.nft"
                try "table ip vnetsink {\n  chain pre {\n    type filter hook prerouting priority -300;\n    udp dport 9 counter drop\n  }\n}\n"
                    .write(toFile: sink, atomically: true, encoding: .utf8)
                // trafgen's frame: to the router's port from the source's own address in the VNet.
                let ports = Dictionary(uniqueKeysWithValues: try lab.monitorPorts(router: router).map { entry in
                    let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                    return (parts[0], parts[1])
                })
                let config = "\(folder)/trafgen.cfg"
                try """
                { eth(da=\(ports[LabPlan.ingressInterface] ?? "ff:ff:ff:ff:ff:ff"), type=0x0800), ipv4(saddr=\(plan.senderAddress(vnet: 0)), daddr=\(plan.receiverAddress), ttl=64), udp(sp=5000, dp=9), fill(0x00, \(file.payloadBytes)) }

                """.write(toFile: config, atomically: true, encoding: .utf8)
                var processes = [
                    RunProcess(name: "sink", node: topology.receiver, arguments: ["-f", sink], role: .listener, program: "nft"),
                    RunProcess(
                        name: "forwarding", node: router,
                        arguments: ["monitor", "counters", "--interface", LabPlan.egressInterface, "--csv", "\(folder)/forwarding.csv", "--seconds",
                            decimal(timeLimitS(runs: 1) + staggerS * Double(file.phases.count), 0)], role: .listener, ending: .whenOthersEnd),
                ]
                if let moni = plan.monitoring.monis.first {
                    processes.append(
                        RunProcess(
                            name: "monitor", node: moni.node,
                            arguments: ["-c", last, context.binary] + (try lab.monitorWatchArguments(moni, json: "\(folder)/monitor.json")),
                            role: .listener, ending: .whenOthersEnd, program: "taskset"))
                    processes.append(
                        RunProcess(
                            name: "collector", node: MonitorPlan.collectorNode,
                            arguments: lab.collectorArguments(records: "\(folder)/records.jsonl", json: "\(folder)/collector.json"),
                            role: .listener, ending: .whenOthersEnd))
                }
                if phase == .overloaded, let moni = plan.monitoring.monis.first {
                    processes.append(
                        RunProcess(
                            name: "stress", node: moni.node,
                            arguments: ["-c", last, "stress-ng", "--cpu", "1", "--hdd", "1", "--temp-path", folder, "--timeout", phaseS, "-q"],
                            role: .stream, program: "taskset", startAtS: 0))
                }
                // Bounded twice: by count (far above what this machine forwards) and by time.
                let count = String(Int(file.phaseS * 5_000_000))
                processes.append(
                    RunProcess(
                        name: "trafgen", node: topology.sender,
                        arguments: ["-c", "timeout \(phaseS) taskset -c 0 trafgen -o vnet1 -i \(config) -n \(count) --cpus 1 -q; s=$?; [ $s -eq 0 ] || [ $s -eq 124 ]"],
                        role: .stream, program: "sh", startAtS: 0))
                return processes
            }
        }
    }

    public func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> MonitorOverheadResults {
        var phases: [MonitorOverheadResults.PhaseFigures] = []
        for (run, phase) in zip(finished, file.phases) {
            let samples = try CSVLog.read(CounterSample.self, from: "\(run.run.folder)/forwarding.csv")
            let zero = Double(run.start) / 1e9
            let kpps = CounterSample.txRates(samples).filter { $0.t - zero >= Self.edgeS && $0.t - zero <= file.phaseS - Self.edgeS }.map { $0.pps / 1000 }
            let monitor = try? JSONFile.read(MonitorNode.Totals.self, from: "\(run.run.folder)/monitor.json")
            let mirrorDrops = run.lab.plan.monitoring.monis.first.flatMap { run.lab.mirrorLinkDrops(router: $0.router) }
            phases.append(
                .init(
                    phase: phase.rawValue, method: run.lab.plan.monitoring.monis.first?.method.rawValue, kppsPerSecond: kpps,
                    copies: monitor?.copies, copiesDroppedByKernel: monitor?.droppedByKernel, mirrorLinkDrops: mirrorDrops, moniCPUS: monitor?.cpuS))
        }
        return MonitorOverheadResults(
            experiment: file.name, description: file.description, provenance: context.provenance, frameBytes: file.payloadBytes + 46, phaseS: file.phaseS,
            phases: phases)
    }

    public static func report(_ results: MonitorOverheadResults, folder: String) -> MonitorOverheadReport {
        MonitorOverheadReport(results: results, folder: folder)
    }
}
