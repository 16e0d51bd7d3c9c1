import Capture
import Foundation
import Lab
import Monitoring
import Packets
import RunRecords
import Units
import Voice

/// The troubleshooting paper's VoIP experiment (section 4.2, Table 1, Figs. 7 and 8), `kind =
/// "shadow-voip"`: a G.711 call and heavy-tailed background traffic enter a production VNet
/// and, once it is active, its shadow; phases change the load, make the shadow active, give it
/// strict priority for the call's DSCP, switch production to it, and retire the old VNet. A
/// monitoring node at each VNet's exit keeps the call's copies; the report scores the call at
/// the receiver, in the production VNet and in the shadow (E-model, per phase and per 10 s bin).
public struct ShadowVoiceExperimentFile: Decodable, Sendable {
    public var name: String
    public var description: String?
    public var topology: String
    /// The production VNet and its shadow (default: the topology's first pair).
    public var production: String?
    public var shadow: String?
    /// Seconds per phase before `time_scale` (the paper's 5 minutes).
    public var phaseS: Double
    public var timeScale: Double
    /// The bins of Fig. 7, seconds (not scaled).
    public var binS: Double
    public var playoutMs: Double
    /// The call's DSCP, which the shadow's priority serves first.
    public var tt: String
    public var startLeadS: Double
    public var load: BackgroundLoad
    /// Table 1 unless given.
    public var phases: [Phase]?

    /// One row of Table 1, by VNet name.
    public struct Phase: Decodable, Sendable, Equatable {
        public var production: String
        public var active: [String]
        public var priority: [String]
        /// "L", "H", or a ramp "L-H" / "H-L" (in thirds).
        public var load: String

        enum CodingKeys: String, CodingKey, CaseIterable { case production, active, priority, load }

        public init(production: String, active: [String], priority: [String], load: String) {
            self.production = production
            self.active = active
            self.priority = priority
            self.load = load
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            production = try c.decode(String.self, forKey: .production)
            active = try c.decodeIfPresent([String].self, forKey: .active) ?? [production]
            priority = try c.decodeIfPresent([String].self, forKey: .priority) ?? []
            load = try c.decodeIfPresent(String.self, forKey: .load) ?? "L"
        }

        /// The shares of the capacity over the phase's thirds.
        func thirds(_ load: BackgroundLoad) throws -> [Double] {
            switch self.load.uppercased() {
            case "L": return [load.low, load.low, load.low]
            case "H": return [load.high, load.high, load.high]
            case "L-H": return [load.low, (load.low + load.high) / 2, load.high]
            case "H-L": return [load.high, (load.low + load.high) / 2, load.low]
            default: throw LabError("phase load is L, H, L-H or H-L, not '\(self.load)'")
            }
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, topology, production, shadow, load, tt
        case phaseS = "phase_s"
        case timeScale = "time_scale"
        case binS = "bin_s"
        case playoutMs = "playout_ms"
        case startLeadS = "start_lead_s"
        case phases = "phase"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        production = try c.decodeIfPresent(String.self, forKey: .production)
        shadow = try c.decodeIfPresent(String.self, forKey: .shadow)
        phaseS = try c.number(.phaseS) ?? 300
        timeScale = try c.number(.timeScale) ?? 1
        binS = try c.number(.binS) ?? 10
        playoutMs = try c.number(.playoutMs) ?? 60
        tt = try c.decodeIfPresent(String.self, forKey: .tt) ?? "EF"
        startLeadS = try c.number(.startLeadS) ?? 3
        load = try c.decodeIfPresent(BackgroundLoad.self, forKey: .load) ?? .defaults
        phases = try c.decodeIfPresent([Phase].self, forKey: .phases)
    }

