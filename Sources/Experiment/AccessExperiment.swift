import Capture
import Foundation
import Lab
import RunRecords
import Units

/// An access-isolation experiment (`kind = "access"`, e.g. `Experiments/access-isolation.toml`):
/// the access paper's Fig. 3a. Greedy iperf3 TCP flows from the sender's own sockets, each
/// either in a class of the topology (its DSCP puts it into a VNet with a reservation) or
/// legacy, start and stop on the run's clock; the applications set no rate, only the access
/// link's HTB limits them. Captures at the receiver measure each flow's rate on the wire in
/// 1 s bins. A schedule may change reservations live (`reserve` events).
public struct AccessExperimentFile: Decodable, Sendable {
    public var name: String
    public var description: String?
    /// Relative to the experiment file; it must have `[access]`.
    public var topology: String
    /// Relative to the experiment file: `reserve` (or other) events on the run's clock.
    public var schedule: String?
    public var startLeadS: Double
    public var flows: [Flow]

    public struct Flow: Decodable, Sendable {
        public var name: String
        /// A `[[class]]` of the topology; nil: legacy traffic.
        public var `class`: String?
        /// The node it is sent from: the sender (default) or one of `[access]`'s `legacy_hosts`.
        public var from: String?
        /// Send UDP at this rate (`iperf3 -u -b`) instead of greedy TCP.
        public var udp: String?
        public var startS: Double
        public var durationS: Double
        /// What the paper's Fig. 3a shows for it (nil: legacy, "the balance").
        public var paperMbitS: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, `class`, from, udp
            case startS = "start_s"
            case durationS = "duration_s"
            case paperMbitS = "paper_mbit_s"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            `class` = try c.decodeIfPresent(String.self, forKey: .class)
            from = try c.decodeIfPresent(String.self, forKey: .from)
            udp = try c.decodeIfPresent(String.self, forKey: .udp)
            startS = try c.number(.startS) ?? 0
            durationS = try c.number(.durationS) ?? 30
            paperMbitS = try c.number(.paperMbitS)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, topology, schedule
        case startLeadS = "start_lead_s"
        case flows = "flow"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        schedule = try c.decodeIfPresent(String.self, forKey: .schedule)
        startLeadS = try c.number(.startLeadS) ?? 3
        flows = try c.decode([Flow].self, forKey: .flows)
    }
}

extension AccessExperimentFile: KnownKeys {
    public static var keySchema: KeySchema { KeySchema(CodingKeys.self, sections: ["flow": KeySchema(Flow.CodingKeys.self)], also: ["kind"]) }
}

public struct AccessExperiment: ExperimentKind {
    public static let kind = "access"
    public var file: AccessExperimentFile
    let topologyFile: String
    let topology: Topology
    let schedule: Schedule?
    /// Flow i's iperf3 port.
    static func port(_ index: Int) -> Int { 5201 + index }

    public static func load(_ path: String) throws -> AccessExperiment {
        let file = try loadTOML(AccessExperimentFile.self, from: path, kind: "access experiment")
        func fail(_ message: String) -> LabError { LabError("\(path): \(message)") }
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        let topology = try Topology.load(topologyFile)
        guard topology.access != nil else { throw fail("\(file.topology) has no [access] section: nothing to isolate on") }
        guard !file.flows.isEmpty, file.flows.count <= 20 else { throw fail("name 1 to 20 [[flow]]s") }
        guard file.startLeadS > 0 else { throw fail("start_lead_s must be positive") }
        guard Set(file.flows.map(\.name)).count == file.flows.count else { throw fail("flow names must be unique") }
        for flow in file.flows {
            guard flow.startS >= 0, flow.durationS >= 2, flow.durationS <= 3600 else {
                throw fail("flow \(flow.name): start_s must be 0 or more and duration_s 2-3600")
            }
            if let name = flow.class, !topology.classes.contains(where: { $0.name == name }) {
                throw fail("flow \(flow.name): class '\(name)' is not in \(file.topology) (it has: \(topology.classes.map(\.name).joined(separator: ", ")))")
            }
            let hosts = topology.access?.legacyHosts ?? []
            if let from = flow.from, from != topology.sender, !hosts.contains(from) {
                throw fail("flow \(flow.name): from '\(from)' is neither the sender (\(topology.sender)) nor a legacy host (\(hosts.joined(separator: ", ")))")
            }
            if let from = flow.from, from != topology.sender, flow.class != nil {
                throw fail("flow \(flow.name): a legacy host has no VNet: only the sender's flows have a class")
            }
            if let udp = flow.udp {
                do { _ = try BitRate(parsing: udp) } catch { throw fail("flow \(flow.name): udp: \(error)") }
            }
        }
        let schedule = try file.schedule.map { try Schedule.load(ExperimentFile.resolve($0, relativeTo: path)) }
        if let schedule, let name = file.schedule {
            // Each event in turn, as the lab will apply them: an over-subscription fails here, not mid-run.
            let plan = try LabPlan(topology: topology, runID: "check", shaper: .tbf)
            var state = (conditions: [String: LinkConditions](), blackholes: [String: String](), reservations: topology.reservations)
            for (index, event) in schedule.events.enumerated() {
                do {
                    let change = try plan.change([event], conditions: state.conditions, blackholes: state.blackholes, reservations: state.reservations)
                    state = (change.conditions, change.blackholes, change.reservations)
                } catch { throw fail("\(name): event \(index + 1) (\(event.summary)): \(error)") }
            }
        }
        return AccessExperiment(file: file, topologyFile: topologyFile, topology: topology, schedule: schedule)
    }

