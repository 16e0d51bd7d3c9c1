import Capture
import Foundation
import Lab
import Pacing
import Packets
import Units

/// An experiment of traffic classes (`kind = "classes"`, e.g. `Experiments/paper-qos-classes.toml`):
/// one stream per class of the topology, marked with the class's TT field and sent from plain
/// sockets at the edge, which classifies them into their VNets; per class, loss and one-way delay.
public struct ClassExperimentFile: Decodable, Sendable {
    public var name: String
    public var description: String?
    /// Relative to the experiment file; it must declare `[[class]]`es.
    public var topology: String
    /// Packets per class, their rate (per class), their IPv4 size, and their spacing.
    public var packets: Int
    public var packetsPerSecond: Double
    public var packetBytes: Int
    public var arrivals: String
    public var seed: Int
    public var startLeadS: Double
    public var classes: [Class]

    /// A class of the topology, with the paper's figures for it (Table I) if any.
    public struct Class: Decodable, Sendable {
        public var name: String
        public var paperLossPct: Double?
        public var paperDelayMs: Double?
        /// What this class is for: it must see less `loss` or less `delay` than the others.
        public var sensitive: String

        enum CodingKeys: String, CodingKey {
            case name, sensitive
            case paperLossPct = "paper_loss_pct"
            case paperDelayMs = "paper_delay_ms"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            sensitive = try c.decode(String.self, forKey: .sensitive)
            paperLossPct = try c.number(.paperLossPct)
            paperDelayMs = try c.number(.paperDelayMs)
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, description, topology, packets, arrivals, seed
        case packetsPerSecond = "packets_per_second"
        case packetBytes = "packet_bytes"
        case startLeadS = "start_lead_s"
        case classes = "class"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        packets = Int(try c.number(.packets) ?? 10_000)
        packetsPerSecond = try c.number(.packetsPerSecond) ?? 450
        packetBytes = Int(try c.number(.packetBytes) ?? 256)
        arrivals = try c.decodeIfPresent(String.self, forKey: .arrivals) ?? "constant"
        seed = Int(try c.number(.seed) ?? 1)
        startLeadS = try c.number(.startLeadS) ?? 3
        classes = try c.decode([Class].self, forKey: .classes)
    }

    public static func load(_ path: String) throws -> ClassExperimentFile {
        let file = try loadTOML(ClassExperimentFile.self, from: path, kind: "class experiment")
        func fail(_ message: String) -> LabError { LabError("\(path): \(message)") }
        guard file.packets > 0, file.packetsPerSecond > 0, file.startLeadS > 0 else {
            throw fail("packets, packets_per_second and start_lead_s must be positive")
        }
        guard (64...1500).contains(file.packetBytes) else { throw fail("packet_bytes must be 64-1500") }
        guard ["constant", "poisson"].contains(file.arrivals) else { throw fail("arrivals is constant or poisson, not '\(file.arrivals)'") }
        guard !file.classes.isEmpty else { throw fail("name at least one [[class]] of the topology") }
        for cls in file.classes where !["loss", "delay"].contains(cls.sensitive) {
            throw fail("class '\(cls.name)': sensitive is loss or delay, not '\(cls.sensitive)'")
        }
        return file
    }
}

/// Which kind of experiment a file holds: `kind = "classes"`, or the multi-net kind (no key).
public enum ExperimentKind {
    struct Probe: Decodable { var kind: String? }

    public static func of(_ path: String) throws -> String {
        try loadTOML(Probe.self, from: path, kind: "experiment").kind ?? "multinet"
    }
}

/// `results.json` of a class experiment: units in key names.
public struct ClassResults: Codable, Sendable {
    public var kind = "classes"
    public var experiment: String
    public var description: String?
    public var file: String
    public var startedUTC: String
    public var machine: String
    public var gitCommit: String?
    public var shaper: String
    public var shaperReason: String
    /// Whether the queues were RED (the kernel has sch_red) or tail drop standing in for it.
    public var red: Bool
    public var packetsPerClass: Int
    public var packetsPerSecond: Double
    public var packetBytes: Int
    public var arrivals: String
    public var classes: [ClassFigures]
    /// How often the sender fell over 50 ms behind and moved its schedule later (a slow or
    /// loaded machine, or emulation), and by how much in all: the stream stayed at its rate.
    public var senderScheduleShifts: Int?
    public var senderScheduleShiftS: Double?
    /// Per VNet, what the captures inside it saw, by TOS byte.
    public var captures: [VNetCapture]
    public var definitions: [String: String]

