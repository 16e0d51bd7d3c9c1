import Experiment
import Foundation
import Lab
import TestSupport
import Testing

/// `lab up TOPO --hosts HOSTS` for real: the hosts file names emulated hosts by their ssh
/// destinations, and the command line runs in the controller's namespace (the operator's
/// machine of the emulation), so every command reaches the hosts as it would real ones, each
/// with a /run/vnetstream of its own.
@Suite("lab up --hosts: a topology's hosts reached as a hosts file says", .serialized)
struct HostsFileTests {
    static func hostsFile(_ directory: String, _ hosts: EmulatedHosts, addresses: [String], extra: String = "") throws -> String {
        let text = addresses.enumerated().map { index, address in
            "[[host]]\nname = \"h\(index + 1)\"\nssh = \"root@\(address)\"\nidentity = \"\(hosts.key)\"\nknown_hosts = \"\(hosts.knownHosts)\"\n"
        }.joined(separator: "\n") + extra
        return try writeFile(directory, "hosts-\(UUID().uuidString.prefix(6)).toml", text)
    }

    @Test("bad hosts files are refused naming the file and the host: a host the topology lacks, one it has left out, an unknown key")
    func badFiles() throws {
        let directory = try makeTemporaryDirectory("vnetstream-hostsfile")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let topology = try Topology.load(LabOverHostsTests.topologyFile)
        let three = (1...3).map { "[[host]]\nname = \"h\($0)\"\nssh = \"root@192.0.2.\($0)\"\n" }
        for (text, message) in [
            (three.joined(separator: "\n") + "\n[[host]]\nname = \"h9\"\nssh = \"root@192.0.2.9\"\n", "'h9' is no host of the topology"),
            (three.prefix(2).joined(separator: "\n"), "no [[host]] for h3"),
            (three.joined(separator: "\n") + "idenity = \"/x\"\n", "unknown key 'idenity'"),
            ("", "no [[host]]"),
        ] {
            let file = try writeFile(directory, "bad.toml", text)
            #expect {
                try HostsFile.load(file).apply(to: topology, file: file)
            } throws: { error in
                "\(error)".contains(message) && "\(error)".contains(file)
            }
        }
        let good = try writeFile(directory, "good.toml", three.joined(separator: "\n"))
        let placed = try HostsFile.load(good).apply(to: topology, file: good)
        #expect(placed.topology.hosts.map(\.ssh) == ["root@192.0.2.1", "root@192.0.2.2", "root@192.0.2.3"])
        #expect(placed.hosts.values.allSatisfy { $0 is SSHHost })
    }

    @Test("lab up --hosts over three hosts reached by ssh: an unreachable host fails at once naming it with nothing built; then the lab comes up with versions checked, lab status and lab down work from other processes; with h2 not answering, lab down removes the rest, names h2 and what is left there, and a second one finishes; run --hosts makes its folders on each host and brings back what was written there")
    func upOverHostsFile() throws {
        let id = freshRunID()
        let directory = try makeTemporaryDirectory("vnetstream-hostsfile")
        let hosts = try EmulatedHosts(runID: id, count: 3, directory: directory + "/hosts")
        defer {
            _ = try? runProcess(["ip", "netns", "exec", hosts.controllerNamespace, vnetstreamBinary, "lab", "down", "--id", id])
            hosts.down()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let cli = ["ip", "netns", "exec", hosts.controllerNamespace, vnetstreamBinary]
        let topology = LabOverHostsTests.topologyFile
        func nodesOnHosts() throws -> [String] {
            try hosts.hosts.flatMap { try $0.run(["ip", "netns", "list"]).split(separator: "\n").map(String.init).filter { $0.hasPrefix("vl\(id)-") } }
        }

        // h3 at an address nobody holds: the version check fails first, naming h3 and ssh's words.
        let unreachable = try Self.hostsFile(directory, hosts, addresses: [hosts.underlayAddress(ofHost: 0), hosts.underlayAddress(ofHost: 1), "198.19.255.99"])
        let started = Date()
        let refused = try runProcess(cli + ["lab", "up", topology, "--hosts", unreachable, "--id", id])
        #expect(refused.status != 0 && refused.stderr.contains("host h3 (root@198.19.255.99) could not be reached over ssh"), "\(refused.summary)")
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(try nodesOnHosts().isEmpty && !FileManager.default.fileExists(atPath: Lab.root + "/" + id))

        let file = try Self.hostsFile(directory, hosts, addresses: (0..<3).map(hosts.underlayAddress(ofHost:)))
        let up = try runProcess(cli + ["lab", "up", topology, "--hosts", file, "--id", id])
        #expect(up.status == 0, "\(up.summary)")
        #expect(try hosts.hosts[1].run(["ip", "netns", "list"]).contains("vl\(id)-h2-p11"))
        // bird's files are on the router's host, not here beside the state.
        #expect(try hosts.hosts[1].run(["cat", Lab.root + "/" + id + "/p11.conf"]).contains("protocol ospf"))
        let statusRun = try runProcess(cli + ["lab", "status", "--id", id, "--json"])
        let status = try JSONDecoder().decode(Lab.Status.self, from: Data(statusRun.stdout.utf8))
        #expect(status.ospf["in1"]?.contains { $0.state.hasPrefix("Full") } == true, "\(status.ospf)")
        // h2 stops answering ssh: lab down removes the rest, names h2 and what is left there,
        // exits 1 and keeps the record; once h2 answers again, lab down finishes the job.
        let h2Namespace = hosts.namespace(ofHost: 1)
        try Command.run(["ip", "netns", "exec", h2Namespace, "nft", "-f", "-"], input: "table inet blockssh {\n  chain in {\n    type filter hook input priority 0;\n    tcp dport 22 drop\n  }\n}\n")
        let blocked = Date()
        let partial = try runProcess(cli + ["lab", "down", "--id", id])
        try Command.run(["ip", "netns", "exec", h2Namespace, "nft", "delete", "table", "inet", "blockssh"])
        recordTiming("lab down with h2 not answering", Date().timeIntervalSince(blocked), "s", bound: "40")
        #expect(Date().timeIntervalSince(blocked) < 40, "down took \(Date().timeIntervalSince(blocked)) s with h2 away")
        #expect(partial.status == 1 && partial.stderr.contains("host h2 could not be reached") && partial.stderr.contains("vl\(id)-h2-p11"), "\(partial.summary)")
        let listed = try hosts.hosts[0].run(["ip", "netns", "list"])
        #expect(!listed.contains("vl\(id)-h1-") && !listed.contains("vl\(id)-h3-"), "h1's and h3's parts are gone: \(listed)")
        #expect(try hosts.hosts[1].run(["ip", "netns", "list"]).contains("vl\(id)-h2-p11"), "h2's part is left for later")
        #expect(FileManager.default.fileExists(atPath: Lab.root + "/" + id), "the lab's record is kept")
        let down = try runProcess(cli + ["lab", "down", "--id", id])
        #expect(down.status == 0 && down.stdout.contains("on h2") && down.stdout.contains("vl\(id)-h2-p11"), "\(down.summary)")
        #expect(try nodesOnHosts().isEmpty)
        #expect(try hosts.hosts[1].run(["sh", "-c", "ls /run/vnetstream/labs 2>/dev/null || true"]).isEmpty)

        // vnetstream run --hosts: the multicast experiment (6 s) over the same hosts, its output
        // under /run/vnetstream, which each host has of its own: its folders are made on every
        // host, and what the processes wrote there comes back before the analysis reads it.
        let experiment = try experimentFile("multicast-hosts.toml", replacing: [("duration_s = 30", "duration_s = 6"), ("interval_s = 10", "interval_s = 3")])
        let short = try writeFile(directory, "multicast-short.toml", experiment)
        let out = "/run/vnetstream/test-run-hosts-\(id)/out"
        defer { try? FileManager.default.removeItem(atPath: "/run/vnetstream/test-run-hosts-\(id)") }
        let run = try runProcess(cli + ["run", short, "--hosts", file, "--out", out, "--check"])
        #expect(run.status == 0, "\(run.summary)")
        #expect("\(run.stdout)\(run.stderr)".contains("gathered 3 files from h1, 2 files from h2, 4 files from h3"), "\(run.summary)")
        let results = try MulticastResults.load(out + "/results.json")
        #expect(results.members.map(\.lost) == results.members.map(\.branchDropped) && results.members.allSatisfy { $0.sent == 600 }, "\(results.members)")
        // The run's lab is named by the harness: `vlm` (a multicast kind), two hex digits, the
        // run's index, then the host. `ip netns list` here shows every test's namespaces.
        let ours = try NSRegularExpression(pattern: "^vlm[0-9a-f]{2}[0-9a-z]-h[0-9]-")
        let left = try hosts.hosts[0].run(["ip", "netns", "list"]).split(separator: "\n").map(String.init).filter {
            ours.firstMatch(in: $0, range: NSRange($0.startIndex..., in: $0)) != nil
        }
        #expect(left.isEmpty, "the run's lab is gone from every host: \(left)")
    }
}
