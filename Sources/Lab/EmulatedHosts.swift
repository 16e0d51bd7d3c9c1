import Foundation
import Units

/// Hosts of a multi-host lab emulated on this machine, for tests and for experiments given no
/// hosts file: each "host" is a network namespace on an underlay bridge (in a namespace of its
/// own, never the machine's), running its own sshd bound to its underlay address, with a host
/// key and a login key made for it. Commands reach them over ssh like real hosts' do; what runs
/// there runs in that host's namespace.
///
/// Naming: underlay `vhR-u` with bridge `ul`, host N `vhR-hN`, the controller (where ssh runs)
/// `vhR-c`; host N's underlay address is 198.19.255.N/24 (the top of the lab's link range), the
/// controller's .254. Each host has its own /run/vnetstream (a tmpfs that what runs over its ssh
/// sees), so the lab's files there are per host as on separate machines; the rest of the file
/// system is shared. The keys, sshd configurations, pid files and logs are in `directory`,
/// which `down()` removes with the rest.
public final class EmulatedHosts: @unchecked Sendable {
    public let runID: String
    public let directory: String
    public let count: Int
    /// The hosts' names (h1, h2, ... unless named), in order.
    public let names: [String]
    public private(set) var hosts: [SSHHost] = []
    private let local = LocalHost()
    private var namespaces: [String] = []
    /// Node namespaces made on the hosts by `linkedNodes`, removed over ssh by `down`.
    private var nodes: [(host: Int, namespace: String)] = []

    public static let underlayPrefix = "198.19.255."

    public var underlayNamespace: String { "vh\(runID)-u" }
    /// Where the ssh client runs: the operator's machine, on the underlay.
    public var controllerNamespace: String { "vh\(runID)-c" }
    public func namespace(ofHost index: Int) -> String { "vh\(runID)-h\(index + 1)" }
    public func underlayAddress(ofHost index: Int) -> String { Self.underlayPrefix + String(index + 1) }
    public func hostName(_ index: Int) -> String { names[index] }
    public var key: String { directory + "/login_key" }
    public var knownHosts: String { directory + "/known_hosts" }

    /// Brings up `count` hosts (1-200), each with sshd answering; on any failure what was
    /// built is removed and the error says what failed.
    public convenience init(runID: String, count: Int, directory: String) throws {
        try self.init(runID: runID, names: (0..<max(0, count)).map { "h\($0 + 1)" }, directory: directory)
    }

    /// The hosts a topology names (`[[host]]`), emulated.
    public convenience init(for topology: Topology, runID: String, directory: String) throws {
        try self.init(runID: runID, names: topology.hosts.map(\.name), directory: directory)
    }

    /// What `Lab.up` takes: each host by name, and its underlay address.
    public var placement: (hosts: [String: any Host], underlay: [String: String]) {
        (
            Dictionary(uniqueKeysWithValues: hosts.map { ($0.name, $0 as any Host) }),
            Dictionary(uniqueKeysWithValues: names.indices.map { (names[$0], underlayAddress(ofHost: $0)) })
        )
    }

    /// What a lab's state keeps of its emulated hosts, so that `lab down` (or the cleanup of
    /// an experiment that crashed) can reach and remove them from another process.
    public struct Record: Codable, Sendable, Equatable {
        public var runID: String
        public var names: [String]
        public var directory: String

        enum CodingKeys: String, CodingKey {
            case names, directory
            case runID = "run_id"
        }
    }

    public var record: Record { Record(runID: runID, names: names, directory: directory) }

    /// The hosts a record names, as they are (nothing is made): their ssh doors, and what
    /// `down()` removes.
    public init(attaching record: Record) {
        runID = record.runID
        names = record.names
        count = record.names.count
        directory = record.directory
        namespaces = [underlayNamespace] + (0..<count).map(namespace(ofHost:)) + [controllerNamespace]
        hosts = sshHosts()
    }