    public struct ClassFigures: Codable, Sendable, Equatable {
        public var name: String
        public var tt: String
        public var tos: Int
        public var sensitive: String
        public var vnet: String
        public var queue: String
        public var sent: Int
        public var received: Int
        public var lossPct: Double
        public var delayMsMean: Double?
        public var delayMsP50: Double?
        public var delayMsP99: Double?
        public var delayMsMax: Double?
        public var paperLossPct: Double?
        public var paperDelayMs: Double?

        enum CodingKeys: String, CodingKey {
            case name, tt, tos, sensitive, vnet, queue, sent, received
            case lossPct = "loss_pct"
            case delayMsMean = "delay_ms_mean"
            case delayMsP50 = "delay_ms_p50"
            case delayMsP99 = "delay_ms_p99"
            case delayMsMax = "delay_ms_max"
            case paperLossPct = "paper_loss_pct"
            case paperDelayMs = "paper_delay_ms"
        }
    }

    public struct VNetCapture: Codable, Sendable, Equatable {
        public var vnet: String
        /// node:interface, inbound.
        public var point: String
        public var file: String
        /// Packets of the experiment's port seen, by TOS byte (as a decimal string).
        public var packetsByTOS: [String: Int]

        enum CodingKeys: String, CodingKey {
            case vnet, point, file
            case packetsByTOS = "packets_by_tos"
        }
    }

    enum CodingKeys: String, CodingKey {
        case kind, experiment, description, file, machine, shaper, red, arrivals, classes, captures, definitions
        case startedUTC = "started_utc"
        case gitCommit = "git_commit"
        case shaperReason = "shaper_reason"
        case packetsPerClass = "packets_per_class"
        case packetsPerSecond = "packets_per_second"
        case packetBytes = "packet_bytes"
        case senderScheduleShifts = "sender_schedule_shifts"
        case senderScheduleShiftS = "sender_schedule_shift_s"
    }

    public static let definitionTexts = [
        "loss_pct": "packets of the class sent that never arrived, over those sent",
        "delay_ms": "one-way delay of the packets that arrived: the receiver's CLOCK_MONOTONIC after recvmsg minus the sender's just before sendto (one clock: the namespaces share it)",
        "captures": "libpcap captures (inbound) at each VNet's ingress router, on the link from the edge and on every link leaving it: what entered the VNet and which path it took",
    ]

    /// Whether `path` holds a class experiment's results (rather than a multi-net one's).
    public static func isClassResults(_ path: String) -> Bool {
        struct Probe: Decodable { var kind: String? }
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        return (try? JSONDecoder().decode(Probe.self, from: data))?.kind == "classes"
    }

    public static func load(_ path: String) throws -> ClassResults { try loadDocument(path, kind: "class results document") }
}

extension ClassResults: ResultsDocument {}

/// Per class loss and one-way delay from the sender's and receiver's packet logs.
public enum ClassAnalysis {
    public struct Figures: Equatable {
        public var sent: Int
        public var received: Int
        public var lossPct: Double
        public var delaysMs: [Double]

        public func percentile(_ p: Double) -> Double? {
            guard !delaysMs.isEmpty else { return nil }
            let sorted = delaysMs.sorted()
            return sorted[min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))]
        }

