import Capture
import Experiment
import Foundation
import RunRecords
import Packets
import Streaming
import TestSupport
import Testing

@testable import Lab

let classTopology = repositoryRoot + "/Experiments/topologies/paper-fig4.toml"

@Suite("Traffic classes and queue policies as plans (no root needed)")
struct ClassPlanTests {
    @Test("paper-fig4: two classes by DSCP, each VNet with its RED policy, the loss VNet as default")
    func paperFig4() throws {
        let topology = try Topology.load(classTopology)
        #expect(topology.classes.map(\.vnet) == ["delay", "loss"])
        #expect(try topology.classes.map { try $0.mark.tos } == [0xb8, 0x28])
        #expect(topology.vnets.map { $0.queue?.redMaxPackets } == [80, 10])
        #expect(topology.vnets[1].queue?.limitPackets == 40, "the hard limit defaults to 4 x max")
    }

    @Test("the fluid bound's queue is each VNet's own, as configured: TBF limit, netem queue time, or the queue policy's threshold")
    func queueBytes() throws {
        let paper = try Topology.load(paperTopology)
        let tbf = try LabPlan(topology: paper, runID: "T", shaper: .tbf)
        // 100 ms at 400 kbit/s is 5000 B; TBF's limit adds its 1600 B burst.
        #expect(tbf.queueBytes(vnet: 0, bitsPerSecond: 400_000) == 6600)
        #expect(try LabPlan(topology: paper, runID: "T", shaper: .netem).queueBytes(vnet: 0, bitsPerSecond: 400_000) == 5000)
        // paper-fig4: VNet delay's policy cuts at 10 packets of 256 B (+ 14 B Ethernet), VNet loss's at 80.
        let classes = try LabPlan(topology: try Topology.load(classTopology), runID: "T", shaper: .tbf)
        let delay = try #require(classes.topology.vnets.firstIndex { $0.name == "delay" })
        let loss = try #require(classes.topology.vnets.firstIndex { $0.name == "loss" })
        #expect(classes.queueBytes(vnet: delay, bitsPerSecond: 1e6) == 2700)
        #expect(classes.queueBytes(vnet: loss, bitsPerSecond: 1e6) == 21600)
    }

    @Test("the edge marks by DSCP toward the receiver only, skips the tuns, and routes each mark into its VNet's table")
    func classifier() throws {
        let plan = try LabPlan(topology: try Topology.load(classTopology), runID: "T", shaper: .tbf)
        let rules = try #require(plan.classifierRules)
        #expect(rules.contains("type route hook output priority mangle;"), "local sockets are routed again after marking")
        #expect(rules.contains(#"iifname { "tun0", "tun1" } return;"#))
        #expect(rules.contains(#"ip daddr 198.18.100.1 ip dscp 46 counter meta mark set 17 comment "delay-sensitive";"#))
        #expect(rules.contains(#"ip daddr 198.18.100.1 ip dscp 10 counter meta mark set 16 comment "loss-sensitive";"#))
        let commands = plan.classifierCommands.map { $0.joined(separator: " ") }
        #expect(commands.contains("ip -n vlT-src rule add fwmark 17 lookup 102 pref 901"))
        #expect(commands.contains("ip -n vlT-src rule add fwmark 16 lookup 101 pref 900"))
        // Unclassified traffic from sockets follows default_vnet (loss: VNet 1, via its ingress).
        #expect(commands.first?.hasPrefix("ip -n vlT-src route add 198.18.100.1 via 198.19.") == true)
        // Without classes there is no classifier at all.
        let plain = try LabPlan(topology: try Topology.load(paperTopology), runID: "T", shaper: .tbf)
        #expect(plain.classifierRules == nil && plain.classifierCommands.isEmpty)
    }