    /// Table 1: production A A A A B B; active A, A, A+B, A+B, A+B, B; QoS on B from phase 4;
    /// load L, L to H, then H.
    static func table1(production a: String, shadow b: String) -> [Phase] {
        [
            Phase(production: a, active: [a], priority: [], load: "L"), Phase(production: a, active: [a], priority: [], load: "L-H"),
            Phase(production: a, active: [a, b], priority: [], load: "H"), Phase(production: a, active: [a, b], priority: [b], load: "H"),
            Phase(production: b, active: [a, b], priority: [b], load: "H"), Phase(production: b, active: [b], priority: [b], load: "H"),
        ]
    }
}

extension ShadowVoiceExperimentFile: KnownKeys {
    public static var keySchema: KeySchema {
        KeySchema(CodingKeys.self, sections: ["load": KeySchema(BackgroundLoad.CodingKeys.self), "phase": KeySchema(Phase.CodingKeys.self)], also: ["kind"])
    }
}

public struct ShadowVoiceExperiment: ExperimentKind {
    public static let kind = "shadow-voip"
    public var file: ShadowVoiceExperimentFile
    let topologyFile: String
    let topology: Topology
    let production: String
    let shadow: String
    let phases: [ShadowVoiceExperimentFile.Phase]
    let mark: TrafficMark
    /// The phase boundaries' events (activate, priority, promote, retire), on the run's clock.
    let schedule: Schedule
    static let voicePort = 5010
    static let backgroundPort = 10001
    /// ITGRecv's signalling port for the first background segment (D-ITG's default), then one up each.
    static let signallingPort = 9000

    public static func load(_ path: String) throws -> ShadowVoiceExperiment {
        let file = try loadTOML(ShadowVoiceExperimentFile.self, from: path, kind: "shadow-voip experiment")
        func fail(_ message: String) -> LabError { LabError("\(path): \(message)") }
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        var topology = try Topology.load(topologyFile)
        let vnets = topology.vnets.map(\.name)
        guard let pair = topology.shadowPairs.first(where: { file.production == nil || vnets[$0.production] == file.production }) else {
            throw fail("\(file.topology) has no [[shadow]]\(file.production.map { " of \($0)" } ?? ""): the experiment needs a VNet and its shadow")
        }
        let production = vnets[pair.production]
        let shadow = file.shadow ?? vnets[pair.shadow]
        guard shadow == vnets[pair.shadow] else { throw fail("shadow: \(production)'s shadow is \(vnets[pair.shadow]), not \(shadow)") }
        guard file.phaseS >= 5, file.phaseS <= 3600, file.timeScale > 0, file.phaseS * file.timeScale >= 6 else {
            throw fail("phase_s must be 5-3600 and phase_s x time_scale at least 6 s")
        }
        guard file.binS >= 1, (0...1000).contains(file.playoutMs), file.startLeadS > 0 else { throw fail("bin_s must be at least 1, playout_ms 0-1000, start_lead_s positive") }
        let mark: TrafficMark
        do { mark = try TrafficMark(parsing: file.tt) } catch { throw fail("tt: \(error)") }
        do { try file.load.validate() } catch { throw fail("\(error)") }
        let phases = file.phases ?? ShadowVoiceExperimentFile.table1(production: production, shadow: shadow)
        let schedule: Schedule
        do { schedule = try Self.boundaries(phases, production: production, shadow: shadow, phaseS: file.phaseS * file.timeScale, load: file.load, mark: mark) } catch {
            throw fail("\(error)")
        }
        if topology.access != nil, schedule.events.contains(where: { $0.change == .retire && $0.target.description == production }) {
            throw fail("\(file.topology) has [access], and retiring the production VNet behind it is not supported yet: keep \(production) active")
        }
        // A monitoring node at each VNet's exit keeps the call's copies.
        for vnet in [production, shadow] {
            guard !topology.monitors.contains(where: { $0.vnet == vnet }) else {
                throw fail("\(file.topology) monitors \(vnet) itself; the experiment puts its own monitoring node at each VNet's exit: remove that [[monitor]]")
            }
            let egress = topology.vnets.first { $0.name == vnet }!.egress
            topology.monitors.append(Topology.Monitor(vnet: vnet, routers: [egress], direction: .out, traffic: "port:\(voicePort)", method: .nft))
        }
        do { try topology.validate(file: "\(file.topology) with the exit monitors of \(path)") } catch { throw LabError("\(error)") }
        return ShadowVoiceExperiment(
            file: file, topologyFile: topologyFile, topology: topology, production: production, shadow: shadow, phases: phases, mark: mark, schedule: schedule)
    }

