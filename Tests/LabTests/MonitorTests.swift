import Foundation
import Monitoring
import Packets
import RunRecords
import TestSupport
import Testing
import Units

@testable import Experiment
@testable import Lab

let monitorChainTopology = repositoryRoot + "/Tests/LabTests/Fixtures/monitor-chain.toml"

@Suite("Monitoring VNets as plans and pure units (no root needed)")
struct MonitorPlanTests {
    @Test("a Moni per watched router, chained to the collector; copies by u32 mirred or nft dup on every port; the router gets no address")
    func plan() throws {
        let plan = try LabPlan(topology: try Topology.load(monitorChainTopology), runID: "m1", shaper: .tbf)
        let monitoring = plan.monitoring
        #expect(monitoring.monis.map(\.node) == ["mon_r1", "mon_r2", "mon_r3", "mon_q1", "mon_q2"])
        #expect(plan.nodes.suffix(6) == ["mon_r1", "mon_r2", "mon_r3", "mon_q1", "mon_q2", "mon_col"])
        // Chains: collector m1 - r1's Moni - r2's - r3's; collector m2 - q1's - q2's.
        #expect(monitoring.links.map { "\($0.a)-\($0.b)" } == [
            "mon_col:m1-mon_r1:up", "mon_r1:down-mon_r2:up", "mon_r2:down-mon_r3:up", "mon_col:m2-mon_q1:up", "mon_q1:down-mon_q2:up",
        ])
        #expect(monitoring.collector == UDPEndpoint(address: monitoring.links[0].aAddress, port: 6343))
        let commands = monitoring.buildCommands(ports: plan.routerInterfaces(of:), namespace: plan.namespace)
        let text = commands.map { $0.joined(separator: " ") }
        // The media word: magic `VN`, this build's wire version, kind 1.
        let media = "0x" + String(UInt32(Wire.magic) << 16 | UInt32(Wire.version) << 8 | UInt32(Wire.Kind.media.rawValue), radix: 16)
        #expect(text.contains("tc -n vlm1-r2 filter add dev r1 ingress protocol ip pref 10 u32 match ip protocol 17 0xff match u32 \(media) 0xffffffff at 28 action mirred egress mirror dev mon"))
        #expect(text.contains("tc -n vlm1-q1 qdisc add dev mon root tbf rate 300000bit burst 65536 limit 131072"))
        #expect(!text.contains { $0.contains("vlm1-r1 qdisc add dev mon") }, "unshaped unless mirror_rate says")
        #expect(!text.contains { $0.contains("vlm1-q1 filter") }, "the nft method adds no tc filter")
        #expect(!text.contains { $0.contains("addr add") && $0.contains("dev mon") }, "the router's mirror port has no address")
        #expect(text.filter { $0.contains("route add default") }.count == 5)
        let rules = try #require(monitoring.nftRules(router: "q1", ports: plan.routerInterfaces(of: "q1")))
        #expect(rules.contains("chain in_q2 {") && rules.contains("chain out_q2 {") && rules.contains("type filter hook egress device \"q2\""))
        #expect(rules.contains("dup to \"mon\""))
        #expect(monitoring.nftRules(router: "r1", ports: ["r2"]) == nil)
    }

    @Test("bad monitors are refused with the file named: unknown VNet or router, a router watched twice, a bad traffic filter")
    func badMonitors() throws {
        let text = try String(contentsOfFile: monitorChainTopology, encoding: .utf8)
        func refusal(_ from: String, _ to: String) throws -> String {
            let directory = try makeTemporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = directory + "/t.toml"
            try text.replacingOccurrences(of: from, with: to).write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try Topology.load(path)
                return ""
            } catch { return "\(error)" }
        }
        #expect(try refusal("vnet = \"pair\"\nmethod", "vnet = \"nope\"\nmethod").contains("no VNet 'nope'"))
        #expect(try refusal("vnet = \"chain\"\nmethod = \"tc\"", "vnet = \"chain\"\nrouters = [\"r1\", \"q1\"]").contains("'q1' is not one of its routers"))
        #expect(try refusal("direction = \"both\"", "direction = \"both\"\ntraffic = \"dscp:XX\"").contains("a DSCP is a name"))
        #expect(try refusal("method = \"nft\"", "method = \"pcap\"").contains("pcap"))
        #expect(try refusal("mirror_rate", "mirror_rat").contains("did you mean 'mirror_rate'"))
        #expect(try MirrorFilter(parsing: "dscp:EF") == .dscp(46))
        #expect(try MirrorFilter(parsing: "port:5004").bpf == "udp dst port 5004")
    }

    @Test("ranges of sequence numbers: repeats and gaps; a summary split into parts keeps every range")
    func ranges() {
        #expect(SeenRanges.ranges(of: [5, 1, 2, 2, 3, 9, 10, UInt32.max, UInt32.max]) == [[1, 3], [5, 5], [9, 10], [UInt32.max, UInt32.max]])
        let seen = (0..<7).map { path in SeenRanges(port: "p", hook: "in", stream: 1, path: UInt8(path), ranges: (0..<500).map { [UInt32($0 * 3), UInt32($0 * 3 + 1)] }) }
        let summary = MirrorSummary(node: "n", router: "r", vnet: "v", interval: 0, startS: 0, endS: 1, seen: seen)
        let parts = summary.split(maximumRanges: 1200)
        #expect(parts.count == 3 && parts.allSatisfy { $0.parts == 3 })
        #expect(parts.flatMap(\.seen).flatMap(\.numbers).count == 7 * 1000)
    }

    /// An Ethernet frame carrying a media packet of path `path`, number `seq`.
    func frame(to dst: [UInt8], from src: [UInt8], path: UInt8, seq: UInt32) -> [UInt8] {
        let header = MediaHeader(
            streamID: 7, streamSequence: seq, pathSequence: seq, frameNumber: seq, sendTimeNanoseconds: 1, fragmentIndex: 0, fragmentCount: 1,
            pathID: path, frameType: UInt8(ascii: "I"), mark: 0)
        var packet = [UInt8](repeating: 0, count: IPv4UDP.headerSize)
        packet[0] = 0x45
        let length = IPv4UDP.headerSize + MediaHeader.size
        packet[2] = UInt8(length >> 8)
        packet[3] = UInt8(length & 0xff)
        packet[9] = 17
        return dst + src + [0x08, 0x00] + packet + header.encoded
    }

    @Test("the observer tells ports and hooks apart by MAC, counts flows and keeps each path's sequence numbers")
    func observer() {
        let p1: [UInt8] = [2, 0, 0, 0, 0, 1]
        let p2: [UInt8] = [2, 0, 0, 0, 0, 2]
        let other: [UInt8] = [2, 0, 0, 0, 0, 9]
        var observer = MirrorObserver(
            node: "mon_r", router: "r", vnet: "v", ports: [.init(name: "a", mac: p1), .init(parsing: "b=02:00:00:00:00:02")!], startS: 0)
        for seq: UInt32 in [0, 1, 2, 4] { frame(to: p1, from: other, path: 0, seq: seq).withUnsafeBytes { observer.observe(frame: $0) } }
        frame(to: other, from: p2, path: 0, seq: 1).withUnsafeBytes { observer.observe(frame: $0) }
        frame(to: other, from: other, path: 0, seq: 1).withUnsafeBytes { observer.observe(frame: $0) }
        let summary = observer.summary(endS: 1, droppedByKernel: 0)
        #expect(summary.copies == 6 && summary.unattributed == 1)
        #expect(summary.seen == [
            SeenRanges(port: "a", hook: "in", stream: 7, path: 0, ranges: [[0, 2], [4, 4]]),
            SeenRanges(port: "b", hook: "out", stream: 7, path: 0, ranges: [[1, 1]]),
        ])
        #expect(summary.flows.map(\.packets) == [4, 1])
        #expect(observer.summary(endS: 2, droppedByKernel: 0).copies == 0, "a fresh interval")
    }

    @Test("the locator places each loss on the link after the last hop that saw it; the egress and the link in; a missed copy is unchained")
    func locator() throws {
        let plan = try LabPlan(topology: try Topology.load(monitorChainTopology), runID: "m1", shaper: .tbf)
        let map = LocatedLoss.hopMap(plan)
        // 0-99 sent; 10 lost before r1, 20-22 on r1 -> r2, 30 on r2 -> r3, 40 on the egress;
        // 50 seen at r1 and r3 only (r2's copy missed), delivered.
        var seenAt: [UInt32: [String]] = [:]
        for seq: UInt32 in 0..<100 where seq != 10 {
            seenAt[seq] = ["r1:snd"]
            if !(20...22).contains(seq) { seenAt[seq]! += seq == 50 ? [] : ["r2:r1"] }
            if !(20...22).contains(seq) && seq != 30 { seenAt[seq]! += ["r3:r2"] }
        }
        let received = Set((0..<100).filter { ![10, 20, 21, 22, 30, 40].contains($0) }.map(UInt32.init))
        let (links, path) = LossLocator.locate(path: 0, sent: Array(0..<100), received: received, seenAt: seenAt, map: map)
        func lost(_ from: String) -> Int? { links.first { $0.from == from }?.lost }
        #expect(lost("src:vnet1") == 1)
        #expect(lost("r1:r2") == 3)
        #expect(lost("r2:r3") == 1)
        #expect(lost("r3:rcv") == 1)
        // 99 reached r1; 95 arrived at r2 as a chain, 3 were lost, and 50 skipped r2's view.
        #expect(links.first { $0.from == "r1:r2" }?.packets == 98)
        #expect(path == LossLocator.PathLoss(path: 1, sent: 100, received: 94, located: 6, unchained: 1))
    }
}
