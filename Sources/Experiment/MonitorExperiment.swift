import Capture
import Control
import Foundation
import Lab
import Monitoring
import Packets
import RunRecords
import Units

/// A loss-locating experiment (`kind = "monitor-locate"`, `Experiments/monitoring-locate.toml`):
/// the troubleshooting paper's Monitoring VNets asked the operator's question, "which link lost
/// it?". A topology, monitors on it (the file's `[[monitor]]`s added to the topology's own), a
/// schedule that puts loss on links, and a CBR stream split across the VNets. Each Moni's
/// summaries go to the collector; the report places every lost packet on a link and sets it
/// next to the kernel's own counter for that link, and libpcap on every production port shows
/// that no copy ever travelled there.
public struct MonitorExperimentFile: Decodable, Sendable {
    public var name: String
    public var description: String?
    /// Relative to the experiment file.
    public var topology: String
    public var schedule: String?
    public var startLeadS: Double
    public var durationS: Double
    /// The stream's rate (`send --cbr`).
    public var cbr: String
    public var mode: SendMode
    /// Seconds per Moni summary.
    public var intervalS: Double
    public var monitors: [Topology.Monitor]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, topology, schedule, cbr, mode
        case startLeadS = "start_lead_s"
        case durationS = "duration_s"
        case intervalS = "interval_s"
        case monitors = "monitor"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        schedule = try c.decodeIfPresent(String.self, forKey: .schedule)
        startLeadS = try c.number(.startLeadS) ?? 3
        durationS = try c.number(.durationS) ?? 30
        cbr = try c.decodeIfPresent(String.self, forKey: .cbr) ?? "1mbit"
        mode = try c.decodeIfPresent(SendMode.self, forKey: .mode) ?? SendMode(name: "static-1:1")!
        intervalS = try c.number(.intervalS) ?? 1
        monitors = try c.decodeIfPresent([Topology.Monitor].self, forKey: .monitors) ?? []
    }
}

extension MonitorExperimentFile: KnownKeys {
    public static var keySchema: KeySchema {
        KeySchema(CodingKeys.self, sections: ["monitor": Topology.Monitor.keySchema], also: ["kind"])
    }
}

public struct MonitorExperiment: ExperimentKind {
    public static let kind = "monitor-locate"
    public var file: MonitorExperimentFile
    let topologyFile: String
    let topology: Topology
    let schedule: Schedule?
    static let port = 5004

    public static func load(_ path: String) throws -> MonitorExperiment {
        let file = try loadTOML(MonitorExperimentFile.self, from: path, kind: "monitor-locate experiment")
        func fail(_ message: String) -> LabError { LabError("\(path): \(message)") }
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        var topology = try Topology.load(topologyFile)
        topology.monitors += file.monitors
        do { try topology.validate(file: "\(file.topology) with the monitors of \(path)") } catch { throw LabError("\(error)") }
        guard !topology.monitors.isEmpty else { throw fail("no [[monitor]] here or in \(file.topology): nothing watches the VNets") }
        guard file.durationS >= 2, file.durationS <= 3600 else { throw fail("duration_s must be 2-3600") }
        guard file.startLeadS > 0 else { throw fail("start_lead_s must be positive") }
        guard file.intervalS >= 0.1, file.intervalS <= 60 else { throw fail("interval_s must be 0.1-60") }
        do { _ = try BitRate(parsing: file.cbr) } catch { throw fail("cbr: \(error)") }
        if case .uni(let n) = file.mode, n > topology.vnets.count { throw fail("mode \(file.mode): the topology has \(topology.vnets.count) VNets") }
        if case .fixed(let ratio) = file.mode, ratio.weights.count != topology.vnets.count {
            throw fail("mode \(file.mode): one weight per VNet (\(topology.vnets.count))")
        }
        let schedule = try file.schedule.map { try Schedule.load(ExperimentFile.resolve($0, relativeTo: path)) }
        return MonitorExperiment(file: file, topologyFile: topologyFile, topology: topology, schedule: schedule)
    }

    public var name: String { file.name }
    public var startLeadS: Double { file.startLeadS }
    public var streamS: Double { file.durationS }
    public func timeLimitS(runs: Int) -> Double { file.durationS + 60 }

    /// Where a run's monitoring records go.
    static func monitorFolder(_ out: String) -> String { "\(out)/monitor" }
    static func capturePath(_ out: String, _ end: String) -> String { "\(out)/captures/\(end.replacingOccurrences(of: ":", with: "-")).pcap" }