    /// The events at each phase boundary that take the lab from one row of the table to the
    /// next: copying into the shadow started, priority set or ended, production switched, a
    /// VNet that leaves the active set retired. Refuses what a lab cannot do.
    static func boundaries(
        _ phases: [ShadowVoiceExperimentFile.Phase], production: String, shadow: String, phaseS: Double, load: BackgroundLoad, mark: TrafficMark
    ) throws -> Schedule {
        guard !phases.isEmpty, phases.count <= 20 else { throw LabError("1-20 phases") }
        let pair = Set([production, shadow])
        var events: [Schedule.Event] = []
        var retired: Set<String> = []
        for (index, phase) in phases.enumerated() {
            let number = index + 1
            _ = try phase.thirds(load)
            for name in [phase.production] + phase.active + phase.priority where !pair.contains(name) {
                throw LabError("phase \(number): '\(name)' is neither \(production) nor \(shadow)")
            }
            guard phase.active.contains(phase.production) else { throw LabError("phase \(number): production \(phase.production) must be active") }
            if let back = phase.active.first(where: retired.contains) { throw LabError("phase \(number): \(back) was retired before; it cannot be active again") }
            let before = index == 0 ? ShadowVoiceExperimentFile.Phase(production: production, active: [production], priority: [], load: "L") : phases[index - 1]
            if index == 0 && phase.production != production { throw LabError("phase 1: production starts as \(production)") }
            let at = Double(index) * phaseS
            if index > 0 && phase.active.contains(shadow) && !before.active.contains(shadow) {
                events.append(.init(atS: at, target: .vnet(shadow), change: .copying(true)))
            }
            for vnet in [production, shadow] where phase.priority.contains(vnet) != before.priority.contains(vnet) || (index == 0 && phase.priority.contains(vnet)) {
                events.append(.init(atS: at, target: .vnet(vnet), change: .priority(phase.priority.contains(vnet) ? mark : nil)))
            }
            if phase.production != before.production { events.append(.init(atS: at, target: .vnet(phase.production), change: .promote)) }
            for vnet in before.active where !phase.active.contains(vnet) {
                guard vnet != phase.production else { throw LabError("phase \(number): \(vnet) is production and cannot leave") }
                events.append(.init(atS: at, target: .vnet(vnet), change: .retire))
                retired.insert(vnet)
            }
        }
        return Schedule(name: "shadow-voip phases", description: "the boundaries of the experiment's phases", events: events)
    }

    /// One ITGSend of the background: a third of a phase, at its share of the capacity.
    struct BackgroundSegment: Equatable {
        var phase: Int
        var third: Int
        var share: Double
        var startS: Double
        var lengthS: Double
    }

    /// The background's segments in order. Each ends a little early so that its session closes
    /// before the next boundary's switches; well before a retirement, which takes away the way
    /// back of a session that began in the retired VNet (ITGSend starts its flows one by one,
    /// and waits for each to close).
    func backgroundSegments() throws -> [BackgroundSegment] {
        var segments: [BackgroundSegment] = []
        for (index, phase) in phases.enumerated() {
            for (third, share) in try phase.thirds(file.load).enumerated() {
                let end = Double(index) * phaseS + Double(third + 1) * phaseS / 3
                let retiring = third == 2 && schedule.events.contains { $0.change == .retire && abs($0.atS - end) < 0.001 }
                let length = phaseS / 3 - (retiring ? min(3, phaseS / 9) : min(0.5, phaseS / 30))
                segments.append(BackgroundSegment(phase: index, third: third, share: share, startS: Double(index) * phaseS + Double(third) * phaseS / 3, lengthS: length))
            }
        }
        return segments
    }

    public var name: String { file.name }
    public var startLeadS: Double { file.startLeadS }
    var phaseS: Double { file.phaseS * file.timeScale }
    public var streamS: Double { phaseS * Double(phases.count) }
    public func timeLimitS(runs: Int) -> Double { streamS + 90 }

    static func monitorFolder(_ out: String) -> String { "\(out)/monitor" }
    static func pcapBase(_ out: String, _ node: String) -> String { "\(monitorFolder(out))/\(node)" }