    public var name: String { file.name }
    public var startLeadS: Double { file.startLeadS }
    public var streamS: Double { file.flows.map { $0.startS + $0.durationS }.max() ?? 0 }
    public func timeLimitS(runs: Int) -> Double { streamS + 60 }

    /// The receiver's interfaces a flow can arrive on: one per VNet and the legacy link, or
    /// the one from the bottleneck switch.
    var captureInterfaces: [String] {
        let plan = try? LabPlan(topology: topology, runID: "x", shaper: .tbf)
        return (plan.map { $0.links + $0.extraLinks } ?? []).compactMap { $0.b.node == topology.receiver ? $0.b.interface : nil }
    }

    public func runs(_ context: HarnessContext) throws -> [LabRun] {
        let out = context.out
        try FileManager.default.createDirectory(atPath: "\(out)/captures", withIntermediateDirectories: true)
        let receiver = topology.receiverAddress
        return [
            LabRun(name: file.name, folder: out, topology: topology, topologyFile: topologyFile, schedule: schedule) { [file, topology] _, _ in
                var processes = captureInterfaces.map { interface in
                    RunProcess(
                        name: "capture-\(interface)", node: topology.receiver,
                        arguments: CaptureInvocation(
                            interface: interface, pcap: "\(out)/captures/\(interface).pcap", filter: "(tcp or udp) and dst host \(receiver)",
                            seconds: Int(streamS + file.startLeadS + 60), snaplen: 64, buffered: true, monotonic: true
                        ).arguments, role: .listener, ending: .whenOthersEnd)
                }
                for (index, flow) in file.flows.enumerated() {
                    let port = String(Self.port(index))
                    processes.append(
                        RunProcess(
                            name: "iperf3-server-\(flow.name)", node: topology.receiver, arguments: ["-s", "-1", "-B", receiver, "-p", port, "-J"],
                            role: .listener, program: "iperf3"))
                    var client = ["-c", receiver, "-p", port, "-t", decimal(flow.durationS), "-J"]
                    if let udp = flow.udp { client += ["-u", "-b", String(Int(try BitRate(parsing: udp).bitsPerSecond))] }
                    if let name = flow.class, let mark = try topology.classes.first(where: { $0.name == name })?.mark {
                        client += ["-S", String(mark.tos)]
                    }
                    processes.append(
                        RunProcess(
                            name: "iperf3-\(flow.name)", node: flow.from ?? topology.sender, arguments: client, role: .stream, program: "iperf3",
                            startAtS: flow.startS))
                }
                context.print(
                    "\(file.flows.count) iperf3 flows: "
                        + file.flows.map { "\($0.name) \($0.udp.map { "UDP \($0)" } ?? "TCP") \(decimal($0.startS))-\(decimal($0.startS + $0.durationS)) s" }
                        .joined(separator: ", "))
                return processes
            }
        ]
    }

    public func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> AccessResults {
        let run = finished[0]
        let out = context.out
        // The captures' timestamps are on CLOCK_MONOTONIC, as is the run's time zero (this
        // machine's wall clock is stepped many times a second: 0.5 % fast, and once by about 1 s).
        let zero = Double(run.start) / 1e9
        var packets: [(t: Double, port: Int, bytes: Int)] = []
        for interface in captureInterfaces {
            for packet in try PcapFile.ipv4Packets("\(out)/captures/\(interface).pcap") where packet.ipProtocol == 6 || packet.ipProtocol == 17 {
                // On the wire: the IPv4 packet and its 14 B Ethernet header, as HTB counts it.
                packets.append((packet.time - zero, Int(packet.destinationPort), packet.length + 14))
            }
        }
        let link = try topology.access!.linkRate
        let timeline = AccessResults.ReservationTimeline(topology: topology, applied: run.applied, schedule: schedule)
        var flows: [AccessResults.FlowFigures] = []
        for (index, flow) in file.flows.enumerated() {
            let vnet = flow.class.flatMap { name in topology.classes.first { $0.name == name }?.vnet }
            let iperf = AccessResults.IperfSummary.read("\(out)/iperf3-server-\(flow.name).out")
            flows.append(
                AccessResults.FlowFigures.measure(
                    name: flow.name, vnet: vnet, port: Self.port(index), plannedStartS: flow.startS, plannedEndS: flow.startS + flow.durationS,
                    packets: packets, binS: 1, paperMbitS: flow.paperMbitS, iperf: iperf))
        }
        // Legacy flows share what the reservations leave: with more than one, their sum is
        // what is checked.
        let legacy = flows.filter { $0.vnet == nil }
        if legacy.count > 1 { flows.append(AccessResults.FlowFigures.aggregate(legacy, name: "all legacy")) }
        AccessResults.FlowFigures.expect(&flows, link: link, timeline: timeline)
        var classes: [String: [String: AccessClass]] = [:]
        for end in run.lab.plan.accessEnds {
            classes["\(end.rawValue) \(run.lab.plan.node(end)):\(run.lab.plan.interface(end))"] = try run.lab.accessClasses(at: end)
        }
        return AccessResults(
            experiment: file.name, description: file.description, provenance: context.provenance, linkRate: link,
            assignable: try topology.access!.assignableRate, reservations: topology.reservations, flows: flows,
            reservationChanges: run.applied.filter { $0.event.contains(" reserve ") }.map {
                .init(event: $0.event, atS: $0.atS, lateMs: $0.lateMs, stalledMs: $0.stalledMs)
            },
            classes: classes, classNames: Dictionary(uniqueKeysWithValues: topology.vnets.enumerated().map { (AccessShaping.classID(vnet: $0.offset), $0.element.name) }))
    }

    public static func report(_ results: AccessResults, folder: String) -> AccessReport { AccessReport(results: results, folder: folder) }
}