    public func runs(_ context: HarnessContext) throws -> [LabRun] {
        let out = context.out
        for folder in [Self.monitorFolder(out), "\(out)/captures"] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let receiver = "\(topology.receiverAddress):\(Self.port)"
        let limit = (timeLimitS(runs: 1) + file.startLeadS + 30).rounded()
        return [
            LabRun(name: file.name, folder: out, topology: topology, topologyFile: topologyFile, schedule: schedule) { [file, topology] lab, start in
                let plan = lab.plan
                let monitoring = plan.monitoring
                // Monis first: they are stopped in this order, and each sends its last summary
                // to the collector before the collector stops.
                var processes: [RunProcess] = try monitoring.monis.map { moni in
                    RunProcess(
                        name: moni.node, node: moni.node,
                        arguments: try lab.monitorWatchArguments(
                            moni, intervalS: file.intervalS, durationS: limit, json: "\(Self.monitorFolder(out))/\(moni.node).json"),
                        role: .listener, ending: .whenOthersEnd)
                }
                processes.append(
                    RunProcess(
                        name: "collector", node: MonitorPlan.collectorNode,
                        arguments: lab.collectorArguments(
                            records: "\(Self.monitorFolder(out))/records.jsonl", durationS: limit, json: "\(Self.monitorFolder(out))/collector.json"),
                        role: .listener, ending: .whenOthersEnd))
                // libpcap on every production port: what arrives there, media packets only.
                for router in plan.routers {
                    for port in plan.routerInterfaces(of: router) {
                        processes.append(
                            RunProcess(
                                name: "capture-\(router)-\(port)", node: router,
                                arguments: CaptureInvocation(
                                    interface: port, pcap: Self.capturePath(out, "\(router):\(port)"), filter: MirrorFilter.stream.bpf, seconds: Int(limit),
                                    snaplen: 128, buffered: true
                                ).arguments, role: .listener, ending: .whenOthersEnd))
                    }
                }
                processes.append(
                    RunProcess(
                        name: "receiver", node: topology.receiver,
                        arguments: ReceiveInvocation(
                            listen: receiver, intervalS: file.intervalS, idleTimeoutS: 10, packetLog: "\(out)/receiver-packets.csv", json: "\(out)/receiver.json"
                        ).arguments, role: .listener))
                processes.append(
                    RunProcess(
                        name: "sender", node: topology.sender,
                        arguments: ["send", "--cbr", file.cbr, "--duration", decimal(file.durationS, 3), "--to", receiver, "--start-at", String(start),
                            "--packet-log", "\(out)/sender-packets.csv", "--json-file", "\(out)/sender.json"]
                            + topology.vnets.flatMap { ["--vnet", $0.tun] } + file.mode.sendArguments, role: .stream))
                context.print(
                    "\(monitoring.monis.count) monitoring nodes (\(topology.monitors.map { "\($0.vnet): \($0.methodOrDefault.rawValue), \($0.directionOrDefault.rawValue)" }.joined(separator: "; "))), "
                        + "CBR \(file.cbr) \(file.mode) for \(decimal(file.durationS)) s")
                return processes
            }
        ]
    }

    public func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> MonitorResults {
        let run = finished[0]
        let out = context.out
        let plan = run.lab.plan
        let folder = Self.monitorFolder(out)
        let summaries = try MonitorCollector.read("\(folder)/records.jsonl")
        let sent = try CSVLog.read(SentPacket.self, from: "\(out)/sender-packets.csv")
        let received = try CSVLog.read(ReceivedPacket.self, from: "\(out)/receiver-packets.csv")
        let located = LocatedLoss.locate(plan: plan, summaries: summaries, sent: sent, received: received)
        let kernel = KernelDrops(plan: plan, from: run.kernel.first!, to: run.kernel.last!)
        let watched = Set(plan.monitoring.monis.map(\.vnet)).map { topology.vnets[$0].name }
        var links: [MonitorResults.LinkRow] = []
        for direction in kernel.links where watched.contains(direction.vnet) {
            let found = located.links.first { $0.from == direction.from && $0.to == direction.to }
            links.append(
                .init(
                    vnet: direction.vnet, path: direction.path, from: direction.from, to: direction.to, entered: direction.entered,
                    located: found?.lost ?? 0, kernelDropped: direction.dropped, lossDrops: direction.lossDrops, queueDrops: direction.queueDrops))
        }
        // The links in and out of each VNet, which the kernel counts at the router's end only.
        for link in located.links where !links.contains(where: { $0.from == link.from && $0.to == link.to }) {
            links.append(
                .init(
                    vnet: topology.vnets[link.path - 1].name, path: nil, from: link.from, to: link.to, entered: link.packets, located: link.lost,
                    kernelDropped: nil, lossDrops: nil, queueDrops: nil))
        }
        var monis: [MonitorResults.MoniRow] = []
        for moni in plan.monitoring.monis {
            let totals = try? JSONFile.read(MonitorNode.Totals.self, from: "\(folder)/\(moni.node).json")
            monis.append(
                .init(
                    node: moni.node, router: moni.router, method: moni.method.rawValue, copies: totals?.copies, droppedByKernel: totals?.droppedByKernel,
                    mirrorLinkDrops: run.lab.mirrorLinkDrops(router: moni.router), cpuS: totals?.cpuS, intervals: totals?.intervals))
        }
        var captures: [MonitorResults.CaptureRow] = []
        for router in plan.routers {
            for port in plan.routerInterfaces(of: router) {
                var media = 0
                var distinct = Set<UInt64>()
                try PcapFile.forEachIPv4Packet(Self.capturePath(out, "\(router):\(port)")) { _, ip in
                    guard let header = MirrorObserver.media(inIPv4: ip) else { return }
                    media += 1
                    distinct.insert(UInt64(header.pathID) << 32 | UInt64(header.pathSequence))
                }
                captures.append(.init(port: "\(router):\(port)", media: media, duplicates: media - distinct.count))
            }
        }
        return MonitorResults(
            experiment: file.name, description: file.description, provenance: context.provenance, cbr: file.cbr, mode: file.mode.name,
            monitors: topology.monitors.map { "\($0.vnet): \($0.methodOrDefault.rawValue) on \($0.directionOrDefault.rawValue), traffic \((try? $0.filter.description) ?? "?")" },
            links: links, paths: located.paths, monis: monis, captures: captures,
            collector: try? JSONFile.read(MonitorCollector.Totals.self, from: "\(folder)/collector.json"))
    }

    public static func report(_ results: MonitorResults, folder: String) -> MonitorReport { MonitorReport(results: results, folder: folder) }
}