        public var mean: Double? { delaysMs.isEmpty ? nil : delaysMs.reduce(0, +) / Double(delaysMs.count) }
    }

    /// `sent`: `mono_ns,stream,seq,bytes,tos` (send-marked); `received`: the receiver's packet
    /// log (`mono_ns,stream_seq,...,stream`). Duplicates count once, at their first arrival.
    public static func figures(sentLog: String, receivedLog: String) throws -> [UInt32: Figures] {
        var sentAt: [UInt32: [UInt64]] = [:]
        for (line, f) in try PacketLogs.rows(sentLog, header: "mono_ns,stream,seq,bytes,tos") {
            guard f.count >= 3, let mono = UInt64(f[0]), let stream = UInt32(f[1]), let seq = Int(f[2]) else {
                throw LogError("\(sentLog):\(line): not a sent-packet line")
            }
            var times = sentAt[stream] ?? []
            guard seq == times.count else { throw LogError("\(sentLog):\(line): sequence \(seq) out of order") }
            times.append(mono)
            sentAt[stream] = times
        }
        var seen: [UInt32: Set<UInt32>] = [:]
        var delays: [UInt32: [Double]] = [:]
        for (line, f) in try PacketLogs.rows(receivedLog, header: PacketLogs.receivedHeader) {
            guard f.count >= 8, let mono = UInt64(f[0]), let seq = UInt32(f[1]), let stream = UInt32(f[7]) else {
                throw LogError("\(receivedLog):\(line): not a received-packet line")
            }
            guard let times = sentAt[stream], Int(seq) < times.count, seen[stream, default: []].insert(seq).inserted else { continue }
            delays[stream, default: []].append((Double(mono) - Double(times[Int(seq)])) / 1e6)
        }
        var result: [UInt32: Figures] = [:]
        for (stream, times) in sentAt {
            let got = delays[stream] ?? []
            result[stream] = Figures(
                sent: times.count, received: got.count, lossPct: 100 * Double(times.count - got.count) / Double(times.count), delaysMs: got)
        }
        return result
    }

    /// Packets to `port` in a capture, by TOS byte.
    public static func packetsByTOS(pcap: String, port: UInt16) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for packet in try PcapFile.ipv4Packets(pcap) where packet.ipProtocol == 17 && packet.destinationPort == port {
            counts[String(packet.tos), default: 0] += 1
        }
        return counts
    }
}

/// Runs a class experiment: one lab, captures inside each VNet, one receiver, one sender of
/// every class's stream from plain sockets at the edge; writes `OUT/results.json`.
public final class ClassExperimentRunner {
    public let file: ClassExperimentFile
    public let path: String
    public let options: ExperimentRunner.Options
    let topology: Topology
    static let port: UInt16 = 5004

    public init(file: ClassExperimentFile, path: String, options: ExperimentRunner.Options) throws {
        self.file = file
        self.path = path
        self.options = options
        topology = try Topology.load(ExperimentFile.resolve(file.topology, relativeTo: path))
        for cls in file.classes where !topology.classes.contains(where: { $0.name == cls.name }) {
            throw LabError(
                "\(path): class '\(cls.name)' is not in \(file.topology) (it has: \(topology.classes.map(\.name).joined(separator: ", ")))")
        }
    }

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

