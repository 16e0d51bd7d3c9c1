import Foundation
import RunRecords
import TestSupport
import Testing
import Voice

@testable import Lab

let shadowTopology = repositoryRoot + "/Tests/LabTests/Fixtures/shadow-pair.toml"

@Suite("Shadow VNets as plans (no root needed)")
struct ShadowPlanTests {
    @Test("[[shadow]] clones its VNet with renamed routers and tun and only the changes it names; entry dup and exit set as rules")
    func clone() throws {
        let topology = try Topology.load(shadowTopology)
        #expect(topology.vnets.map(\.name) == ["voice", "voiceb"])
        let shadow = topology.vnets[1]
        #expect(shadow.routers == ["a1s", "a2s"] && shadow.tun == "tun0s" && shadow.shadowOf == "voice")
        #expect(shadow.links.map(\.endpoints) == [["a1s:a2", "a2s:a1"]] && shadow.links[0].cost == 20)
        #expect(topology.shadowPairs.map { [$0.shadow, $0.production] } == [[1, 0]])
        let plan = try LabPlan(topology: topology, runID: "s1", shaper: .tbf)
        let entry = try #require(plan.shadowEntryRules())
        #expect(entry.contains("oifname \"vnet1\" ip daddr 198.18.100.1 counter dup to") && entry.contains("device \"vnet2\""))
        let exit = try #require(plan.shadowExitRules(production: ["voice"], create: true))
        #expect(exit.contains("iifname @standby counter drop") && exit.hasSuffix("add element ip vnetshadow standby { \"vnet2\" }\n"))
        #expect(plan.shadowExitRules(production: ["voiceb"], create: false) == "flush set ip vnetshadow standby\nadd element ip vnetshadow standby { \"vnet1\" }\n")
        // Written and read back (a lab's state): the clone stays one VNet.
        let again = try JSONDecoder().decode(Topology.self, from: JSONEncoder().encode(topology))
        #expect(again.vnets.count == 2)
    }

    @Test("bad shadows are refused: an unknown VNet, a cost on no link, two shadows of one VNet")
    func refusals() throws {
        let text = try String(contentsOfFile: shadowTopology, encoding: .utf8)
        func refusal(_ extra: String, replacing: (String, String)? = nil) throws -> String {
            let directory = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            var source = text + extra
            if let (from, to) = replacing { source = source.replacingOccurrences(of: from, with: to) }
            try source.write(toFile: directory + "/t.toml", atomically: true, encoding: .utf8)
            do {
                _ = try Topology.load(directory + "/t.toml")
                return ""
            } catch { return "\(error)" }
        }
        #expect(try refusal("", replacing: ("of = \"voice\"", "of = \"video\"")).contains("no VNet 'video' to clone"))
        #expect(try refusal("", replacing: ("\"a1:a2\" = 20", "\"a2:a9\" = 20")).contains("no link of voice starts there"))
        #expect(try refusal("\n[[shadow]]\nname = \"voicec\"\nof = \"voice\"\nsuffix = \"c\"\n").contains("more than one shadow"))
    }
}

@Suite("Shadow VNets, for real (root, namespaces, nftables dup, bird2)", .serialized, .timeLimit(.minutes(3)))
struct ShadowLabTests {
    @Test("a call into the production VNet is copied into its shadow and reaches the receiver once; promote under traffic and back: nothing lost, nothing twice")
    func promoteUnderTraffic() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(shadowTopology), file: shadowTopology, runID: id, shaper: .tbf)
        defer { lab.down() }
        try lab.waitForRouting(timeout: 60)
        let plan = lab.plan
        #expect(lab.state.production == ["voice": "voice"])
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let receiver = try BackgroundProcess(
            ["ip", "netns", "exec", plan.namespace("dst"), vnetstreamBinary, "voice", "recv", "--listen", "198.18.100.1:5010", "--bin", "1s",
             "--idle-timeout", "1", "--json-file", directory + "/call.json"])
        defer { receiver.stop() }
        usleep(300_000)
        let sender = try BackgroundProcess(
            ["ip", "netns", "exec", plan.namespace("src"), vnetstreamBinary, "voice", "send", "--to", "198.18.100.1:5010", "--duration", "4", "--tt", "EF"])
        defer { sender.stop() }
        usleep(1_300_000)
        let toShadow = try lab.promote(vnet: "voiceb")
        #expect(lab.state.production == ["voice": "voiceb"] && toShadow.standby == "voice")
        usleep(1_300_000)
        let back = try lab.promote(vnet: "voice")
        #expect(back.production == "voice")
        #expect(throws: LabError.self) { try lab.promote(vnet: "nope") }
        #expect(sender.wait(timeout: 20).status == 0)
        #expect(receiver.wait(timeout: 20).status == 0)
        let report = try JSONDecoder().decode(VoiceReport.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/call.json")))
        #expect(report.expected == 200 && report.received == 200 && report.lost == 0 && report.duplicates == 0, "\(report.expected) expected, \(report.received) received, \(report.duplicates) twice")
        // Both VNets carried the call all along: the exit dropped the standby's 200 copies.
        #expect(try lab.standbyDrops() == 200)
        print("promotions took \(toShadow.tookMs) and \(back.tookMs) ms")
        lab.down()
        #expect(try leftovers(id).isEmpty)
    }

    @Test("promote the shadow, then retire the old VNet under traffic: the call goes on through the shadow alone, nothing lost or twice; its namespaces are gone")
    func retireUnderTraffic() throws {
        let id = freshRunID()
        let lab = try Lab.up(topology: try Topology.load(shadowTopology), file: shadowTopology, runID: id, shaper: .tbf)
        defer { lab.down() }
        try lab.waitForRouting(timeout: 60)
        let plan = lab.plan
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let receiver = try BackgroundProcess(
            ["ip", "netns", "exec", plan.namespace("dst"), vnetstreamBinary, "voice", "recv", "--listen", "198.18.100.1:5010", "--idle-timeout", "1",
             "--json-file", directory + "/call.json"])
        defer { receiver.stop() }
        usleep(300_000)
        let sender = try BackgroundProcess(
            ["ip", "netns", "exec", plan.namespace("src"), vnetstreamBinary, "voice", "send", "--to", "198.18.100.1:5010", "--duration", "4", "--tt", "EF"])
        defer { sender.stop() }
        usleep(1_000_000)
        #expect(throws: LabError.self) { try lab.retire(vnet: "voice") }
        try lab.promote(vnet: "voiceb")
        usleep(500_000)
        let removed = try lab.retire(vnet: "voice")
        #expect(removed.count == 2 && lab.state.retired == ["voice"], "\(removed)")
        #expect(sender.wait(timeout: 20).status == 0)
        #expect(receiver.wait(timeout: 20).status == 0)
        let report = try JSONDecoder().decode(VoiceReport.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/call.json")))
        #expect(report.expected == 200 && report.received == 200 && report.lost == 0 && report.duplicates == 0, "\(report.received) of \(report.expected), \(report.lost) lost, \(report.duplicates) twice, bins \(report.bins.map(\.lost))")
        let namespaces = try runProcess(["ip", "netns", "list"]).stdout
        #expect(!namespaces.contains(plan.namespace("a1") + " ") && !namespaces.contains(plan.namespace("a1") + "\n"))
        #expect(lab.kernelSnapshot(label: "after", atS: 0).failures.isEmpty, "the retired routers are not read")
        lab.down()
        #expect(try leftovers(id).isEmpty)
    }
}