    @Test("queue policy lines: RED under TBF, RED under TBF under netem, and TBF's tail drop at RED's max without sch_red")
    func queueLines() {
        let queue = Topology.QueuePolicy(redMinPackets: 2, redMaxPackets: 10, redProbability: 0.02, packetBytes: 256)
        var conditions = LinkConditions()
        conditions.rate = .kbit(1000)
        let red = InterfaceShaping(interface: "c", shaper: .tbf, conditions: conditions, queue: queue, red: true)
        // Thresholds in packets of 256 + 14 bytes (tc counts the Ethernet header); burst (2 min + max) / 3 = 4.67 -> 5.
        #expect(red.tcLines == [
            "qdisc replace dev c root handle 1: tbf rate 1000000bit burst 1600 limit 2700",
            "qdisc replace dev c parent 1:1 handle 2: red limit 10800 min 540 max 2700 avpkt 270 burst 5 probability 0.02 bandwidth 1000000bit",
        ])
        conditions.delayMs = 5
        let netem = InterfaceShaping(interface: "c", shaper: .netem, conditions: conditions, queue: queue, red: true)
        #expect(netem.tcLines == [
            "qdisc replace dev c root handle 1: netem limit 10000 delay 5ms",
            "qdisc replace dev c parent 1:1 handle 2: tbf rate 1000000bit burst 1600 limit 2700",
            "qdisc replace dev c parent 2:1 handle 3: red limit 10800 min 540 max 2700 avpkt 270 burst 5 probability 0.02 bandwidth 1000000bit",
        ])
        let tail = InterfaceShaping(interface: "c", shaper: .tbf, conditions: conditions, queue: queue, red: false)
        #expect(tail.tcLines == ["qdisc replace dev c root handle 1: tbf rate 1000000bit burst 1600 limit 2700"])
        #expect(InterfaceShaping.queueSummary(queue, red: false, shaper: .tbf).hasPrefix("tail drop at 10 packets"))
        #expect(InterfaceShaping.queueSummary(queue, red: true, shaper: .netem) == "RED min 2 max 10 p 0.02 (packets of 256 B)")
    }

    @Test("bad classes and queues are refused with the file named: ECN bits, unknown VNet, a DSCP twice, max <= min")
    func badClasses() throws {
        let text = try String(contentsOfFile: classTopology, encoding: .utf8)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases: [(String, String, String)] = [
            (#"tt = "EF""#, #"tt = "0xb9""#, "sets ECN bits"),
            (#"vnet = "delay""#, #"vnet = "fast""#, "no VNet 'fast'"),
            (#"tt = "AF11""#, #"tt = "EF""#, "have the same DSCP 46"),
            ("red_max_packets = 10", "red_max_packets = 2", "red_max_packets larger"),
            (#"default_vnet = "loss""#, #"default_vnet = "none""#, "default_vnet 'none' is not a VNet"),
        ]
        for (index, (from, to, message)) in cases.enumerated() {
            let path = try writeFile(directory, "t\(index).toml", text.replacingOccurrences(of: from, with: to))
            let error = #expect(throws: LabError.self) { try Topology.load(path) }
            #expect(error?.description.hasPrefix(path) == true)
            #expect(error?.description.contains(message) == true, "\(error?.description ?? "no error") lacks '\(message)'")
        }
    }

    @Test("class loss and one-way delay come from joining the sender's and receiver's logs; duplicates count once")
    func classFigures() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sent = try writeFile(
            directory, "s.csv",
            "mono_ns,stream,seq,bytes,tos,local_drop\n1000000,1,0,256,184,0\n2000000,2,0,256,40,0\n3000000,1,1,256,184,0\n4000000,2,1,256,40,0\n5000000,1,2,256,184,0\n")
        let received = try writeFile(
            directory, "r.csv",
            "mono_ns,stream_seq,vnet,path_seq,frame,bytes,tos,stream\n3000000,0,1,0,0,256,184,1\n12000000,0,1,0,0,256,40,2\n"
                + "14000000,1,1,1,1,256,40,2\n15000000,1,1,1,1,256,40,2\n9000000,2,1,2,2,256,184,1\n")
        let figures = try ClassAnalysis.figures(sentLog: sent, receivedLog: received)
        let one = try #require(figures[1])
        #expect(one.sent == 3 && one.received == 2)
        #expect(abs(one.lossPct - 100.0 / 3) < 1e-9)
        #expect(one.delaysMs == [2, 4] && one.mean == 3 && one.percentile(0.99) == 4)
        let two = try #require(figures[2])
        #expect(two.sent == 2 && two.received == 2 && two.lossPct == 0 && two.delaysMs == [10, 10])
    }

    @Test("Poisson arrivals keep the mean rate and repeat with the seed; constant ones are evenly spaced")
    func arrivals() {
        let poisson = MarkedSender.schedule(count: 20_000, packetsPerSecond: 450, arrivals: .poisson, seed: 7)
        let rate = Double(poisson.count - 1) / (Double(poisson.last!) / 1e9)
        #expect(abs(rate / 450 - 1) < 0.03, "mean rate \(rate)")
        #expect(poisson == MarkedSender.schedule(count: 20_000, packetsPerSecond: 450, arrivals: .poisson, seed: 7))
        #expect(poisson != MarkedSender.schedule(count: 20_000, packetsPerSecond: 450, arrivals: .poisson, seed: 8))
        let gaps = zip(poisson.dropFirst(), poisson).map { Double($0 - $1) }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let deviation = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)).squareRoot()
        #expect(abs(deviation / mean - 1) < 0.05, "exponential gaps have a coefficient of variation of 1")
        #expect(MarkedSender.schedule(count: 3, packetsPerSecond: 500, arrivals: .constant, seed: 1) == [0, 2_000_000, 4_000_000])
    }
}

