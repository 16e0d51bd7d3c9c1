import Foundation
import Units

/// What a lab run made, kept on disk as it is made, so that `lab down` (in this process or
/// another, after a crash) removes exactly that: its namespaces (with their links, qdiscs and
/// rules), the processes in them (bird among them), and its folder of configs, sockets and
/// pid files. Nothing is found by pattern.
public struct LabState: Codable, Sendable {
    public var runID: String
    public var topologyFile: String
    public var topology: Topology
    public var shaper: Shaper
    /// Why this shaper: detected or asked for.
    public var shaperReason: String
    /// Whether the kernel has `sch_red` (a VNet's queue policy is RED, else a tail-drop limit).
    public var red = false
    /// Namespaces, recorded just before each is created.
    public var namespaces: [String] = []
    /// The hosts the lab emulated for itself, if it did: `down` removes them after the lab.
    public var emulatedHosts: EmulatedHosts.Record?
    /// The hosts a hosts file named (`lab up --hosts`), as they are reached: destination
    /// `local` is this machine.
    public var sshHosts: [SSHHost.Record]?
    /// Routers whose bird was started.
    public var birds: [String] = []
    /// Current conditions by link name, the same in both directions.
    public var conditions: [String: LinkConditions] = [:]
    /// For each blackholed link, the end (node:interface) whose `down` set holds it.
    public var blackholes: [String: String] = [:]
    /// Each VNet's reservation on the access link now, by VNet name (`[access]` only).
    public var reservations: [String: BitRate] = [:]
    /// For each production VNet with a shadow, the VNet (it or its shadow) whose output reaches
    /// the receiver now (`lab promote`).
    public var production: [String: String] = [:]
    /// VNets removed by `lab retire`.
    public var retired: [String] = []
    /// Shadow VNets the entry does not copy into now (`Lab.setCopying`).
    public var idle: [String] = []
    /// The process whose lifetime the lab belongs to (an experiment's: it removes its labs when
    /// it ends), with its start time so a reused pid is not taken for it; nil for `lab up`,
    /// whose labs stay up until `lab down`.
    public var owner: ProcessIdentity?

    enum CodingKeys: String, CodingKey {
        case topology, shaper, namespaces, birds, conditions, blackholes, red, owner, reservations, production, retired, idle
        case runID = "run_id"
        case topologyFile = "topology_file"
        case shaperReason = "shaper_reason"
        case emulatedHosts = "emulated_hosts"
        case sshHosts = "ssh_hosts"
    }

    init(runID: String, topologyFile: String, topology: Topology, shaper: Shaper, shaperReason: String) {
        self.runID = runID
        self.topologyFile = topologyFile
        self.topology = topology
        self.shaper = shaper
        self.shaperReason = shaperReason
    }

    /// Lenient where it can be: a lab must stay removable even if its state was written by an
    /// older build.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        runID = try c.decode(String.self, forKey: .runID)
        topologyFile = try c.decodeIfPresent(String.self, forKey: .topologyFile) ?? ""
        topology = try c.decode(Topology.self, forKey: .topology)
        shaper = try c.decodeIfPresent(Shaper.self, forKey: .shaper) ?? .tbf
        shaperReason = try c.decodeIfPresent(String.self, forKey: .shaperReason) ?? ""
        red = try c.decodeIfPresent(Bool.self, forKey: .red) ?? false
        namespaces = try c.decodeIfPresent([String].self, forKey: .namespaces) ?? []
        birds = try c.decodeIfPresent([String].self, forKey: .birds) ?? []
        conditions = try c.decodeIfPresent([String: LinkConditions].self, forKey: .conditions) ?? [:]
        blackholes = try c.decodeIfPresent([String: String].self, forKey: .blackholes) ?? [:]
        owner = try c.decodeIfPresent(ProcessIdentity.self, forKey: .owner)
        reservations = try c.decodeIfPresent([String: BitRate].self, forKey: .reservations) ?? [:]
        production = try c.decodeIfPresent([String: String].self, forKey: .production) ?? [:]
        retired = try c.decodeIfPresent([String].self, forKey: .retired) ?? []
        idle = try c.decodeIfPresent([String].self, forKey: .idle) ?? []
        emulatedHosts = try c.decodeIfPresent(EmulatedHosts.Record.self, forKey: .emulatedHosts)
        sshHosts = try c.decodeIfPresent([SSHHost.Record].self, forKey: .sshHosts)
    }
}

/// A process as /proc knows it: its pid and its start time (clock ticks since boot), which
/// together name one process even after the pid is reused.
public struct ProcessIdentity: Codable, Sendable, Equatable {
    public var pid: Int32
    public var startTicks: UInt64

    enum CodingKeys: String, CodingKey {
        case pid
        case startTicks = "start_ticks"
    }

    /// This process.
    public static var current: ProcessIdentity? {
        let pid = getpid()
        return startTicks(of: pid).map { ProcessIdentity(pid: pid, startTicks: $0) }
    }

    /// Whether this very process still runs.
    public var isAlive: Bool { Self.startTicks(of: pid) == startTicks }

    /// Field 22 of /proc/PID/stat (after the command name in parentheses, which may hold spaces).
    static func startTicks(of pid: Int32) -> UInt64? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so the start time (field 22) is fields[19].
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}
