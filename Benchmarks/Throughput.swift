import Foundation
import Lab
import RunRecords
import Streaming

/// The data path's throughput against `iperf3 -u`, on the same lab paths, in the same run.
///
/// A lab of two unshaped VNets (`Benchmarks/throughput.toml`). Ours: `vnetstream send --cbr max`
/// (unpaced) through the sender's tuns, `vnetstream recv` at the receiver. iperf3: a client in
/// the sender's namespace bound to the sender's address in a VNet (policy routing sends it into
/// that VNet), a one-off server at the receiver's address, `-u -b 0 -l PAYLOAD`. Delivered =
/// what the receiving side counted. CPU = user + system seconds of both ends (ours: getrusage;
/// iperf3: its own cpu_utilization_percent times the test's length).
struct ThroughputFigures {
    var packetsPerSecond: Double
    var megabitsPerSecond: Double
    var lossPct: Double
    var cpuSecondsPerGigabit: Double
    /// CPU seconds per second of the run, in % of one core.
    var cpuPercent: Double
    var note: String
}

/// The benchmarks' lab of two unshaped VNets (`Benchmarks/throughput.toml`), with the runs
/// they make on it: ours through the sender's tuns, and iperf3 on the same paths.
final class ThroughputLab {
    let lab: Lab
    let topology: Topology
    let sender: String
    let receiver: String
    let destination: String
    let binary: String
    let iperf: String
    let work: String

    /// nil (and a line saying why) where the benchmark cannot run here.
    static func make() throws -> ThroughputLab? {
        guard getuid() == 0 else {
            print("   skipped: needs root (namespaces, tun)")
            return nil
        }
        guard let iperf = try? Command.locate("iperf3") else {
            print("   skipped: iperf3 is missing (apt-get install iperf3; scripts/install-deps does)")
            return nil
        }
        return try ThroughputLab(iperf: iperf)
    }

    private init(iperf: String) throws {
        self.iperf = iperf
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("throughput.toml").path
        binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vnetstream").path
        topology = try Topology.load(file)
        lab = try Lab.up(topology: topology, file: file, runID: String(format: "bt%03x", UInt16.random(in: 0...0xfff)), shaper: .tbf)
        do {
            try lab.waitForRouting(timeout: 60)
            sender = lab.plan.namespace(topology.sender)
            receiver = lab.plan.namespace(topology.receiver)
            destination = topology.receiverAddress
            // iperf3's client binds to the sender's address on VNet i's tun (198.18.i.1): its packets
            // take VNet i's table, and the answers come back through VNet i like ours do.
            for index in topology.vnets.indices {
                try Command.run(
                    ["ip", "-n", sender, "rule", "add", "from", lab.plan.tunAddress(vnet: index).description, "lookup", String(101 + index), "pref",
                     String(800 + index)])
            }
            work = NSTemporaryDirectory() + "vnetstream-throughput-\(getpid())"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        } catch {
            lab.down()
            throw error
        }
    }

    func down() {
        lab.down()
        try? FileManager.default.removeItem(atPath: work)
    }