    public func runs(_ context: HarnessContext) throws -> [LabRun] {
        let out = context.out
        for folder in [Self.monitorFolder(out), "\(out)/background"] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let receiver = topology.receiverAddress.description
        let limit = (timeLimitS(runs: 1) + file.startLeadS + 30).rounded()
        // The background: one ITGSend per third of a phase, each a fresh signalling session (a
        // session that outlives a retired VNet would lose its way back).
        var segments: [(startS: Double, script: String)] = []
        for (index, segment) in try backgroundSegments().enumerated() {
            let path = "\(out)/background/phase\(segment.phase + 1)-\(segment.third + 1).itg"
            // Ports and an ITGRecv of its own: an ITGRecv whose session ends in an error stops
            // serving every other session, and it still closes one segment's ports as the next opens.
            let ports = Self.backgroundPort + index * file.load.flows
            try file.load.writeScript(to: path, share: segment.share, durationS: segment.lengthS, receiver: receiver, firstPort: ports, signalling: Self.signallingPort + index)
            segments.append((segment.startS, path))
        }
        return [
            LabRun(name: file.name, folder: out, topology: topology, topologyFile: topologyFile, schedule: schedule) { [file, topology, production, shadow, streamS, mark] lab, start in
                let plan = lab.plan
                // The shadow starts idle when the first phase does not have it active.
                if !(self.phases.first?.active.contains(shadow) ?? false) { try lab.setCopying(shadow: shadow, on: false) }
                var processes: [RunProcess] = try plan.monitoring.monis.map { moni in
                    RunProcess(
                        name: moni.node, node: moni.node,
                        arguments: try lab.monitorWatchArguments(moni, intervalS: 1, durationS: limit, json: "\(Self.monitorFolder(out))/\(moni.node).json")
                            + ["--pcap", Self.pcapBase(out, moni.node), "--pcap-mb", "1024", "--pcap-files", "2", "--monotonic"],
                        role: .listener, ending: .whenOthersEnd)
                }
                processes.append(
                    RunProcess(
                        name: "collector", node: MonitorPlan.collectorNode,
                        arguments: lab.collectorArguments(records: "\(Self.monitorFolder(out))/records.jsonl", durationS: limit), role: .listener,
                        ending: .whenOthersEnd))
                // Interface counters every second: what leaves each VNet toward the receiver, and
                // what is offered into the production VNet (its background is the same in every
                // third of a share only if each ITGSend kept its departures).
                func counters(_ name: String, node: String, interface: String) -> RunProcess {
                    RunProcess(
                        name: name, node: node,
                        arguments: ["monitor", "counters", "--interface", interface, "--csv", "\(out)/\(name).csv", "--interval", "1s", "--seconds", String(Int(limit))],
                        role: .listener, ending: .whenOthersEnd)
                }
                let index = { (vnet: String) in topology.vnets.firstIndex { $0.name == vnet }! }
                for vnet in [production, shadow] { processes.append(counters("exit-\(vnet)", node: topology.receiver, interface: plan.exitInterface(vnet: index(vnet)))) }
                processes.append(counters("entry-\(production)", node: topology.sender, interface: plan.entryInterface(vnet: index(production))))
                for index in segments.indices {
                    processes.append(
                        RunProcess(
                            name: "itgrecv-\(index + 1)", node: topology.receiver, arguments: ["-Sp", String(Self.signallingPort + index)], role: .listener,
                            ending: .whenOthersEnd, program: "ITGRecv"))
                }
                processes.append(
                    RunProcess(
                        name: "voice-recv", node: topology.receiver,
                        arguments: ["voice", "recv", "--listen", "\(receiver):\(Self.voicePort)", "--bin", "\(decimal(file.binS))s", "--playout", "\(decimal(file.playoutMs))ms",
                            "--idle-timeout", "3s", "--duration", "\(Int(limit))s", "--packet-log", "\(out)/receiver-voice.csv", "--json-file", "\(out)/receiver-voice.json"],
                        role: .listener))
                processes.append(
                    RunProcess(
                        name: "voice-send", node: topology.sender,
                        arguments: ["voice", "send", "--to", "\(receiver):\(Self.voicePort)", "--duration", "\(decimal(streamS, 3))s", "--tt", String(mark.tos),
                            "--start-at", String(start), "--json-file", "\(out)/voice-send.json"], role: .stream))
                // Waited for, not required to succeed: what each segment did is read from its log
                // (ITGSend 2.8.1's own bursty mode aborted now and then), and the load is measured
                // at the entry and the exits anyway. At real-time priority (it sleeps between
                // packets): on a busy host it started its flows late and sent behind its times,
                // and the same third of the same departures made 47 or 83 of 500 packets late.
                for (index, segment) in segments.enumerated() {
                    processes.append(
                        RunProcess(
                            name: "itgsend-\(index + 1)", node: topology.sender, arguments: ["-f", "10", try Command.locate("ITGSend"), segment.script], role: .listener,
                            program: "chrt", startAtS: segment.startS))
                }
                context.print(
                    "\(self.phases.count) phases of \(decimal(self.phaseS)) s: G.711 call (\(mark)) and \(file.load.flows) D-ITG on/off flows, L \(decimal(file.load.low * 100, 0)) % / "
                        + "H \(decimal(file.load.high * 100, 0)) % of \(file.load.capacity); \(production) and its shadow \(shadow)")
                return processes
            }
        ]
    }