    public init(runID: String, names: [String], directory: String) throws {
        let count = names.count
        guard (1...200).contains(count) else { throw LabError("emulated hosts: \(count) asked for, 1 to 200 can be made") }
        guard Set(names).count == count else { throw LabError("emulated hosts: names \(names) repeat") }
        self.names = names
        guard runID.count <= 6, runID.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw LabError("emulated hosts: run id \(runID) must be 1-6 letters or digits (namespace names)")
        }
        self.runID = runID
        self.count = count
        self.directory = directory
        do { try up() } catch {
            down()
            throw error
        }
    }

    private func up() throws {
        let sshd = try Command.locate("sshd")
        let keygen = try Command.locate("ssh-keygen")
        _ = try Command.locate("ssh")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // sshd refuses to start without its privilege separation directory.
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: "/run/vnetstream", withIntermediateDirectories: true)
        try local.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "vnetstream-\(runID)", "-f", key])
        try local.run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", "vnetstream-\(runID)-host", "-f", directory + "/host_key"])
        let hostKey = try String(contentsOfFile: directory + "/host_key.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.copyItem(atPath: key + ".pub", toPath: directory + "/authorized_keys")

        try add(underlayNamespace)
        try inside(underlayNamespace, ["ip", "link", "add", "ul", "type", "bridge"])
        try inside(underlayNamespace, ["ip", "link", "set", "ul", "up"])
        try inside(underlayNamespace, ["ip", "link", "set", "lo", "up"])
        var known = ""
        for index in 0..<count {
            let namespace = namespace(ofHost: index)
            try add(namespace)
            let port = "ul\(index + 1)"
            try local.run(["ip", "link", "add", "eth0", "netns", namespace, "type", "veth", "peer", "name", port, "netns", underlayNamespace])
            try inside(underlayNamespace, ["ip", "link", "set", port, "master", "ul", "up"])
            try inside(namespace, ["ip", "addr", "add", underlayAddress(ofHost: index) + "/24", "dev", "eth0"])
            try inside(namespace, ["ip", "link", "set", "eth0", "up"])
            try inside(namespace, ["ip", "link", "set", "lo", "up"])
            let config = """
                ListenAddress \(underlayAddress(ofHost: index))
                Port 22
                HostKey \(directory)/host_key
                PidFile \(directory)/sshd-\(hostName(index)).pid
                AuthorizedKeysFile \(directory)/authorized_keys
                PermitRootLogin prohibit-password
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                LogLevel ERROR
                MaxStartups 100:30:200
                MaxSessions 100

                """
            let path = directory + "/sshd-\(hostName(index)).conf"
            try Data(config.utf8).write(to: URL(fileURLWithPath: path))
            // The host's own /run/vnetstream, a tmpfs in sshd's mount namespace: what the lab
            // writes there on a host (bird's files), it writes on that host only, as on
            // separate machines.
            let start = "mount -t tmpfs -o size=64m,mode=0755 vnetstream-\(hostName(index)) /run/vnetstream && exec "
                + SSHHost.remoteCommand([sshd, "-f", path, "-E", directory + "/sshd-\(hostName(index)).log"])
            try local.run(["ip", "netns", "exec", namespace, "sh", "-c", start])
            known += "\(underlayAddress(ofHost: index)) \(hostKey)\n"
        }
        try Data(known.utf8).write(to: URL(fileURLWithPath: knownHosts))
        // The ssh client runs in a controller namespace on the underlay (.254), the operator's
        // machine of this emulation: the machine's own interfaces and routes are never touched.
        try add(controllerNamespace)
        try local.run(["ip", "link", "add", "eth0", "netns", controllerNamespace, "type", "veth", "peer", "name", "ulc", "netns", underlayNamespace])
        try inside(underlayNamespace, ["ip", "link", "set", "ulc", "master", "ul", "up"])
        try inside(controllerNamespace, ["ip", "addr", "add", Self.underlayPrefix + "254/24", "dev", "eth0"])
        try inside(controllerNamespace, ["ip", "link", "set", "eth0", "up"])
        try inside(controllerNamespace, ["ip", "link", "set", "lo", "up"])
        hosts = sshHosts()
        try waitForSSH()
    }

    /// Each host's door: ssh from the controller's namespace, with the login key made for it.
    private func sshHosts() -> [SSHHost] {
        (0..<count).map { index in
            SSHHost(
                name: hostName(index), destination: "root@" + underlayAddress(ofHost: index), identity: key, knownHosts: knownHosts,
                launcher: ["ip", "netns", "exec", controllerNamespace], controlPath: directory + "/cm-" + hostName(index))
        }
    }

    /// Every host's sshd answers within 10 s.
    private func waitForSSH() throws {
        for host in hosts {
            let deadline = Date().addingTimeInterval(10)
            while true {
                do {
                    try host.run(["true"], input: nil, timeout: 5)
                    break
                } catch {
                    if Date() > deadline {
                        let log = (try? String(contentsOfFile: directory + "/sshd-\(host.name).log", encoding: .utf8)) ?? ""
                        throw LabError("emulated host \(host.name): sshd did not answer within 10 s: \(error)" + (log.isEmpty ? "" : "; its log: \(log)"))
                    }
                    usleep(100_000)
                }
            }
        }
    }

    private func add(_ namespace: String) throws {
        try local.run(["ip", "netns", "add", namespace])
        namespaces.append(namespace)
    }

    private func inside(_ namespace: String, _ argv: [String]) throws {
        try local.run(["ip", "netns", "exec", namespace] + argv)
    }

    /// A node on each of the first two hosts (`vlR-h1-a` at 10.0.0.1/24, `vlR-h2-b` at
    /// 10.0.0.2/24), joined by a VXLAN link `l0`: the smallest lab across hosts. `down` removes
    /// the nodes. Returns the link and its MTU.
    public func linkedNodes(vni: UInt32) throws -> (link: CrossHostLink, mtu: Int) {
        guard hosts.count >= 2 else { throw LabError("emulated hosts: two are needed for a link between hosts") }
        let ends = [(0, "vl\(runID)-\(hostName(0))-a", "10.0.0.1/24"), (1, "vl\(runID)-\(hostName(1))-b", "10.0.0.2/24")]
        for (index, namespace, _) in ends {
            try hosts[index].run(["ip", "netns", "add", namespace])
            nodes.append((index, namespace))
        }
        let link = try CrossHostLink(
            vni: vni,
            a: .init(underlayAddress: underlayAddress(ofHost: 0), underlayDevice: "eth0", namespace: ends[0].1, device: "l0", address: ends[0].2),
            b: .init(underlayAddress: underlayAddress(ofHost: 1), underlayDevice: "eth0", namespace: ends[1].1, device: "l0", address: ends[1].2))
        return (link, try link.up(hosts[0], hosts[1]))
    }

    /// Stops the sshds and removes the namespaces, the uplink and the directory; safe to call
    /// twice and after a failed `up`.
    public func down() {
        for node in nodes.reversed() { _ = try? hosts[node.host].run(["ip", "netns", "del", node.namespace]) }
        nodes.removeAll()
        for index in 0..<count {
            let pidFile = directory + "/sshd-\(hostName(index)).pid"
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 {
                kill(pid, SIGTERM)
            }
        }
        // Sessions still open (a command that outlived its ssh) end with their namespace's
        // processes: whatever still runs in a host's namespace is killed before it goes.
        for namespace in namespaces.reversed() {
            if let pids = try? local.run(["ip", "netns", "pids", namespace]) {
                for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) where pid > 1 { kill(pid, SIGKILL) }
            }
            _ = try? local.run(["ip", "netns", "del", namespace])
        }
        namespaces.removeAll()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