    /// Ours: `send --cbr max` (unpaced, packets of `payload`) or `--cbr RATE` (paced frames of
    /// MTU-sized packets), split 1:1 over `vnets`, to `recv`. Delivered: UDP payload bits the
    /// receiver counted; CPU: both ends (`senderOnly`: the sender's).
    /// `segmentation`: unpaced, segmented writes (the default; `--no-segmentation` without);
    /// paced, `--segmentation`.
    func ours(payload: Int, vnets: Int, seconds: Double, segmentation: Bool = true, rate: String? = nil, senderOnly: Bool = false) throws -> ThroughputFigures {
        let recv = try Command.Child(
            ["ip", "netns", "exec", receiver, binary, "recv", "--listen", "\(destination):5004", "--json-file", "\(work)/r.json", "--idle-timeout",
             "2", "--linger", "0.5", "--interval", "3600", "--start-timeout", "30"],
            stdout: "\(work)/r.out", stderr: "\(work)/r.err")
        defer { recv.terminate() }
        Thread.sleep(forTimeInterval: 0.4)
        var argv = [
            "ip", "netns", "exec", sender, binary, "send", "--cbr", rate ?? "max", "--duration", String(seconds), "--to", "\(destination):5004",
            "--json-file", "\(work)/s.json", "--mode", "static", "--split", Array(repeating: "1", count: vnets).joined(separator: ":"),
        ]
        if rate == nil { argv += ["--payload-bytes", String(payload)] }
        for vnet in topology.vnets.prefix(vnets) { argv += ["--vnet", vnet.tun] }
        if rate == nil && !segmentation { argv.append("--no-segmentation") }
        if rate != nil && segmentation { argv.append("--segmentation") }
        try Command.run(argv)
        try recv.check()
        let sent = try JSONDecoder().decode(SenderSummary.self, from: Data(contentsOf: URL(fileURLWithPath: "\(work)/s.json")))
        let got = try JSONDecoder().decode(ReceiverResult.self, from: Data(contentsOf: URL(fileURLWithPath: "\(work)/r.json")))
        guard let total = got.report?.total else { throw LabError("the receiver saw no stream") }
        let delivered = Double(total.received)
        let sentPackets = Double(sent.vnets.map(\.packets).reduce(0, +))
        // UDP payload bytes per packet on average (IPv4 bytes less the 28 B of headers).
        let perPacket = rate == nil ? Double(payload) : (Double(sent.vnets.map(\.bytes).reduce(0, +)) - 28 * sentPackets) / max(1, sentPackets)
        let bits = delivered * perPacket * 8
        let cpu = (sent.cpuS ?? 0) + (senderOnly ? 0 : (got.cpuS ?? 0))
        return ThroughputFigures(
            packetsPerSecond: delivered / sent.durationS, megabitsPerSecond: bits / sent.durationS / 1e6,
            lossPct: 100 * Double(total.lost) / Double(max(1, total.sent)), cpuSecondsPerGigabit: cpu / (bits / 1e9),
            cpuPercent: 100 * cpu / sent.durationS, note: sent.offload ?? "")
    }

