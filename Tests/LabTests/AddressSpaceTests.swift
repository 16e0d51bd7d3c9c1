import Foundation
import Lab
import RunRecords
import TestSupport
import Testing

@Suite("VNets with their own, overlapping address spaces", .serialized)
struct AddressSpaceTests {
    /// paper-fig6 with both VNets numbering their links from 10.0.0.0/24.
    static func overlappingTopology(_ directory: String) throws -> String {
        let text = try String(contentsOfFile: paperTopology, encoding: .utf8)
            .replacingOccurrences(of: "tun = \"tun0\"\n", with: "tun = \"tun0\"\naddress_space = \"10.0.0.0/24\"\n")
            .replacingOccurrences(of: "tun = \"tun1\"\n", with: "tun = \"tun1\"\naddress_space = \"10.0.0.0/24\"\n")
        return try writeFile(directory, "overlap.toml", text)
    }

    @Test("an address space refused when it is no prefix, too small for the VNet's links, or overlaps the lab's 198.18.0.0/15")
    func badSpaces() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = try String(contentsOfFile: paperTopology, encoding: .utf8)
        for (space, message) in [("10.0.0.0", "not an IPv4 prefix"), ("10.0.0.1/24", "not the prefix's first"), ("10.0.0.0/30", "holds 1 links"),
            ("198.19.0.0/24", "overlaps 198.18.0.0/15")] {
            let file = try writeFile(directory, "bad.toml", base.replacingOccurrences(of: "tun = \"tun0\"\n", with: "tun = \"tun0\"\naddress_space = \"\(space)\"\n"))
            #expect {
                try Topology.load(file)
            } throws: { error in
                "\(error)".contains(message) && "\(error)".contains("VNet vnet1")
            }
        }
    }

    @Test("both VNets number their links from 10.0.0.0/24: the same addresses in each, OSPF converges in both, a stream split over them loses nothing, and pings to an address both VNets hold stay in the VNet they were sent in")
    func overlapping() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try Self.overlappingTopology(directory)
        let topology = try Topology.load(file)
        let lab = try Lab.up(topology: topology, file: file, runID: freshRunID(), shaper: .tbf)
        defer { lab.down() }
        let transit = { (vnet: Int) in lab.plan.transitLinks.filter { $0.vnet == vnet }.map { [$0.aAddress.description, $0.bAddress.description] } }
        #expect(transit(0) == transit(1) && transit(0).first == ["10.0.0.1", "10.0.0.2"], "\(transit(0)) \(transit(1))")
        try lab.waitForRouting(timeout: 60)
        let receiver = topology.receiverAddress
        func via(_ node: String) -> String? { lab.nextHop(node: node, to: receiver).flatMap { lab.neighbour(of: node, at: $0) } }
        #expect(via("in1") == "p11" && via("in2") == "p21")

        // 10.0.0.2 is p11's (VNet 1) and p21's (VNet 2): pinged from in1, VNet 1's answers, and
        // nothing reaches VNet 2's p21.
        func received(_ node: String, _ interface: String) throws -> Int {
            struct Link: Decodable {
                struct Stats: Decodable { struct RX: Decodable { var packets: Int }; var rx: RX }
                var stats64: Stats
            }
            let json = try runProcess(["ip", "-n", lab.plan.namespace(node), "-j", "-s", "link", "show", interface]).stdout
            return try JSONDecoder().decode([Link].self, from: Data(json.utf8)).first?.stats64.rx.packets ?? -1
        }
        let before = try received("p21", "in2")
        let ping = try runProcess(["ip", "netns", "exec", lab.plan.namespace("in1"), "ping", "-c", "50", "-i", "0.01", "-W", "1", "-q", "10.0.0.2"])
        #expect(ping.status == 0 && ping.stdout.contains("50 received"), "\(ping.summary)")
        let after = try received("p21", "in2")
        // OSPF's hellos (every 5 s) may arrive meanwhile, never 50 pings.
        #expect(after - before < 5, "VNet 2's p21 received \(after - before) packets during 50 pings in VNet 1")

        // The isolation command on this lab: nothing leaks from either VNet, and each VNet's
        // own links count its flood (the control), on this machine whose underlay is not watched.
        let isolation = try runProcess([vnetstreamBinary, "lab", "isolation", "--id", lab.runID, "--datagrams", "5", "--json"])
        #expect(isolation.status == 0, "\(isolation.summary)")
        let floods = try JSONDecoder().decode([IsolationFlood].self, from: Data(isolation.stdout.utf8))
        #expect(floods.map(\.vnet) == ["vnet1", "vnet2"] && floods.allSatisfy { $0.leaked == 0 && $0.ownHops > 0 && !$0.underlayWatched }, "\(floods)")

        let receiverProcess = try BackgroundProcess(
            ["ip", "netns", "exec", lab.plan.namespace("dst"), vnetstreamBinary, "recv", "--json-file", directory + "/r.json", "--idle-timeout", "3",
             "--linger", "0.5"])
        defer { receiverProcess.stop() }
        usleep(300_000)
        let sent = try runProcess(
            ["ip", "netns", "exec", lab.plan.namespace("src"), vnetstreamBinary, "send", "--vnet", "tun0", "--vnet", "tun1", "--to", "\(receiver):5004",
             "--cbr", "400kbit", "--duration", "3", "--split", "1:1", "--json"])
        #expect(sent.status == 0, "\(sent.summary)")
        _ = receiverProcess.wait(timeout: 20)
        let result = try JSONDecoder().decode(ReceiverResult.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/r.json")))
        let report = try #require(result.streams.first)
        #expect(report.total.sent == 150 && report.total.lost == 0, "\(report.markdown)")
    }
}