    public func run() throws -> ClassResults {
        let out = options.out
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(out)/captures", withIntermediateDirectories: true)
        let startedUTC = ISO8601DateFormatter().string(from: Date())
        let id = "c" + String(format: "%03x", UInt16.random(in: 0...0xfff))
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        options.print("\(file.name): building the lab (\(topology.name))")
        let built = Date()
        let lab = try Lab.up(topology: topology, file: topologyFile, runID: id, shaper: options.shaper) { options.print($0) }
        defer { lab.down() }
        try lab.waitForRouting(timeout: 120)
        options.print("lab \(id) up, OSPF converged in \(decimal(Date().timeIntervalSince(built), 1)) s")
        let plan = lab.plan
        let duration = Double(file.packets) / file.packetsPerSecond
        var children: [Command.Child] = []
        defer { for child in children { child.terminate() } }
        var captures: [(vnet: String, point: Topology.Endpoint, file: String, child: Command.Child)] = []
        for (vnet, end) in Self.capturePoints(plan) {
            let pcap = "\(out)/captures/\(vnet)-\(end.node)-\(end.interface).pcap"
            let child = try Command.Child(
                [
                    "ip", "netns", "exec", plan.namespace(end.node), options.binary, "capture", "--interface", end.interface, "--pcap", pcap,
                    "--filter", "udp dst port \(Self.port)", "--seconds", String(Int(duration + file.startLeadS + 120)),
                ], stdout: "\(pcap).json", stderr: "\(pcap).err")
            children.append(child)
            captures.append((vnet, end, pcap, child))
        }
        let receiver = try Command.Child(
            [
                "ip", "netns", "exec", plan.namespace(topology.receiver), options.binary, "recv", "--listen",
                "\(topology.receiverAddress):\(Self.port)", "--interval", String(max(1, duration)), "--start-timeout", "60",
                "--idle-timeout", "10", "--linger", "2", "--packet-log", "\(out)/receiver-packets.csv", "--json", "\(out)/receiver.json",
            ], stdout: "\(out)/receiver.out", stderr: "\(out)/receiver.err")
        children.append(receiver)
        let marks = try file.classes.map { cls in try topology.classes.first { $0.name == cls.name }!.mark }
        // Captures and the receiver are listening once their processes have opened them; a
        // moment's margin, then time zero after the lead.
        Thread.sleep(forTimeInterval: 0.5)
        let start = MonotonicClock.now() + UInt64(file.startLeadS * 1e9)
        var argv = [
            "ip", "netns", "exec", plan.namespace(topology.sender), options.binary, "send-marked", "--to",
            "\(topology.receiverAddress):\(Self.port)", "--rate", String(file.packetsPerSecond), "--packet-bytes", String(file.packetBytes),
            "--count", String(file.packets), "--arrivals", file.arrivals, "--seed", String(file.seed), "--start-at", String(start),
            "--packet-log", "\(out)/sender-packets.csv", "--json", "\(out)/sender.json",
        ]
        for mark in marks { argv += ["--tt", String(mark.tos)] }
        let sender = try Command.Child(argv, stdout: "\(out)/sender.out", stderr: "\(out)/sender.err")
        children.append(sender)
        options.print(
            "sending \(file.packets) packets of \(file.packetBytes) B at \(decimal(file.packetsPerSecond)) packets/s per class (\(file.arrivals)), \(decimal(duration, 1)) s")
        let deadline = start + UInt64((duration + 60) * 1e9)
        while sender.poll() == nil || receiver.poll() == nil {
            do { try Lab.checkInterrupted() } catch { throw ExperimentError("interrupted: the run was stopped and the lab removed") }
            if MonotonicClock.now() > deadline {
                options.print("time limit reached: stopping the sender and receiver")
                break
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
        try sender.check()
        struct SenderShifts: Decodable {
            var schedule_shifts: Int
            var schedule_shift_s: Double
        }
        let shifts = try? JSONDecoder().decode(SenderShifts.self, from: Data(contentsOf: URL(fileURLWithPath: "\(out)/sender.json")))
        receiver.terminate()
        for capture in captures { capture.child.terminate() }

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
        let seen = try captures.map { capture in
            ClassResults.VNetCapture(
                vnet: capture.vnet, point: capture.point.description,
                file: String(capture.file.dropFirst(capture.file.hasPrefix(out + "/") ? out.count + 1 : 0)),
                packetsByTOS: try ClassAnalysis.packetsByTOS(pcap: capture.file, port: Self.port))
        }
        let results = ClassResults(
            experiment: file.name, description: file.description, file: path, startedUTC: startedUTC,
            machine: Provenance.machine, gitCommit: Provenance.gitCommit(near: path),
            shaper: lab.shaper.rawValue, shaperReason: lab.state.shaperReason, red: plan.red, packetsPerClass: file.packets,
            packetsPerSecond: file.packetsPerSecond, packetBytes: file.packetBytes, arrivals: file.arrivals, classes: classes,
            senderScheduleShifts: shifts?.schedule_shifts, senderScheduleShiftS: shifts?.schedule_shift_s, captures: seen, definitions: ClassResults.definitionTexts)
        try results.write(to: "\(out)/results.json")
        return results
    }
}

/// The class experiment's report: per class next to Table I, what the captures saw, the targets.
public struct ClassReport: TargetsReport {
    public let results: ClassResults

    public init(results: ClassResults) { self.results = results }

    func format(_ value: Double?, _ places: Int) -> String { value.map { decimal($0, places) } ?? "–" }

    public var markdown: String {
        var out = "# \(results.experiment)\n\n"
        if let description = results.description { out += description + "\n\n" }
        out += "\(results.packetsPerClass) packets of \(results.packetBytes) B per class at \(decimal(results.packetsPerSecond)) packets/s (\(results.arrivals) arrivals); "
        out += "shaper \(results.shaper), queues \(results.red ? "RED" : "tail drop (no sch_red here)"); \(results.machine)."
        if let shifts = results.senderScheduleShifts, shifts > 0 {
            out += " The sender fell behind \(shifts) times and moved its schedule \(decimal(results.senderScheduleShiftS ?? 0, 2)) s later in all (no catch-up bursts)."
        }
        out += "\n\n"
        out += "| class | TT | VNet | queue | loss % (paper) | delay ms mean (paper) | p50 | p99 | max |\n|---|---|---|---|---:|---:|---:|---:|---:|\n"
        for c in results.classes {
            out += "| \(c.name) | \(c.tt) | \(c.vnet) | \(c.queue) | \(decimal(c.lossPct, 2)) (\(format(c.paperLossPct, 2))) | "
            out += "\(format(c.delayMsMean, 1)) (\(format(c.paperDelayMs, 1))) | \(format(c.delayMsP50, 1)) | \(format(c.delayMsP99, 1)) | \(format(c.delayMsMax, 1)) |\n"
        }
        out += "\n## What the captures inside each VNet saw\n\n| VNet | capture point | packets by TT |\n|---|---|---|\n"
        for capture in results.captures {
            let counts = capture.packetsByTOS.sorted { $0.key < $1.key }.map { key, count in
                "\(TrafficMark(tos: UInt8(key) ?? 0)): \(count)"
            }
            out += "| \(capture.vnet) | \(capture.point) | \(counts.isEmpty ? "none" : counts.joined(separator: ", ")) |\n"
        }
        return out
    }

    public var targets: [TargetCheck] {
        var checks: [TargetCheck] = []
        let tosToClass = Dictionary(uniqueKeysWithValues: results.classes.map { ($0.tos, $0) })
        for vnet in Set(results.captures.map(\.vnet)).sorted() {
            let entry = results.captures.filter { $0.vnet == vnet && $0.point.hasSuffix(":\(LabPlan.ingressInterface)") }
            var wrong = 0
            var right = 0
            for capture in entry {
                for (key, count) in capture.packetsByTOS {
                    guard let cls = tosToClass[Int(key) ?? -1] else { continue }
                    if cls.vnet == vnet { right += count } else { wrong += count }
                }
            }
            checks.append(
                TargetCheck(
                    target: "every packet in the VNet of its mark", run: "VNet \(vnet)",
                    measured: "\(right) of its classes' packets, \(wrong) of other classes'", pass: wrong == 0 && right > 0, note: nil))
        }
        for c in results.classes {
            let sentIn = results.captures.filter { $0.vnet == c.vnet && $0.point.hasSuffix(":\(LabPlan.ingressInterface)") }
                .map { $0.packetsByTOS[String(c.tos)] ?? 0 }.reduce(0, +)
            checks.append(
                TargetCheck(
                    target: "every packet of the class entered its VNet", run: c.name, measured: "\(sentIn) of \(c.sent) (+ end messages)",
                    pass: sentIn >= c.sent, note: nil))
        }
        let delay = results.classes.filter { $0.sensitive == "delay" }
        let loss = results.classes.filter { $0.sensitive == "loss" }
        for d in delay {
            for l in loss {
                checks.append(
                    TargetCheck(
                        target: "the delay-sensitive class has the lower mean delay", run: "\(d.name) vs \(l.name)",
                        measured: "\(format(d.delayMsMean, 1)) vs \(format(l.delayMsMean, 1)) ms",
                        pass: (d.delayMsMean ?? .infinity) < (l.delayMsMean ?? -.infinity), note: nil))
                checks.append(
                    TargetCheck(
                        target: "the loss-sensitive class has the lower loss", run: "\(l.name) vs \(d.name)",
                        measured: "\(decimal(l.lossPct, 2)) vs \(decimal(d.lossPct, 2)) %", pass: l.lossPct < d.lossPct, note: nil))
            }
        }
        return checks
    }

    /// report.md and classes.csv in `folder`; returns the files written.
    public func write(folder: String) throws -> [String] {
        var csv = "class,tt,tos,vnet,queue,sent,received,loss_pct,delay_ms_mean,delay_ms_p50,delay_ms_p99,delay_ms_max,paper_loss_pct,paper_delay_ms\n"
        for c in results.classes {
            let fields: [String] = [
                c.name, c.tt, String(c.tos), c.vnet, "\"\(c.queue)\"", String(c.sent), String(c.received), decimal(c.lossPct),
                format(c.delayMsMean, 3), format(c.delayMsP50, 3), format(c.delayMsP99, 3), format(c.delayMsMax, 3),
                format(c.paperLossPct, 3), format(c.paperDelayMs, 3),
            ]
            csv += fields.joined(separator: ",").replacingOccurrences(of: "–", with: "") + "\n"
        }
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("classes.csv", csv)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"), options: .atomic)
            written.append("\(folder)/\(name)")
        }
        return written
    }
}