    /// iperf3 `-u -b BANDWIDTH -l PAYLOAD` on the same paths, a client and a one-off server
    /// per VNet. CPU: both ends as iperf3 reports them (`senderOnly`: the client's).
    func iperf3(payload: Int, vnets: Int, seconds: Double, bandwidth: String = "0", senderOnly: Bool = false) throws -> ThroughputFigures {
        var servers: [Command.Child] = []
        defer { for server in servers { server.terminate() } }
        for index in 0..<vnets {
            servers.append(
                try Command.Child(
                    ["ip", "netns", "exec", receiver, iperf, "-s", "-1", "-B", destination, "-p", String(5201 + index), "-J"],
                    stdout: "\(work)/is\(index).json", stderr: "\(work)/is\(index).err"))
        }
        // Each server listening (TCP, its control connection) before its client starts.
        for index in 0..<vnets {
            var listening = false
            for _ in 0..<100 where !listening {
                let sockets = (try? Command.run(["ip", "netns", "exec", receiver, "ss", "-Hltn", "sport = :\(5201 + index)"])) ?? ""
                listening = sockets.contains(String(5201 + index))
                if !listening { Thread.sleep(forTimeInterval: 0.05) }
            }
        }
        var clients: [Command.Child] = []
        for index in 0..<vnets {
            clients.append(
                try Command.Child(
                    ["ip", "netns", "exec", sender, iperf, "-c", destination, "-p", String(5201 + index), "-B",
                     lab.plan.tunAddress(vnet: index).description, "-u", "-b", bandwidth, "-l", String(payload), "-t", String(seconds), "-J"],
                    stdout: "\(work)/ic\(index).json", stderr: "\(work)/ic\(index).err"))
        }
        var delivered = 0.0
        var sentPackets = 0.0
        var lost = 0.0
        var cpu = 0.0
        var duration = 0.0
        for (index, client) in clients.enumerated() {
            try client.check()
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(work)/ic\(index).json"))
            func number(_ value: Any?) -> Double? { (value as? NSNumber)?.doubleValue }
            guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any], let end = json["end"] as? [String: Any],
                let sum = end["sum"] as? [String: Any], let packets = number(sum["packets"]), let lostPackets = number(sum["lost_packets"]),
                let secondsRun = number(sum["seconds"]), let usage = end["cpu_utilization_percent"] as? [String: Any],
                let host = number(usage["host_total"]), let remote = number(usage["remote_total"])
            else {
                let said = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["error"] as? String
                throw LabError("iperf3 -c gave no end.sum or end.cpu_utilization_percent" + (said.map { ": \($0)" } ?? ""))
            }
            sentPackets += packets
            lost += lostPackets
            delivered += packets - lostPackets
            cpu += (host + (senderOnly ? 0 : remote)) / 100 * secondsRun
            duration = max(duration, secondsRun)
        }
        let bits = delivered * Double(payload) * 8
        return ThroughputFigures(
            packetsPerSecond: delivered / duration, megabitsPerSecond: bits / duration / 1e6, lossPct: 100 * lost / max(1, sentPackets),
            cpuSecondsPerGigabit: cpu / (bits / 1e9), cpuPercent: 100 * cpu / duration,
            note: "iperf3 \(vnets > 1 ? "x\(vnets) " : "")-u -b \(bandwidth) -l \(payload)")
    }
}

func throughputSuite(seconds: Double) throws {
    print("== throughput: ours (tun per VNet) against iperf3 -u on the same paths, \(Int(seconds)) s per run")
    guard let bench = try ThroughputLab.make() else { return }
    defer { bench.down() }
    func ours(payload: Int, vnets: Int, segmentation: Bool = true) throws -> ThroughputFigures {
        try bench.ours(payload: payload, vnets: vnets, seconds: seconds, segmentation: segmentation)
    }
    func iperf3(payload: Int, vnets: Int) throws -> ThroughputFigures { try bench.iperf3(payload: payload, vnets: vnets, seconds: seconds) }

    func row(_ who: String, _ f: ThroughputFigures) -> String {
        who.padding(toLength: 8, withPad: " ", startingAt: 0)
            + String(format: "%10.0f pkt/s %9.1f Mbit/s  loss %6.2f %%  CPU %6.3f s/Gbit  ", f.packetsPerSecond, f.megabitsPerSecond, f.lossPct, f.cpuSecondsPerGigabit)
            + f.note
    }

    var headline = 0.0
    for payload in [1200, 200] {
        for vnets in [1, 2] {
            let ourFigures = try ours(payload: payload, vnets: vnets)
            let theirs = try iperf3(payload: payload, vnets: vnets)
            let ratio = ourFigures.megabitsPerSecond / theirs.megabitsPerSecond
            print("-- \(payload) B payloads, \(vnets) VNet\(vnets > 1 ? "s" : ""): delivered, loss, CPU (sender + receiver) per gigabit delivered")
            print("   " + row("ours", ourFigures))
            if vnets == 1 { print("   " + row("ours", try ours(payload: payload, vnets: vnets, segmentation: false))) }
            print("   " + row("iperf3", theirs))
            print(
                String(
                    format: "   ours/iperf3: throughput %.2f, CPU per gigabit %.2f", ratio,
                    ourFigures.cpuSecondsPerGigabit / theirs.cpuSecondsPerGigabit))
            if payload == 1200 && vnets == 1 { headline = ratio }
        }
    }
    print(String(format: "ours/iperf3 throughput ratio at 1200 B, 1 VNet: %.2f", headline))
}
