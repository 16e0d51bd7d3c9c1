import Capture
import Foundation
import Monitoring
import Packets
import RunRecords
import TestSupport
import Testing

@testable import Experiment
@testable import Lab

@Suite("Monitoring VNets, for real (root, namespaces, tc mirred, nft dup, libpcap)", .serialized, .timeLimit(.minutes(5)))
struct MonitorLabTests {
    @Test("copies reach the Monis and only them; loss located hop by hop equals the kernel's counters; a Moni behind its slow mirror link drops its own copies, not the router's packets")
    func locateAndIsolate() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(monitorChainTopology), file: monitorChainTopology, runID: id, shaper: .tbf)
        defer { lab.down() }
        try lab.waitForRouting(timeout: 60)
        let plan = lab.plan
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func exec(_ node: String, _ argv: [String]) -> [String] { ["ip", "netns", "exec", plan.namespace(node), vnetstreamBinary] + argv }
        let collector = try BackgroundProcess(
            exec(MonitorPlan.collectorNode, ["monitor", "collect", "--listen", plan.monitoring.collector!.description, "--out", directory + "/records.jsonl",
                "--duration", "60", "--linger", "0.5", "--json-file", directory + "/collector.json"]))
        defer { collector.stop() }
        var monitors: [BackgroundProcess] = []
        defer { for monitor in monitors { monitor.stop() } }
        for moni in plan.monitoring.monis {
            let ports = try lab.monitorPorts(router: moni.router)
            #expect(ports.count == plan.routerInterfaces(of: moni.router).count, "\(moni.router): \(ports)")
            monitors.append(
                try BackgroundProcess(
                    exec(moni.node, ["monitor", "watch", "--node", moni.node, "--router", moni.router, "--vnet", plan.topology.vnets[moni.vnet].name,
                        "--filter", moni.filter.bpf, "--collector", plan.monitoring.collector!.description, "--interval", "1", "--duration", "60",
                        "--json-file", "\(directory)/\(moni.node).json"] + ports.flatMap { ["--port", $0] }
                        // The first keeps a rolling pcap: files of 20 kB, the last two kept.
                        + (moni.router == "r1" ? ["--pcap", directory + "/ring", "--pcap-mb", "0.02", "--pcap-files", "2"] : []))))
        }
        // libpcap on every production port (what arrives there) and at the receiver.
        let media = MirrorFilter.stream.bpf
        var captures: [(String, BackgroundProcess)] = []
        defer { for (_, capture) in captures { capture.stop() } }
        for router in plan.routers {
            for port in plan.routerInterfaces(of: router) {
                captures.append(
                    ("\(router):\(port)",
                        try BackgroundProcess(
                            exec(router, ["capture", "--interface", port, "--pcap", "\(directory)/\(router)-\(port).pcap", "--filter", media, "--seconds", "40"]))))
            }
        }
        usleep(1_000_000)
        let before = lab.kernelSnapshot(label: "before", atS: 0)
        let receiver = try BackgroundProcess(
            exec("dst", ["recv", "--listen", "198.18.100.1:5004", "--idle-timeout", "3", "--linger", "1", "--packet-log", directory + "/r.csv"]))
        defer { receiver.stop() }
        usleep(500_000)
        let sent = try runProcess(
            exec("src", ["send", "--cbr", "1600kbit", "--duration", "3", "--vnet", "tun0", "--vnet", "tun1", "--mode", "static", "--split", "1:1",
                "--to", "198.18.100.1:5004", "--packet-log", directory + "/s.csv"]))
        #expect(sent.status == 0, "\(sent.summary)")
        #expect(receiver.wait(timeout: 20).status == 0)
        usleep(300_000)
        let after = lab.kernelSnapshot(label: "after", atS: 1)
        let mirrorDrops = lab.mirrorLinkDrops(router: "q1")
        for monitor in monitors { kill(monitor.pid, SIGTERM) }
        for (moni, monitor) in zip(plan.monitoring.monis, monitors) {
            let result = monitor.wait(timeout: 15)
            #expect(result.status == 0, "\(moni.node): \(result.summary)")
        }
        kill(collector.pid, SIGTERM)
        #expect(collector.wait(timeout: 15).status == 0)
        for (_, capture) in captures { kill(capture.pid, SIGTERM) }
        var arrived: [String: Int] = [:]
        for (port, capture) in captures {
            #expect(capture.wait(timeout: 15).status == 0)
            arrived[port] = try PcapFile.ipv4Packets("\(directory)/\(port.replacingOccurrences(of: ":", with: "-")).pcap").count
        }

        let summaries = try MonitorCollector.read(directory + "/records.jsonl")
        let collected = try JSONDecoder().decode(MonitorCollector.Totals.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/collector.json")))
        #expect(collected.finals == plan.monitoring.monis.map(\.node).sorted(), "every Moni's last summary came: \(collected)")
        #expect(collected.rejected == 0)
        let sentPackets = try CSVLog.read(SentPacket.self, from: directory + "/s.csv")
        let received = try CSVLog.read(ReceivedPacket.self, from: directory + "/r.csv")
        let located = LocatedLoss.locate(plan: plan, summaries: summaries, sent: sentPackets, received: received)
        let kernel = KernelDrops(plan: plan, from: before, to: after)
        print("located: \(located.links.map { "\($0.from)->\($0.to) \($0.lost)/\($0.packets)" }); paths \(located.paths)")

        // The chain: every copy seen, each loss placed where the kernel dropped it.
        let chain = try #require(located.paths.first { $0.path == 1 })
        #expect(chain.unchained == 0 && chain.located == chain.sent - chain.received, "\(chain)")
        #expect(chain.located > 0, "3 % random loss on r1 -> r2 lost something")
        for direction in kernel.links where direction.vnet == "chain" && direction.entered > 0 {
            let link = located.links.first { $0.from == direction.from && $0.to == direction.to }
            #expect(link?.lost == direction.dropped, "\(direction.from) -> \(direction.to): located \(link?.lost ?? -1), the kernel dropped \(direction.dropped)")
            #expect(link.map { $0.packets - $0.lost } == arrived[direction.to], "what arrived at \(direction.to) (libpcap there): no copy on a production link")
        }
        #expect(located.links.filter { $0.path == 1 && !$0.from.hasPrefix("r1:r2") }.allSatisfy { $0.lost == 0 })

        // The pair, watched through a 300 kbit/s mirror link both ways: its Monis miss copies,
        // the router drops them on the mirror link, and the VNet itself loses nothing.
        let pair = try #require(located.paths.first { $0.path == 2 })
        #expect(pair.received == pair.sent && pair.sent > 200, "\(pair)")
        #expect((mirrorDrops ?? 0) > 100, "q1's mirror link dropped copies: \(String(describing: mirrorDrops))")
        #expect(kernel.vnets.first { $0.name == "pair" }.map { $0.entered == $0.left } == true, "\(kernel.vnets)")
        let q1 = try JSONDecoder().decode(MonitorNode.Totals.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/mon_q1.json")))
        #expect(q1.copies > 0 && q1.copies < 2 * pair.sent, "q1's Moni saw some of both hooks' copies, not all: \(q1)")
        #expect(arrived["q2:q1"] == pair.sent, "every packet of the pair reached q2")
        // r1's rolling pcap: about 60 kB of copies (256 bytes of each) in files of 20 kB; the last two are kept,
        // each a whole pcap file, and they hold the latest copies.
        let ring = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("ring.") }.sorted()
        #expect(ring.count == 2, "\(ring)")
        let kept = try ring.map { try PcapFile.ipv4Packets("\(directory)/\($0)").count }
        #expect(kept.allSatisfy { $0 > 0 } && kept.reduce(0, +) < chain.sent, "\(ring): \(kept) packets of \(chain.sent)")
        lab.down()
        #expect(try leftovers(id).isEmpty)
    }
}