    public func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> ShadowVoiceResults {
        let run = finished[0]
        let out = context.out
        let plan = run.lab.plan
        // The monitoring nodes' pcaps are on CLOCK_MONOTONIC (--monotonic), as the call's stamps
        // are: this machine steps its wall clock, which once made every delay there negative.
        var observers: [(name: String, packets: [VoicePacket])] = [("receiver", try CSVLog.read(VoicePacket.self, from: "\(out)/receiver-voice.csv"))]
        for vnet in [production, shadow] {
            let egress = topology.vnets.first { $0.name == vnet }!.egress
            guard let moni = plan.monitoring.monis.first(where: { topology.vnets[$0.vnet].name == vnet && $0.router == egress }) else { continue }
            var packets: [VoicePacket] = []
            for index in 0..<2 {
                let path = "\(Self.pcapBase(out, moni.node)).\(index).pcap"
                guard FileManager.default.fileExists(atPath: path) else { continue }
                try PcapFile.forEachIPv4Packet(path) { time, ip in
                    let headerBytes = Int(ip[0] & 0x0f) * 4
                    guard ip.count > headerBytes + 8, ip[9] == 17 else { return }
                    let udp = Array(ip[(headerBytes + 8)...])
                    if let packet = VoicePacket(datagram: udp, arrivalNanoseconds: UInt64(max(0, time * 1e9))) { packets.append(packet) }
                }
            }
            observers.append((vnet, packets.sorted { $0.arrivalNanoseconds < $1.arrivalNanoseconds }))
        }
        let switches = run.applied.filter { $0.event.hasSuffix(" promote") }.map(\.appliedS)
        var exits: [String: [CounterSample]] = [:]
        for vnet in [production, shadow] { exits[vnet] = (try? CSVLog.read(CounterSample.self, from: "\(out)/exit-\(vnet).csv")) ?? [] }
        let entry = (try? CSVLog.read(CounterSample.self, from: "\(out)/entry-\(production).csv")) ?? []
        // Each background segment's flows that finished sending, and whether ITGSend aborted.
        var background: [ShadowVoiceResults.SegmentRow] = []
        for index in 0..<(phases.count * 3) {
            let log = ((try? String(contentsOfFile: "\(out)/itgsend-\(index + 1).out", encoding: .utf8)) ?? "")
                + ((try? String(contentsOfFile: "\(out)/itgsend-\(index + 1).err", encoding: .utf8)) ?? "")
            let finished = log.components(separatedBy: "Finished sending packets of flow").count - 1
            let trouble = log.split(separator: "\n").first { $0.contains("ERROR") || $0.contains("terminate") || $0.contains("rror") }
            background.append(.init(segment: index + 1, flowsFinished: finished, trouble: trouble.map { String($0.trimmingCharacters(in: .whitespaces)) }))
        }
        var results = ShadowVoiceResults.build(
            experiment: self, provenance: context.provenance, start: run.start, observers: observers, applied: run.applied, switchesS: switches,
            exits: exits, entry: entry, exitDrops: try? run.lab.exitDrops())
        results.background = background
        return results
    }

    public static func report(_ results: ShadowVoiceResults, folder: String) -> ShadowVoiceReport { ShadowVoiceReport(results: results, folder: folder) }
}
