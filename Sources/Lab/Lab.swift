import Foundation

/// A VNet lab that is up: `Lab.up` builds one from a topology, `Lab.open` finds a running one,
/// `down` removes it. It runs its plan's commands (ip, tc, nft, bird) as root through its host.
///
/// The lab in layers: the model (`Topology`, `LinkConditions`, `Schedule`), the plan (`LabPlan`,
/// `InterfaceShaping`: pure, commands as data), and this runtime, which executes them through
/// a `Host` (`Command` runs each process, with a time limit). The runtime's concerns each have
/// a file: building (here), kernel probes, bird, shaping, conditions, routing, status, teardown.
public final class Lab: @unchecked Sendable {
    /// Where running labs keep their state (override with VNETSTREAM_LAB_DIR).
    public static var root: String { ProcessInfo.processInfo.environment["VNETSTREAM_LAB_DIR"] ?? "/run/vnetstream/labs" }

    public let plan: LabPlan
    public internal(set) var state: LabState
    public let directory: String
    /// Where the lab's commands run.
    public let host: any Host
    /// The hosts this lab emulated for itself (a topology over hosts without ssh destinations);
    /// `down` removes them after the lab.
    public let emulated: EmulatedHosts?
    let lock = NSLock()

    private init(plan: LabPlan, state: LabState, directory: String, host: any Host = LocalHost(), emulated: EmulatedHosts? = nil) {
        self.plan = plan
        self.state = state
        self.directory = directory
        self.host = host
        self.emulated = emulated
    }

    public var runID: String { state.runID }

    /// When the last `apply` was in effect (its commands had returned; before the state was saved).
    public internal(set) var lastEffective: Date?
    /// What the last `down` could not remove, and why (a host that did not answer); empty when
    /// it removed everything.
    public internal(set) var leftBehind: [String] = []

    private static let interruptLock = NSLock()
    nonisolated(unsafe) private static var interruptedFlag = false

    /// Asks a lab being built, or waiting for routing, to stop at its next step (and clean up).
    public static func interrupt() {
        interruptLock.lock()
        interruptedFlag = true
        interruptLock.unlock()
    }

    public static func checkInterrupted() throws {
        interruptLock.lock()
        defer { interruptLock.unlock() }
        if interruptedFlag { throw LabError("interrupted") }
    }
    public var shaper: Shaper { state.shaper }