@Suite("Traffic classes, for real (root, namespaces, nftables, bird2, libpcap)", .serialized, .timeLimit(.minutes(5)))
struct ClassLabTests {
    @Test("plain sockets marked EF and AF11 reach only their classes' VNets (libpcap inside each); unmarked goes to the default VNet; a tun's packets keep the VNet the sender chose")
    func classification() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(classTopology), file: classTopology, runID: id, shaper: .tbf)
        defer { lab.down() }
        try lab.waitForRouting(timeout: 60)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let plan = lab.plan
        // Captures at each VNet's ingress, on the link from the edge: all that entered the VNet.
        var captures: [String: BackgroundProcess] = [:]
        for vnet in plan.topology.vnets {
            captures[vnet.name] = try BackgroundProcess(
                ["ip", "netns", "exec", plan.namespace(vnet.ingress), vnetstreamBinary, "capture", "--interface", "snd", "--pcap",
                 "\(directory)/\(vnet.name).pcap", "--filter", "udp and dst host 198.18.100.1", "--seconds", "60"])
        }
        defer { for capture in captures.values { capture.stop() } }
        let receiver = try BackgroundProcess(
            ["ip", "netns", "exec", plan.namespace("dst"), vnetstreamBinary, "recv", "--listen", "198.18.100.1:5004", "--json-file",
             directory + "/r.json", "--idle-timeout", "3", "--linger", "1"])
        defer { receiver.stop() }
        usleep(700_000)
        // Three streams from plain sockets at the edge: EF, AF11 and unmarked (BE), 300 each, at a
        // rate the 1 Mbit/s bottlenecks carry (AF11 and BE share VNet loss).
        let marked = try runProcess(
            ["ip", "netns", "exec", plan.namespace("src"), vnetstreamBinary, "send-marked", "--to", "198.18.100.1:5004", "--tt", "EF",
             "--tt", "AF11", "--tt", "BE", "--count", "300", "--pps", "150", "--json-file", directory + "/m.json"])
        #expect(marked.status == 0, "\(marked.summary)")
        // The multi-net sender writing EF-marked packets into tun0 (VNet loss): the classifier
        // must leave them on the VNet the sender chose.
        let tunSent = try runProcess(
            ["ip", "netns", "exec", plan.namespace("src"), vnetstreamBinary, "send", "--cbr", "200kbit", "--fps", "50", "--duration",
             "1", "--vnet", "tun0", "--tt", "EF", "--to", "198.18.100.1:5005", "--json-file", directory + "/t.json"])
        #expect(tunSent.status == 0, "\(tunSent.summary)")
        let received = receiver.wait(timeout: 30)
        #expect(received.status == 0, "\(received.summary)")
        usleep(300_000)
        for capture in captures.values { capture.stop() }
        func counts(_ vnet: String) throws -> [String: Int] {
            var counts: [String: Int] = [:]
            for packet in try PcapFile.ipv4Packets("\(directory)/\(vnet).pcap") {
                counts["\(packet.tos)/\(packet.destinationPort)", default: 0] += 1
            }
            return counts
        }
        let delay = try counts("delay")
        let loss = try counts("loss")
        // Media packets plus the three end-of-stream messages per stream.
        #expect(delay == ["184/5004": 303], "the delay VNet saw \(delay)")
        let tunPackets = try JSONDecoder().decode(SenderSummary.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/t.json"))).packets
        #expect(tunPackets > 0)
        #expect(loss["40/5004"] == 303 && loss["0/5004"] == 303, "the loss VNet saw \(loss)")
        #expect((loss["184/5005"] ?? 0) >= tunPackets, "EF from tun0 stays on VNet loss: \(loss)")
        #expect(loss.keys.sorted() == ["0/5004", "184/5005", "40/5004"], "nothing else entered VNet loss: \(loss)")
        // The receiver accounted each stream with its own mark.
        let result = try JSONDecoder().decode(ReceiverResult.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/r.json")))
        #expect(result.streams.count == 3)
        // The bottlenecks carry these rates; a margin for a sender stalled on a loaded machine.
        #expect(result.streams.allSatisfy { $0.total.received >= 285 }, "\(result.streams.map(\.total))")
        lab.down()
        #expect(try leftovers(id).isEmpty)
    }
}
