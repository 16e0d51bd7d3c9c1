import Foundation
import Lab
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
        // Several at once, over separate sessions.
        try hosts.hosts[0].runConcurrently([(["sleep", "0.3"], nil), (["true"], nil), (["sleep", "0.3"], nil)])
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