    /// Builds the lab: namespaces, veth links with addresses, the sender's tuns and policy
    /// routing, nftables chains and initial shaping, and a bird per router. On any failure,
    /// everything made so far is removed before the error is thrown.
    public static func up(
        topology: Topology, file: String, runID: String? = nil, shaper requested: Shaper? = nil, ownedByThisProcess: Bool = false,
        hosts: [String: any Host] = [:], underlay: [String: String] = [:], log: (String) -> Void = { _ in }
    ) throws -> Lab {
        guard getuid() == 0 else { throw LabError("the lab needs root (namespaces, veth, tc, nft, bird): run as root") }
        for tool in ["ip", "tc", "nft", "bird", "birdc"] { _ = try Command.locate(tool) }
        let id = runID ?? String(format: "%04x", UInt16.random(in: 0...UInt16.max))
        guard id.count <= 6, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw LabError("a run id has 1-6 letters or digits, not '\(id)'")
        }
        let directory = "\(root)/\(id)"
        guard !FileManager.default.fileExists(atPath: directory) else {
            throw LabError("a lab with run id \(id) is already up (vnetstream lab down --id \(id) removes it)")
        }
        // A topology over hosts that says how to reach none of them: hosts emulated here.
        var hosts = hosts
        var underlay = underlay
        var emulated: EmulatedHosts?
        if hosts.isEmpty, !topology.hosts.isEmpty, topology.hosts.allSatisfy({ $0.ssh == nil }) {
            let made = try EmulatedHosts(for: topology, runID: id, directory: NSTemporaryDirectory() + "vnetstream-hosts-\(id)")
            (hosts, underlay) = made.placement
            emulated = made
        }
        // A plan with a provisional shaper names everything; the real one is known once a
        // namespace exists to probe in.
        let host: any Host
        var plan: LabPlan
        do {
            plan = try LabPlan(topology: topology, runID: id, shaper: requested ?? .tbf, underlay: underlay)
            host = try Self.host(for: plan, hosts: hosts)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            emulated?.down()
            throw error
        }
        var state = LabState(
            runID: id, topologyFile: file, topology: topology, shaper: plan.shaper,
            shaperReason: requested == nil ? "" : "asked for (--shaper \(plan.shaper.rawValue))")
        if ownedByThisProcess { state.owner = ProcessIdentity.current }
        state.emulatedHosts = emulated?.record
        if emulated == nil, !hosts.isEmpty {
            state.sshHosts = hosts.sorted { $0.key < $1.key }.map { name, door in
                (door as? SSHHost)?.record ?? SSHHost.Record(name: name, destination: "local", port: 22, launcher: [])
            }
        }
        let lab = Lab(plan: plan, state: state, directory: directory, host: host, emulated: emulated)
        try lab.save()
        do {
            for node in plan.nodes {
                let namespace = plan.namespace(node)
                try checkInterrupted()
                lab.state.namespaces.append(namespace)
                try lab.save()
                try lab.host.run(["ip", "netns", "add", namespace])
            }
            // What the kernel has, probed in a namespace that now exists; then the real plan.
            lab.state.red = lab.kernelHasRED(namespace: plan.namespace(topology.sender))
            if requested == nil {
                let netem = lab.kernelHasNetem(namespace: plan.namespace(topology.sender))
                lab.state.shaper = netem ? .netem : .tbf
                lab.state.shaperReason =
                    netem ? "detected: this kernel has sch_netem" : "detected: this kernel has no sch_netem, so TBF for rate and queue, nftables for loss"
            }
            plan = try LabPlan(topology: topology, runID: id, shaper: lab.state.shaper, red: lab.state.red, underlay: underlay)
            let built = Lab(plan: plan, state: lab.state, directory: directory, host: host, emulated: emulated)
            log("lab \(id): \(plan.nodes.count) namespaces, shaper \(plan.shaper.rawValue) (\(built.state.shaperReason))")
            for vnet in topology.vnets where vnet.queue != nil {
                log("lab \(id): VNet \(vnet.name) queue: \(plan.queueSummaries[vnet.name]!)")
            }
            for step in plan.buildSteps + plan.classifierCommands.map(plan.place) {
                try checkInterrupted()
                // A cross-host link's first steps run in a host's own namespace: the plan names the host.
                try (step.host.flatMap { hosts[$0] } ?? lab.host).run(step.argv)
            }
            if let rules = plan.classifierRules {
                try lab.host.run(["ip", "netns", "exec", plan.namespace(topology.sender), "nft", "-f", "-"], input: rules)
            }
            try built.setUpShaping()
            try built.setUpAccess()
            try built.setUpMulticast()
            try built.setUpMonitoring()
            try built.setUpShadows()
            try built.startBirds()
            try built.save()
            return built
        } catch {
            _ = lab.down()
            throw error
        }
    }

    /// This machine for a one-host lab; for a lab over hosts, every host the topology places
    /// a node on, each command sent to its namespace's host.
    static func host(for plan: LabPlan, hosts: [String: any Host]) throws -> any Host {
        let names = plan.topology.hosts.map(\.name)
        guard !names.isEmpty else { return LocalHost() }
        let missing = names.filter { hosts[$0] == nil }
        guard missing.isEmpty else {
            throw LabError(
                "the topology places nodes on hosts \(names.joined(separator: ", ")), and no way to reach \(missing.joined(separator: ", ")) was given: name them in a hosts file (vnetstream lab up TOPOLOGY --hosts HOSTS), or leave ssh out of every [[host]] to emulate them on this machine")
        }
        let placement = Dictionary(uniqueKeysWithValues: plan.nodes.map { (plan.namespace($0), plan.topology.host(of: $0)!) })
        return PlacedHosts(hosts: hosts, route: { argv in LabPlan.namespace(of: argv).flatMap { placement[$0] } })
    }

    /// A long-running command (a sender or receiver) in `node`'s namespace, its output in the
    /// two files here: started on the node's host over ssh in a lab over hosts.
    public func child(node: String, _ argv: [String], stdout: String, stderr: String) throws -> Command.Child {
        let namespace = plan.namespace(node)
        if let placed = host as? PlacedHosts, let ssh = try placed.host(for: ["ip", "netns", "exec", namespace]) as? SSHHost {
            return try ssh.child(namespace: namespace, argv, stdout: stdout, stderr: stderr, pidFile: "/tmp/vnetstream-\(runID)-\(node)-\(UUID().uuidString.prefix(8)).pid")
        }
        return try Command.Child(["ip", "netns", "exec", namespace] + argv, stdout: stdout, stderr: stderr)
    }

    /// Where vnetstream is on `node`'s host: its hosts file's `binary`, or `local` (this one's path).
    public func binary(on node: String, local: String) -> String {
        guard let placed = host as? PlacedHosts, let ssh = try? placed.host(for: ["ip", "netns", "exec", plan.namespace(node)]) as? SSHHost else { return local }
        return ssh.binary ?? local
    }

    /// The command line that runs `command` inside `node`'s namespace with this terminal's
    /// input and output: `ip netns exec` here, through ssh to the node's host in a lab over hosts.
    /// Its first word is a program's name (`Command.locate` finds it).
    public func execArgv(node: String, _ command: [String]) throws -> [String] {
        let inside = ["ip", "netns", "exec", plan.namespace(node)] + command
        if let placed = host as? PlacedHosts, let ssh = try placed.host(for: inside) as? SSHHost {
            return ssh.sshArgv(inside, options: isatty(0) != 0 ? ["-t"] : [])
        }
        return inside
    }

    func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: "\(directory)/state.json"), options: .atomic)
    }

    /// Labs whose owning process (an experiment) is gone without removing them: what a crash,
    /// a kill -9 or a lost machine leaves behind.
    public static func orphanedIDs(root: String = Lab.root) -> [String] {
        runningIDs(root: root).filter { id in
            guard let data = FileManager.default.contents(atPath: "\(root)/\(id)/state.json"),
                let state = try? JSONDecoder().decode(LabState.self, from: data), let owner = state.owner
            else { return false }
            return !owner.isAlive
        }
    }

    /// One line about orphaned labs, if there are any.
    public static var orphanWarning: String? {
        let ids = orphanedIDs()
        guard !ids.isEmpty else { return nil }
        return "\(ids.count) lab\(ids.count == 1 ? "" : "s") left by an experiment that is no longer running (\(ids.joined(separator: ", "))): `vnetstream lab down --all` removes them"
    }

    /// Run ids of the labs that are up (their state folders).
    public static var runningIDs: [String] { runningIDs(root: root) }

    static func runningIDs(root: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter {
            FileManager.default.fileExists(atPath: "\(root)/\($0)/state.json")
        }.sorted()
    }

    /// The lab with this run id, or the only one that is up.
    public static func open(runID: String?) throws -> Lab {
        let ids = runningIDs
        guard let id = runID ?? (ids.count == 1 ? ids[0] : nil) else {
            throw LabError(ids.isEmpty ? "no lab is up (vnetstream lab up FILE)" : "several labs are up (\(ids.joined(separator: ", "))): name one")
        }
        let directory = "\(root)/\(id)"
        guard let data = FileManager.default.contents(atPath: "\(directory)/state.json") else {
            throw LabError("no lab with run id \(id) is up")
        }
        let state = try JSONDecoder().decode(LabState.self, from: data)
        // A lab over hosts is reached as when it was built: over the emulated hosts' ssh, or
        // the hosts file's.
        if let record = state.emulatedHosts {
            let emulated = EmulatedHosts(attaching: record)
            let (hosts, underlay) = emulated.placement
            let plan = try LabPlan(topology: state.topology, runID: id, shaper: state.shaper, red: state.red, underlay: underlay)
            return Lab(plan: plan, state: state, directory: directory, host: try host(for: plan, hosts: hosts), emulated: emulated)
        }
        let plan = try LabPlan(topology: state.topology, runID: id, shaper: state.shaper, red: state.red)
        guard let records = state.sshHosts else { return Lab(plan: plan, state: state, directory: directory) }
        let hosts = Dictionary(uniqueKeysWithValues: records.map { ($0.name, $0.destination == "local" ? LocalHost() as any Host : SSHHost(record: $0)) })
        return Lab(plan: plan, state: state, directory: directory, host: try host(for: plan, hosts: hosts))
    }
}
