import Foundation
import Lab
import RunRecords
import TestSupport
import Testing

/// Hosts reached over ssh, for real: emulated hosts are namespaces on an underlay bridge, each
/// with its own sshd and keys the test makes.
@Suite("hosts over ssh (emulated: namespaces with their own sshd)", .serialized)
struct HostsTests {
    static func namespaces(_ id: String) throws -> [String] {
        try runProcess(["ip", "netns", "list"]).stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }.filter { $0.hasPrefix("vh\(id)-") }
    }

    static func sshds(_ directory: String) throws -> [String] {
        try runProcess(["pgrep", "-af", "sshd -f \(directory)/"]).stdout.split(separator: "\n").map(String.init)
    }

    @Test("three hosts: commands run in each host's own namespace over ssh, input passes, failures name the host, the command and its stderr; down leaves nothing")
    func threeHosts() throws {
        let id = freshRunID()
        let directory = try makeTemporaryDirectory("vnetstream-hosts")
        let hosts = try EmulatedHosts(runID: id, count: 3, directory: directory)
        defer {
            hosts.down()
            try? FileManager.default.removeItem(atPath: directory)
        }
        #expect(try Self.namespaces(id).count == 5 && (try Self.sshds(directory)).count == 3)
        for (index, host) in hosts.hosts.enumerated() {
            // The command ran in that host's namespace: its only address is its underlay one.
            let addresses = try host.run(["ip", "-o", "-4", "addr", "show", "dev", "eth0"])
            #expect(addresses.contains("198.19.255.\(index + 1)/24"), "\(host.name): \(addresses)")
        }
        let h2 = hosts.hosts[1]
        #expect(try h2.run(["cat"], input: "through ssh's stdin\n") == "through ssh's stdin\n")
        // Words with spaces and quotes reach the remote command as they were.
        #expect(try h2.run(["printf", "%s|", "a b", "it's", "$HOME", ""]) == "a b|it's|$HOME||")
        do {
            try h2.run(["sh", "-c", "echo no such thing >&2; exit 3"])
            Issue.record("a failing command did not throw")
        } catch {
            let text = "\(error)"
            #expect(text.contains("host h2 (root@198.19.255.2)") && text.contains("exit 3") && text.contains("no such thing"), "\(text)")
        }
        // A command past its time limit is killed and named.
        let started = Date()
        #expect(throws: LabError.self) { try h2.run(["sleep", "30"], input: nil, timeout: 1) }
        #expect(Date().timeIntervalSince(started) < 10)
        // Several at once, in one session: each with its own input (quotes, $, and a line that
        // looks like the here-document's end pass as they are); a failure names its command.
        let h1 = hosts.hosts[0]
        let concurrent = Date()
        try h1.runConcurrently([
            (["sleep", "0.3"], nil), (["sh", "-c", "cat > \(directory)/a"], "first\nline\n"),
            (["sh", "-c", "cat > \(directory)/b"], "it's $HOME\nVNETSTREAM_INPUT_2\n"), (["sleep", "0.3"], nil),
        ])
        #expect(Date().timeIntervalSince(concurrent) < 3)
        #expect(try String(contentsOfFile: directory + "/a", encoding: .utf8) == "first\nline\n")
        #expect(try String(contentsOfFile: directory + "/b", encoding: .utf8) == "it's $HOME\nVNETSTREAM_INPUT_2\n")
        do {
            try h1.runConcurrently([(["true"], nil), (["sh", "-c", "echo bad thing >&2; exit 4"], nil), (["true"], nil)])
            Issue.record("a failing command among several did not throw")
        } catch {
            let text = "\(error)"
            #expect(text.contains("host h1") && text.contains("exit 4") && text.contains("bad thing") && text.contains("echo bad thing"), "\(text)")
        }
        // The session started ahead runs the same script when the commands come.
        let waiting = h1.startWaiting([["sh", "-c", "cat > \(directory)/c"]])
        try waiting.run([(["sh", "-c", "cat > \(directory)/c"], "ahead\n"), (["true"], nil)], timeout: 10)
        #expect(try String(contentsOfFile: directory + "/c", encoding: .utf8) == "ahead\n")
        // The same vnetstream on every host, checked by version.
        let version = try runProcess([vnetstreamBinary, "--version"]).stdout
        try hosts.hosts[2].checkVersion(binary: vnetstreamBinary, expected: version)
        #expect(throws: LabError.self) { try hosts.hosts[2].checkVersion(binary: vnetstreamBinary, expected: "0.0.0") }

        hosts.down()
        #expect(try Self.namespaces(id).isEmpty && (try Self.sshds(directory)).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("a host that cannot be reached fails at once, naming the host and ssh's own stderr")
    func unreachable() throws {
        let id = freshRunID()
        let directory = try makeTemporaryDirectory("vnetstream-hosts")
        let hosts = try EmulatedHosts(runID: id, count: 1, directory: directory)
        defer {
            hosts.down()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let reachable = hosts.hosts[0]
        // An underlay address nothing answers on (no route beyond the /24: refused or timed out).
        for destination in ["root@198.19.255.99", "root@198.19.255.254"] {
            let gone = SSHHost(
                name: "h9", destination: destination, identity: reachable.identity, knownHosts: reachable.knownHosts, connectTimeout: 2,
                launcher: reachable.launcher)
            let started = Date()
            do {
                try gone.run(["true"])
                Issue.record("\(destination): an unreachable host did not throw")
            } catch {
                let text = "\(error)"
                #expect(text.contains("host h9 (\(destination)) could not be reached over ssh: ") && text.contains("ssh: connect to host"), "\(text)")
            }
            #expect(Date().timeIntervalSince(started) < 8, "\(destination): within the connect timeout and a margin")
        }
    }
}

@Suite("a link across hosts (VXLAN over the emulated underlay)", .serialized)
struct CrossHostLinkTests {
    @Test("a VXLAN link between nodes on two hosts: made in each host's namespace and moved into the node's, it carries packets up to its MTU (the underlay's less 50) and no more; removed with nothing left")
    func vxlanLink() throws {
        let id = freshRunID()
        let directory = try makeTemporaryDirectory("vnetstream-hosts")
        let hosts = try EmulatedHosts(runID: id, count: 2, directory: directory)
        defer {
            hosts.down()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let (h1, h2) = (hosts.hosts[0], hosts.hosts[1])
        // Node namespaces are named by run id and host, so that two hosts' parts never collide
        // on one machine.
        let (link, mtu) = try hosts.linkedNodes(vni: 4242)
        let nodeA = link.a.namespace
        #expect(nodeA == "vl\(id)-h1-a" && link.b.namespace == "vl\(id)-h2-b")
        #expect(mtu == 1450)
        let details = try h1.run(["ip", "netns", "exec", nodeA, "ip", "-d", "link", "show", "l0"])
        #expect(details.contains("mtu 1450") && details.contains("vxlan id 4242") && details.contains("dstport 4789"), "\(details)")
        // Its UDP socket stayed on the underlay, in the host's namespace.
        let sockets = try h1.run(["ss", "-uln"])
        #expect(sockets.contains(":4789"), "\(sockets)")
        let fits = try runProcess(h1.sshArgv(["ip", "netns", "exec", nodeA, "ping", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", "\(mtu - 28)", "10.0.0.2"]))
        #expect(fits.status == 0 && fits.stdout.contains("3 received"), "\(fits.summary)")
        let tooBig = try runProcess(h1.sshArgv(["ip", "netns", "exec", nodeA, "ping", "-c", "1", "-W", "1", "-M", "do", "-s", "\(mtu - 27)", "10.0.0.2"]))
        #expect(tooBig.status != 0, "\(tooBig.summary)")
        // Nothing of the link in the hosts' own namespaces: the end moved.
        #expect(!(try h2.run(["ip", "-o", "link", "show"])).contains("vxl4242"))
        link.down(h1, h2)
        #expect(!(try h1.run(["ip", "netns", "exec", nodeA, "ip", "-o", "link", "show"])).contains("l0"))
        #expect(!(try h1.run(["ss", "-uln"])).contains(":4789"))
    }
}

@Suite("the paper's lab over three emulated hosts", .serialized)
struct LabOverHostsTests {
    static let topologyFile = repositoryRoot + "/Experiments/topologies/paper-fig6-hosts.toml"

    @Test("paper-fig6 with its routers on three hosts: namespaces named by host, every link between hosts a VXLAN pair at MTU 1450, OSPF converges over Pi,1 across them; down leaves nothing on any host")
    func paperOverHosts() throws {
        let id = freshRunID()
        let directory = try makeTemporaryDirectory("vnetstream-hosts")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let topology = try Topology.load(Self.topologyFile)
        // Hosts with ssh destinations and no way given to reach them: refused before anything is made.
        let text = try String(contentsOfFile: Self.topologyFile, encoding: .utf8)
            .replacingOccurrences(of: "name = \"h2\"\n", with: "name = \"h2\"\nssh = \"root@203.0.113.7\"\n")
        let remote = try writeFile(directory, "remote.toml", text)
        #expect(throws: LabError.self) { try Lab.up(topology: try Topology.load(remote), file: remote, runID: id, shaper: .tbf) }
        #expect(try leftovers(id).isEmpty && (try HostsTests.namespaces(id)).isEmpty)
        // Hosts without ssh destinations: the lab emulates them itself, and removes them with itself.
        let started = Date()
        let built = try Lab.up(topology: topology, file: Self.topologyFile, runID: id, shaper: .tbf)
        defer { built.down() }
        let hosts = try #require(built.emulated)
        #expect(built.plan.namespace("p11") == "vl\(id)-h2-p11" && built.plan.namespace("src") == "vl\(id)-h1-src")
        // in1 (h1) to p11 (h2) crosses hosts; in2's tun-side link to src stays on h1, a veth.
        // Seen on each host, over ssh, as on real machines: a node's namespace is mounted in its
        // host's mount namespace only (sshd runs in one of its own, as `ip netns exec` made it).
        let (h1, h2) = (hosts.hosts[0], hosts.hosts[1])
        let crossing = try h2.run(["ip", "-n", built.plan.namespace("p11"), "-d", "link", "show", "in1"])
        #expect(crossing.contains("vxlan id \(built.plan.vniBase)") && crossing.contains("mtu 1450"), "\(crossing)")
        let local = try h1.run(["ip", "-n", built.plan.namespace("in2"), "-d", "link", "show", "snd"])
        #expect(local.contains("veth") && !local.contains("vxlan"), "\(local)")
        #expect(throws: LabError.self, "h1 does not have h2's nodes") { try h1.run(["ip", "-n", built.plan.namespace("p11"), "link", "show"]) }
        // Seven of the eight transit links cross hosts (p22-out2 stays on h3); the access links
        // stay on their hosts.
        #expect(built.plan.crossHostLinks.count == 7, "\(built.plan.crossHostLinks.map(\.a.namespace))")
        // bird's files are written on the router's host: each host's /run/vnetstream is its own.
        #expect(try h2.run(["cat", built.directory + "/p11.conf"]).contains("protocol ospf"))
        #expect(throws: LabError.self, "h1 has no file of h2's router") { try h1.run(["cat", built.directory + "/p11.conf"]) }
        recordTiming("paper-fig6 over three emulated hosts: lab up (every command over ssh)", Date().timeIntervalSince(started), "s", bound: "none")
        let converged = try built.waitForRouting(timeout: 60)
        recordTiming("paper-fig6 over three emulated hosts: OSPF converged after lab up", converged, "s", bound: "60")
        let receiver = topology.receiverAddress
        func via(_ node: String) -> String? { built.nextHop(node: node, to: receiver).flatMap { built.neighbour(of: node, at: $0) } }
        // The first route may be the costlier path's, while Pi,1's adjacencies are still forming.
        let settle = Date()
        while !(via("in1") == "p11" && via("in2") == "p21") && Date().timeIntervalSince(settle) < 30 { usleep(200_000) }
        #expect(via("in1") == "p11" && via("in2") == "p21")

        // A stream across the hosts: the receiver in dst on h3, the sender in src on h1, each
        // started over ssh; the tuns took the VXLAN links' MTU, so no packet is too big for them.
        let h3 = hosts.hosts[2]
        let dst = built.plan.namespace("dst")
        let src = built.plan.namespace("src")
        #expect(try h1.run(["ip", "-n", src, "link", "show", "tun0"]).contains("mtu 1450"))
        let receiving = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var received: Result<String, Error> = .success("")
        Thread.detachNewThread {
            received = Result {
                try h3.run(
                    ["ip", "netns", "exec", dst, vnetstreamBinary, "recv", "--listen", "0.0.0.0:5004", "--interval", "2", "--idle-timeout", "3",
                     "--start-timeout", "30", "--linger", "0.5", "--json"], input: nil, timeout: 60)
            }
            receiving.signal()
        }
        var bound = false
        for _ in 0..<100 where !bound {
            bound = (try? h3.run(["ip", "netns", "exec", dst, "ss", "-Hlun", "sport = :5004"]))?.contains("5004") ?? false
            if !bound { usleep(50_000) }
        }
        #expect(bound, "the receiver on h3 did not bind")
        let sent = try h1.run(
            ["ip", "netns", "exec", src, vnetstreamBinary, "send", "--vnet", "tun0", "--vnet", "tun1", "--to", "\(receiver):5004", "--cbr", "400kbit",
             "--duration", "3", "--split", "1:1", "--json"], input: nil, timeout: 60)
        receiving.wait()
        let summary = try JSONDecoder().decode(SenderSummary.self, from: Data(sent.utf8))
        let result = try JSONDecoder().decode(ReceiverResult.self, from: Data(try received.get().utf8))
        let total = try #require(result.streams.first?.total)
        #expect(summary.mtu == 1450 && summary.vnets.allSatisfy { $0.packets > 0 }, "\(summary)")
        #expect(total.sent == summary.packets && total.lost == 0 && total.received == summary.packets, "\(total)")
        recordTiming("a stream over three emulated hosts (VXLAN links), lost", Double(total.lost), "packets", bound: "0 of \(total.sent)")
        // The kernel's counters, read in one ssh session per host: every router interface, and
        // VNet 1's ingress took in what the sender put into tun0.
        let snapshot = built.kernelSnapshot(label: "after", atS: 0)
        let interfaces = built.plan.routers.flatMap { router in built.plan.routerInterfaces(of: router).map { "\(router):\($0)" } }
        #expect(snapshot.failures.isEmpty && Set(snapshot.interfaces.keys) == Set(interfaces), "\(snapshot.failures) \(snapshot.interfaces.keys.sorted())")
        let intoVNet1 = snapshot.counters(Topology.Endpoint(node: "in1", interface: LabPlan.ingressInterface)).mediaIn
        #expect(intoVNet1 == summary.vnets[0].packets && intoVNet1 > 0, "in1:snd took \(intoVNet1), the sender put \(summary.vnets[0].packets) into tun0")

        // The command line on it, from another process: `lab exec` runs on the node's host (its
        // exit status passed back), `lab status` reads OSPF there.
        let exec = try runProcess([vnetstreamBinary, "lab", "exec", "--id", id, "p11", "--", "sh", "-c", "ip -br link show in1; exit 7"])
        #expect(exec.status == 7 && exec.stdout.contains("in1"), "\(exec.summary)")
        let statusRun = try runProcess([vnetstreamBinary, "lab", "status", "--id", id, "--json"])
        let status = try JSONDecoder().decode(Lab.Status.self, from: Data(statusRun.stdout.utf8))
        #expect(status.ospf["in1"]?.contains { $0.state.hasPrefix("Full") } == true, "\(status.ospf)")

        // From its state alone, as `lab down` or the cleanup after a crashed experiment sees it:
        // the lab reaches its nodes over the emulated hosts' ssh, and removes them with itself.
        let reopened = try Lab.open(runID: id)
        #expect(reopened.emulated?.names == ["h1", "h2", "h3"])
        #expect(try reopened.host.run(["ip", "-n", built.plan.namespace("p11"), "link", "show", "in1"]).contains("mtu 1450"))
        let removed = reopened.down()
        #expect(removed.contains("3 emulated host(s)"), "\(removed)")
        #expect(try leftovers(id).isEmpty && (try HostsTests.namespaces(id)).isEmpty && (try HostsTests.sshds(hosts.directory)).isEmpty)
    }
}
