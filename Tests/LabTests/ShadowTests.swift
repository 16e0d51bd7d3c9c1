import Foundation
import Packets
import RunRecords
import TestSupport
import Testing
import Units
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
        let exit = try #require(plan.shadowExitRules(standby: plan.standbyVNets(production: ["voice"]), create: true))
        #expect(exit.contains("iifname @standby counter name \"standby\" drop") && exit.hasSuffix("add element ip vnetshadow standby { \"vnet2\" }\n"))
        #expect(exit.contains("@seen counter name \"copies\" drop") && exit.contains("timeout 1000ms"))
        #expect(plan.shadowExitRules(standby: plan.standbyVNets(production: ["voiceb"]), create: false) == "flush set ip vnetshadow standby\nadd element ip vnetshadow standby { \"vnet1\" }\n")
        #expect(plan.shadowExitRules(standby: [], create: false) == "flush set ip vnetshadow standby\n")
        // Written and read back (a lab's state): the clone stays one VNet.
        let again = try JSONDecoder().decode(Topology.self, from: JSONEncoder().encode(topology))
        #expect(again.vnets.count == 2)
    }

    @Test("schedule events switch VNets and set strict priority; the bands' tc lines under TBF and under netem; bad ones are refused")
    func switchEvents() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func load(_ events: String) throws -> Schedule {
            try ("name = \"t\"\n" + events).write(toFile: directory + "/s.toml", atomically: true, encoding: .utf8)
            return try Schedule.load(directory + "/s.toml")
        }
        let schedule = try load(
            "[[event]]\nat_s = 1\nvnet = \"voiceb\"\npriority = \"EF\"\n[[event]]\nat_s = 2\nvnet = \"voiceb\"\naction = \"promote\"\n"
                + "[[event]]\nat_s = 3\nvnet = \"voice\"\naction = \"retire\"\n[[event]]\nat_s = 4\nvnet = \"voiceb\"\npriority = \"none\"\n")
        #expect(schedule.events.map(\.change) == [.priority(TrafficMark(dscp: 46)), .promote, .retire, .priority(nil)])
        #expect(schedule.events.map(\.summary) == ["voiceb priority EF (TOS 0xb8)", "voiceb promote", "voice retire", "voiceb priority none"])
        for bad in ["path = \"P1\"\naction = \"promote\"", "vnet = \"voiceb\"\npriority = \"XX\"", "vnet = \"voiceb\"\npriority = \"EF\"\nrate = \"1mbit\"",
            "vnet = \"voiceb\"\naction = \"promote\"\nloss_pct = 1"]
        {
            #expect(throws: LabError.self, "\(bad)") { try load("[[event]]\nat_s = 1\n" + bad + "\n") }
        }
        // A shadow that has priority from the start ([[shadow]] priority = "EF"): its links' first qdiscs are the bands.
        let text = try String(contentsOfFile: shadowTopology, encoding: .utf8) + "priority = \"EF\"\n"
        try text.write(toFile: directory + "/p.toml", atomically: true, encoding: .utf8)
        let prioritised = try LabPlan(topology: try Topology.load(directory + "/p.toml"), runID: "s1", shaper: .tbf)
        #expect(prioritised.topology.vnets[1].priority == "EF" && prioritised.topology.vnets[0].priority == nil)
        #expect(prioritised.initialQdiscs(router: "a1s").contains { $0.contains("match ip dsfield 0xb8 0xfc flowid 2:1") })
        #expect(!prioritised.initialQdiscs(router: "a1").contains { $0.contains("htb") })
        // The shadow's links get the bands; the production's are untouched; none leaves the bands with nothing in the first.
        let plan = try LabPlan(topology: try Topology.load(shadowTopology), runID: "s1", shaper: .tbf)
        let change = try plan.change([schedule.events[0], schedule.events[1]], conditions: [:], blackholes: [:])
        let tc = change.commands.compactMap(\.input).joined()
        #expect(tc.contains("qdisc replace dev a2 root handle 1: tbf rate 10000000000bit") && tc.contains("parent 1:1 handle 2: htb default 2"))
        #expect(tc.contains("classid 2:1 htb rate 10gbit quantum 1514 prio 0") && tc.contains("match ip dsfield 0xb8 0xfc flowid 2:1"))
        #expect(change.commands.allSatisfy { !$0.argv.contains(plan.namespace("a1")) }, "the production VNet is not touched")
        let off = try plan.change([schedule.events[3]], conditions: change.conditions, blackholes: [:]).commands.compactMap(\.input).joined()
        #expect(off.contains("htb default 2") && off.contains("match ip dsfield 0x0 0xfc flowid 2:2"))
        var conditions = LinkConditions()
        conditions.rate = BitRate(bitsPerSecond: 20e6)
        conditions.delayMs = 10
        conditions.priorityTOS = 0xb8
        conditions.priorityBands = true
        let netem = InterfaceShaping(interface: "x", shaper: .netem, conditions: conditions).tcLines
        #expect(netem.count == 8 && netem[0].hasPrefix("qdisc replace dev x root handle 1: netem limit 10000 delay 10ms") && !netem[0].contains("rate"))
        #expect(netem[1].contains("parent 1:1 handle 2: tbf rate 20000000bit") && netem[2].contains("parent 2:1 handle 3: htb") && netem[7].hasSuffix("flowid 3:1"))
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
        // Both VNets carried the call all along: the exit dropped the standby's 200 copies, as
        // standby or, while both passed at each switch, as second copies.
        let drops = try lab.exitDrops()
        #expect(drops.standby + drops.copies == 200 && drops.copies > 50, "\(drops)")
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
        // As a schedule has them: strict priority for EF on the shadow, the switch, the removal.
        let events = try Schedule(
            name: "t", events: [.init(atS: 0, target: .vnet("voiceb"), change: .priority(TrafficMark(parsing: "EF"))), .init(atS: 0, target: .vnet("voiceb"), change: .promote)])
        try lab.apply(events.events)
        #expect(lab.state.production == ["voice": "voiceb"])
        let qdiscs = try runProcess(["tc", "-n", plan.namespace("a1s"), "qdisc", "show", "dev", "a2"]).stdout
        let filters = try runProcess(["tc", "-n", plan.namespace("a1s"), "filter", "show", "dev", "a2", "parent", "2:"]).stdout
        #expect(qdiscs.contains("htb 2: parent 1:1") && filters.contains("match 00b80000/00fc0000") && filters.contains("flowid 2:1"), "\(qdiscs)\n\(filters)")
        let removed = try lab.apply([.init(atS: 0, target: .vnet("voice"), change: .retire)])
        #expect(removed.count == 1 && removed[0].hasPrefix("retire voice: namespace") && lab.state.retired == ["voice"], "\(removed)")
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
