import Foundation
import Packets

/// How to reach the hosts a topology places its nodes on (`lab up TOPO --hosts HOSTS`): one
/// `[[host]]` per host of the topology, by name. The topology says which nodes run where;
/// this file says where that is, so one topology serves several testbeds.
///
/// ```toml
/// [[host]]
/// name = "h2"
/// ssh = "root@203.0.113.7"           # or "local": this machine
/// address = "203.0.113.7"            # the underlay address; default: the ssh destination's
/// underlay_device = "eth0"           # default eth0
/// underlay_mtu = 1500                # default 1500
/// identity = "/root/.ssh/id_ed25519" # default: ssh's own keys
/// known_hosts = "/root/.ssh/known_hosts"  # checked strictly; default: the user's, a new host
///                                         # accepted on first sight
/// port = 22
/// binary = "/usr/local/bin/vnetstream"   # default: this one's path; the same version is required
/// ```
public struct HostsFile: Codable, Sendable, Equatable, KnownKeys {
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var ssh: String
        public var address: String?
        public var underlayDevice: String?
        public var underlayMTU: Int?
        public var identity: String?
        public var knownHosts: String?
        public var port: Int?
        /// The host's vnetstream (nil: the same path as this one's).
        public var binary: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, ssh, address, identity, port, binary
            case underlayDevice = "underlay_device"
            case underlayMTU = "underlay_mtu"
            case knownHosts = "known_hosts"
        }
    }

    public var host: [Entry]

    enum CodingKeys: String, CodingKey, CaseIterable { case host }

    public init(from decoder: Decoder) throws {
        host = try decoder.container(keyedBy: CodingKeys.self).decodeIfPresent([Entry].self, forKey: .host) ?? []
    }
    public static var keySchema: KeySchema { KeySchema(CodingKeys.self, sections: ["host": KeySchema(Entry.CodingKeys.self)]) }

    public static func load(_ path: String) throws -> HostsFile {
        let file = try loadTOML(HostsFile.self, from: path, kind: "hosts file")
        guard !file.host.isEmpty else { throw LabError("\(path): no [[host]]: name each host of the topology, with ssh = \"user@address\" or \"local\"") }
        return file
    }

    /// The topology with each host's reachability and underlay from this file, and a door per
    /// host (`SSHHost`, or `LocalHost` for `local`). Every host of the topology must be named
    /// here, and nothing else; the result is validated as a topology.
    public func apply(to topology: Topology, file: String) throws -> Placement {
        func fail(_ message: String) -> LabError { LabError("\(file): \(message)") }
        let names = topology.hosts.map(\.name)
        guard !names.isEmpty else { throw fail("the topology \(topology.name) places no node on a host ([[host]]): it runs on this machine without a hosts file") }
        var seen: Set<String> = []
        for entry in host {
            guard names.contains(entry.name) else { throw fail("[[host]] '\(entry.name)' is no host of the topology (\(names.joined(separator: ", ")))") }
            guard seen.insert(entry.name).inserted else { throw fail("[[host]] '\(entry.name)' is named twice") }
            if let port = entry.port, !(1...65535).contains(port) { throw fail("[[host]] \(entry.name): port \(port) is not 1-65535") }
            for (key, path) in [("identity", entry.identity), ("known_hosts", entry.knownHosts)] {
                if let path, !FileManager.default.isReadableFile(atPath: path) { throw fail("[[host]] \(entry.name): \(key) \(path) cannot be read") }
            }
        }
        let missing = names.filter { !seen.contains($0) }
        guard missing.isEmpty else { throw fail("no [[host]] for \(missing.joined(separator: ", ")): the topology places nodes there") }

        var placed = topology
        var doors: [String: any Host] = [:]
        for entry in host {
            let index = placed.hosts.firstIndex { $0.name == entry.name }!
            placed.hosts[index].ssh = entry.ssh
            if let address = entry.address { placed.hosts[index].address = address }
            if let device = entry.underlayDevice { placed.hosts[index].underlayDevice = device }
            if let mtu = entry.underlayMTU { placed.hosts[index].underlayMTU = mtu }
            doors[entry.name] = entry.ssh == "local" ? LocalHost() : SSHHost(record: entry.record)
        }
        try placed.validate(file: file)
        return Placement(topology: placed, hosts: doors)
    }

    /// A topology with its hosts' reachability filled in, and a door per host.
    public struct Placement: Sendable {
        public var topology: Topology
        public var hosts: [String: any Host]
    }
}

extension HostsFile.Entry {
    /// The ssh door it describes, as a lab's state keeps it.
    var record: SSHHost.Record {
        SSHHost.Record(name: name, destination: ssh, port: port ?? 22, identity: identity, knownHosts: knownHosts, launcher: [], binary: binary)
    }
}
