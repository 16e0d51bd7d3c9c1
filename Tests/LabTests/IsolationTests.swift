import Foundation
import Lab
import TestSupport
import Testing

/// Issue 19's isolation proof, for real: both VNets number their links from 10.0.0.0/24, their
/// routers are spread over three emulated hosts (VXLAN between them), and a flood from inside
/// each VNet is counted on every interface of the lab, in every host's namespace and across
/// the underlay's bridge.
@Suite("isolation over hosts: a flood from inside a VNet reaches nothing outside it", .serialized)
struct IsolationTests {
    @Test("overlapping 10.0.0.0/24 in both VNets over three hosts: a flood from each VNet to the other's addresses, the underlay's and 198.18.0.0/15 outside the lab leaks 0 packets, while the VNet's own links carry it where it routes the address itself; the counters are removed")
    func floodOverHosts() throws {
        let id = freshRunID()
        let directory = try makeTemporaryDirectory("vnetstream-isolation")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let text = try String(contentsOfFile: LabOverHostsTests.topologyFile, encoding: .utf8)
            .replacingOccurrences(of: "tun = \"tun0\"\n", with: "tun = \"tun0\"\naddress_space = \"10.0.0.0/24\"\n")
            .replacingOccurrences(of: "tun = \"tun1\"\n", with: "tun = \"tun1\"\naddress_space = \"10.0.0.0/24\"\n")
        let file = try writeFile(directory, "overlap-hosts.toml", text)
        let lab = try Lab.up(topology: try Topology.load(file), file: file, runID: id, shaper: .tbf)
        defer { lab.down() }
        let hosts = try #require(lab.emulated)
        try lab.waitForRouting(timeout: 60)

        for vnet in 0..<2 {
            let flood = try lab.floodIsolation(from: vnet, datagrams: 10)
            let label = "\(flood.vnet): \(flood.leaks) own \(flood.ownHops) of \(flood.attempted) attempted"
            #expect(flood.underlayWatched)
            #expect(flood.destinations["other VNets"]?.contains("10.0.0.2") == true, "\(flood.destinations)")
            #expect(flood.destinations["underlay"]?.count == 4 && flood.destinations["outside the lab"]?.isEmpty == false, "\(flood.destinations)")
            #expect(flood.attempted == 4 * 13 * flood.destinations.values.reduce(0) { $0 + $1.count }, "\(label)")
            // The addresses both VNets hold are routed in the flooding VNet: its own links carry
            // the flood (so the counters do count it), and nothing else sees a packet of it.
            #expect(flood.ownHops > 100, "\(label)")
            #expect(flood.leaked == 0, "\(label)")
            recordTiming("isolation flood from \(flood.vnet) over three hosts: leaked", Double(flood.leaked), "packets", bound: "0 of \(flood.attempted) attempted")
            recordTiming("isolation flood from \(flood.vnet) over three hosts: counted on its own links", Double(flood.ownHops), "packet-hops", bound: "> 100")
        }
        // A leak made on purpose is found: a stray veth from in1 (VNet 1) to in2 (VNet 2), both
        // on h1, and a route in in1 for an address outside the lab through it.
        let h1Host = hosts.hosts[0]
        let (in1, in2) = (lab.plan.namespace("in1"), lab.plan.namespace("in2"))
        let outside = try #require(try lab.floodIsolation(from: 0, datagrams: 1).destinations["outside the lab"]?.first)
        for argv in [
            ["ip", "-n", in1, "link", "add", "stray", "type", "veth", "peer", "name", "stray", "netns", in2],
            ["ip", "-n", in1, "addr", "add", "198.19.250.1/30", "dev", "stray"], ["ip", "-n", in2, "addr", "add", "198.19.250.2/30", "dev", "stray"],
            ["ip", "-n", in1, "link", "set", "stray", "up"], ["ip", "-n", in2, "link", "set", "stray", "up"],
            ["ip", "-n", in1, "route", "add", "\(outside)/32", "via", "198.19.250.2"],
        ] { try h1Host.run(argv) }
        let leaking = try lab.floodIsolation(from: 0, datagrams: 10)
        _ = try? h1Host.run(["ip", "-n", in1, "link", "del", "stray"])
        let places = leaking.leaks.map(\.place)
        #expect(places.contains { $0.hasPrefix("in1:") } && places.contains { $0.hasPrefix("in2:") }, "\(leaking.leaks)")
        #expect(leaking.leaked == 2 * 13, "\(leaking.leaks)")
        recordTiming("isolation flood with a stray veth from VNet 1 to VNet 2: leaked", Double(leaking.leaked), "packets", bound: "26 (13 out of in1, 13 into in2), at \(places.count) places")
        // The counters are gone from the nodes (seen on their host, over ssh) and the hosts.
        let p11 = try hosts.hosts[1].run(["ip", "netns", "exec", lab.plan.namespace("p11"), "nft", "list", "tables"])
        let h1 = try runProcess(["ip", "netns", "exec", hosts.namespace(ofHost: 0), "nft", "list", "tables"]).stdout
        #expect(!p11.contains(IsolationFlood.table) && !h1.contains(IsolationFlood.table), "\(p11) \(h1)")
        lab.down()
        #expect(try leftovers(id).isEmpty && (try HostsTests.namespaces(id)).isEmpty)
    }
}
