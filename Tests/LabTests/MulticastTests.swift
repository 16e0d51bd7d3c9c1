import Accounting
import Foundation
import Packets
import RunRecords
import Streaming
import TestSupport
import Testing

@testable import Lab

let multicastTopology = repositoryRoot + "/Experiments/topologies/paper-fig6-multicast.toml"

@Suite("Multicast in a VNet: the plan (no root needed)")
struct MulticastPlanTests {
    @Test("the group's tree follows OSPF cost from the sender: in1 copies to p11 and p12, p11 to out1, out1 to the receiver; members keep theirs")
    func tree() throws {
        let plan = try LabPlan(topology: try Topology.load(multicastTopology), runID: "t", shaper: .tbf)
        let hops = try plan.multicastHops()
        let byNode = Dictionary(uniqueKeysWithValues: hops.map { ($0.node, $0) })
        #expect(Set(byNode.keys) == ["src", "in1", "p11", "p12", "out1", "dst"], "\(byNode.keys.sorted())")
        #expect(byNode["src"]?.from == "tun0" && byNode["src"]?.to.map(\.interface) == ["vnet1"])
        #expect(Set(byNode["in1"]?.to.map(\.interface) ?? []) == ["p11", "p12"] && byNode["in1"]?.member == false)
        #expect(byNode["p11"]?.to.map(\.interface) == ["out1"] && byNode["p11"]?.from == "in1")
        #expect(byNode["out1"]?.to.map(\.interface) == ["rcv"] && byNode["out1"]?.member == true && byNode["out1"]?.from == "p11")
        #expect(byNode["p12"]?.to.isEmpty == true && byNode["p12"]?.member == true)
        // The next hop of each copy is the neighbour's address on that link.
        let p11Link = try #require(plan.links.first { $0.a == .init(node: "in1", interface: "p11") })
        #expect(byNode["in1"]?.to.first { $0.interface == "p11" }?.nextHop == p11Link.bAddress)
        let rules = try #require(try plan.multicastRules(node: "in1"))
        #expect(rules.contains("iifname \"snd\" ip daddr 239.1.1.1 counter dup to \(p11Link.bAddress) device \"p11\""), "\(rules)")
        #expect(rules.contains("counter drop") && !rules.contains("counter accept"), "in1 is no member: \(rules)")
        #expect(try plan.multicastRules(node: "out1")?.contains("counter accept") == true)
        #expect(try plan.multicastRules(node: "in2") == nil, "VNet 2 carries no group")
    }

    @Test("bad groups are refused naming the VNet and what is wrong")
    func refused() throws {
        let text = try String(contentsOfFile: multicastTopology, encoding: .utf8)
        for (bad, expected) in [
            (text.replacingOccurrences(of: "\"239.1.1.1\"", with: "\"224.0.0.5\""), "not a routable IPv4 multicast address"),
            (text.replacingOccurrences(of: "\"239.1.1.1\"", with: "\"10.0.0.1\""), "not a routable IPv4 multicast address"),
            (text.replacingOccurrences(of: "[\"p12\", \"out1\", \"dst\"]", with: "[\"p21\"]"), "member 'p21' is neither one of its routers"),
            (text.replacingOccurrences(of: "[\"p12\", \"out1\", \"dst\"]", with: "[]"), "has no members"),
        ] {
            let file = try makeTemporaryDirectory() + "/bad.toml"
            defer { try? FileManager.default.removeItem(atPath: (file as NSString).deletingLastPathComponent) }
            try bad.write(toFile: file, atomically: true, encoding: .utf8)
            #expect {
                _ = try Topology.load(file)
            } throws: { "\($0)".contains(expected) && "\($0)".contains("VNet vnet1") }
        }
        #expect(IPv4Address("239.255.255.255")!.isRoutableMulticast && !IPv4Address("224.0.0.251")!.isRoutableMulticast)
    }
}

@Suite("Multicast in a VNet, for real (root, namespaces, nftables dup)", .serialized, .timeLimit(.minutes(3)))
struct MulticastLabTests {
    @Test("a stream sent to 239.1.1.1 reaches all three members whole (receivers that joined the group), each copy once; nothing of it enters VNet 2; nothing left after down")
    func threeMembers() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(multicastTopology), file: multicastTopology, runID: id)
        defer { lab.down() }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let members = ["p12", "out1", "dst"]
        let receivers = try members.map { member in
            try BackgroundProcess(
                ["ip", "netns", "exec", lab.plan.namespace(member), vnetstreamBinary, "recv", "--join", "239.1.1.1", "--interval", "5",
                 "--idle-timeout", "3", "--start-timeout", "30", "--json-file", "\(directory)/\(member).json"])
        }
        defer { for receiver in receivers { receiver.stop() } }
        Thread.sleep(forTimeInterval: 1)
        let sender = try runProcess(
            ["ip", "netns", "exec", lab.plan.namespace("src"), vnetstreamBinary, "send", "--cbr", "1mbit", "--fps", "100", "--mode", "uni",
             "--duration", "3", "--vnet", "tun0", "--to", "239.1.1.1:5004"])
        #expect(sender.status == 0, "\(sender.summary)")
        for (member, receiver) in zip(members, receivers) {
            let result = receiver.wait(timeout: 30)
            #expect(result.status == 0, "\(member): \(result.summary)")
            let report = try #require(try JSONDecoder().decode(ReceiverResult.self, from: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(member).json"))).report)
            let path = try #require(report.paths.first)
            #expect(report.total.sent == 300 && path.received == 300 && path.lost == 0 && path.duplicates == 0, "\(member): \(report.total), \(path)")
        }
        // in1 dropped the original of each packet after its two copies; VNet 2 has no table.
        let in1 = try Command.run(["ip", "netns", "exec", lab.plan.namespace("in1"), "nft", "list", "table", "ip", "vnetmcast"])
        #expect(in1.contains("counter packets 30") && in1.contains("drop"), "\(in1)")
        let in2 = try Command.run(["ip", "netns", "exec", lab.plan.namespace("in2"), "nft", "list", "tables"])
        #expect(!in2.contains("vnetmcast"), "\(in2)")
        let vnet2 = try Command.run(["ip", "-n", lab.plan.namespace("dst"), "-s", "-j", "link", "show", "dev", "vnet2"])
        let packets = try #require(((try JSONSerialization.jsonObject(with: Data(vnet2.utf8)) as? [[String: Any]])?.first?["stats64"] as? [String: Any])?["rx"] as? [String: Any])
        #expect((packets["packets"] as? Int ?? 0) < 50, "the receiver's VNet 2 link took \(packets) (hellos only)")
        lab.down()
        #expect(try leftovers(id).isEmpty)
    }
}
