import Foundation

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
    /// Routers whose bird was started.
    public var birds: [String] = []
    /// Current conditions by link name, the same in both directions.
    public var conditions: [String: LinkConditions] = [:]
    /// For each blackholed link, the end (node:interface) whose `down` set holds it.
    public var blackholes: [String: String] = [:]

    enum CodingKeys: String, CodingKey {
        case topology, shaper, namespaces, birds, conditions, blackholes, red
        case runID = "run_id"
        case topologyFile = "topology_file"
        case shaperReason = "shaper_reason"
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
    }
}

/// A VNet lab that is up: `Lab.up` builds one from a topology, `Lab.open` finds a running one,
/// `down` removes it. Runs real commands (ip, tc, nft, bird) as root.
public final class Lab: @unchecked Sendable {
    /// Where running labs keep their state (override with VNETSTREAM_LAB_DIR).
    public static var root: String { ProcessInfo.processInfo.environment["VNETSTREAM_LAB_DIR"] ?? "/run/vnetstream/labs" }

    public let plan: LabPlan
    public private(set) var state: LabState
    public let directory: String
    private let lock = NSLock()

    private init(plan: LabPlan, state: LabState, directory: String) {
        self.plan = plan
        self.state = state
        self.directory = directory
    }

    public var runID: String { state.runID }

    /// When the last `apply` was in effect (its commands had returned; before the state was saved).
    public private(set) var lastEffective: Date?

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
        topology: Topology, file: String, runID: String? = nil, shaper requested: Shaper? = nil,
        log: (String) -> Void = { _ in }
    ) throws -> Lab {
        guard getuid() == 0 else { throw LabError("the lab needs root (namespaces, veth, tc, nft, bird): run as root") }
        for tool in ["ip", "tc", "nft", "bird", "birdc"] { _ = try Command.locate(tool) }
        let id = runID ?? String(format: "%04x", UInt16.random(in: 0...UInt16.max))
        guard id.count <= 6, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw LabError("a run id has 1-6 letters or digits, not '\(id)'")
        }
        let directory = "\(root)/\(id)"
        guard !FileManager.default.fileExists(atPath: directory) else {
            throw LabError("a lab with run id \(id) is already up (vnetstream lab down \(id) removes it)")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A plan with a provisional shaper names everything; the real one is known once a
        // namespace exists to probe in.
        var plan = try LabPlan(topology: topology, runID: id, shaper: requested ?? .tbf)
        let state = LabState(
            runID: id, topologyFile: file, topology: topology, shaper: plan.shaper,
            shaperReason: requested == nil ? "" : "asked for (--shaper \(plan.shaper.rawValue))")
        let lab = Lab(plan: plan, state: state, directory: directory)
        try lab.save()
        do {
            for node in plan.nodes {
                let namespace = plan.namespace(node)
                try checkInterrupted()
                lab.state.namespaces.append(namespace)
                try lab.save()
                try Command.run(["ip", "netns", "add", namespace])
            }
            // What the kernel has, probed in a namespace that now exists; then the real plan.
            lab.state.red = Lab.kernelHasRED(namespace: plan.namespace(topology.sender))
            if requested == nil {
                let netem = Lab.kernelHasNetem(namespace: plan.namespace(topology.sender))
                lab.state.shaper = netem ? .netem : .tbf
                lab.state.shaperReason =
                    netem ? "detected: this kernel has sch_netem" : "detected: this kernel has no sch_netem, so TBF for rate and queue, nftables for loss"
            }
            plan = try LabPlan(topology: topology, runID: id, shaper: lab.state.shaper, red: lab.state.red)
            let built = Lab(plan: plan, state: lab.state, directory: directory)
            log("lab \(id): \(plan.nodes.count) namespaces, shaper \(plan.shaper.rawValue) (\(built.state.shaperReason))")
            for vnet in topology.vnets where vnet.queue != nil {
                log("lab \(id): VNet \(vnet.name) queue: \(plan.queueSummaries[vnet.name]!)")
            }
            for argv in plan.buildCommands + plan.classifierCommands {
                try checkInterrupted()
                try Command.run(argv)
            }
            if let rules = plan.classifierRules {
                try Command.run(["ip", "netns", "exec", plan.namespace(topology.sender), "nft", "-f", "-"], input: rules)
            }
            try built.setUpShaping()
            try built.startBirds()
            try built.save()
            return built
        } catch {
            _ = lab.down()
            throw error
        }
    }

    /// Bird processes started from this lab's folder, by their pid files (checked against the
    /// process's command line, so a reused pid is never killed).
    private func birdProcesses() -> [Int32] {
        state.birds.compactMap { router in
            guard let text = try? String(contentsOfFile: file(router, "pid"), encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"),
                String(decoding: cmdline, as: UTF8.self).contains(directory)
            else { return nil }
            return pid
        }
    }

    /// Whether netem can be attached here (tried on the namespace's loopback, then removed).
    static func kernelHasNetem(namespace: String) -> Bool {
        guard (try? Command.run(["tc", "-n", namespace, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])) != nil else {
            return false
        }
        _ = try? Command.run(["tc", "-n", namespace, "qdisc", "del", "dev", "lo", "root"])
        return true
    }

    /// Whether RED can be attached here (tried on the namespace's loopback, then removed).
    static func kernelHasRED(namespace: String) -> Bool {
        let probe = ["tc", "-n", namespace, "qdisc", "add", "dev", "lo", "root", "red", "limit", "40000", "min", "2000", "max", "10000",
                     "avpkt", "1000", "burst", "5", "probability", "0.02", "bandwidth", "10mbit"]
        guard (try? Command.run(probe)) != nil else { return false }
        _ = try? Command.run(["tc", "-n", namespace, "qdisc", "del", "dev", "lo", "root"])
        return true
    }

    private func setUpShaping() throws {
        var commands: [(argv: [String], input: String?)] = []
        for node in plan.nodes {
            let interfaces = plan.transitInterfaces(of: node)
            guard !interfaces.isEmpty else { continue }
            var nft = InterfaceShaping.nftSetup(interfaces: interfaces)
            var tc: [String] = []
            for link in plan.transitLinks {
                state.conditions[link.name] = link.initial
                for end in [link.a, link.b] where end.node == node {
                    let shaping = plan.shaping(end, of: link, conditions: link.initial)
                    nft += shaping.nftLines(from: nil)
                    tc += shaping.tcLines
                }
            }
            commands.append((["ip", "netns", "exec", plan.namespace(node), "nft", "-f", "-"], nft.joined(separator: "\n") + "\n"))
            commands.append((["tc", "-n", plan.namespace(node), "-batch", "-"], tc.joined(separator: "\n") + "\n"))
        }
        for command in commands { try Command.run(command.argv, input: command.input) }
    }

    private func file(_ router: String, _ suffix: String) -> String { "\(directory)/\(router).\(suffix)" }

    private func startBirds() throws {
        for vnet in plan.topology.vnets {
            for router in vnet.routers {
                try plan.birdConfig(router: router, logDirectory: directory).write(toFile: file(router, "conf"), atomically: true, encoding: .utf8)
                state.birds.append(router)
                try save()
                try Lab.checkInterrupted()
                try Command.startDaemon(
                    ["ip", "netns", "exec", plan.namespace(router), "bird", "-c", file(router, "conf"), "-s", file(router, "ctl"),
                     "-P", file(router, "pid")])
            }
        }
    }

    func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(state).write(to: URL(fileURLWithPath: "\(directory)/state.json"), options: .atomic)
    }

    /// Run ids of the labs that are up (their state folders).
    public static var runningIDs: [String] {
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
        return Lab(
            plan: try LabPlan(topology: state.topology, runID: id, shaper: state.shaper, red: state.red), state: state, directory: directory)
    }

    /// Removes everything this lab made; safe to call twice, or on a half-built lab.
    /// Returns what it removed.
    @discardableResult
    public func down() -> [String] {
        var removed: [String] = []
        let birds = birdProcesses()
        for pid in birds { kill(pid, SIGTERM) }
        if !birds.isEmpty { removed.append("\(birds.count) bird process(es)") }
        // Every process inside the lab's namespaces is the lab's too: senders, receivers.
        for namespace in state.namespaces {
            let pids = ((try? Command.run(["ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
            for pid in pids { kill(pid, SIGTERM) }
            if !pids.isEmpty { removed.append("\(pids.count) process(es) in \(namespace)") }
        }
        let deadline = Date().addingTimeInterval(2)
        while !birdProcesses().isEmpty && Date() < deadline { usleep(20_000) }
        for pid in birdProcesses() { kill(pid, SIGKILL) }
        for namespace in state.namespaces {
            while true {
                let pids = ((try? Command.run(["ip", "netns", "pids", namespace])) ?? "").split(separator: "\n").compactMap { Int32($0) }
                if pids.isEmpty { break }
                if Date() > deadline {
                    for pid in pids { kill(pid, SIGKILL) }
                    usleep(100_000)
                    break
                }
                usleep(20_000)
            }
        }
        for namespace in state.namespaces.reversed() {
            if (try? Command.run(["ip", "netns", "del", namespace])) != nil { removed.append("namespace \(namespace)") }
        }
        if (try? FileManager.default.removeItem(atPath: directory)) != nil { removed.append(directory) }
        state.namespaces.removeAll()
        state.birds.removeAll()
        return removed
    }

    // MARK: - Conditions

    /// The transit links an event names.
    public func links(for event: Schedule.Event) throws -> [LabPlan.PlannedLink] {
        let found: [LabPlan.PlannedLink]
        if let vnet = event.vnet {
            guard let index = plan.topology.vnets.firstIndex(where: { $0.name == vnet }) else {
                throw LabError("no VNet '\(vnet)' in \(plan.topology.name) (\(plan.topology.vnets.map(\.name).joined(separator: ", ")))")
            }
            found = plan.transitLinks.filter { $0.vnet == index }
        } else if let path = event.path {
            found = plan.transitLinks.filter { $0.path == path }
        } else {
            found = plan.transitLinks.filter { $0.a.description == event.link || $0.b.description == event.link }
        }
        guard !found.isEmpty else { throw LabError("no link in \(plan.topology.name) matches '\(event.target)'") }
        return found
    }

    /// Applies an event to every link it names, in both directions, in place (tc replace on
    /// the fixed handle; nftables chains flushed and refilled atomically), all nodes at once.
    /// Returns the commands it ran.
    @discardableResult
    public func apply(_ event: Schedule.Event) throws -> [String] { try apply([event]) }

    /// Applies events due at the same moment as one batch: one tc and one nft call per node,
    /// all nodes at once.
    @discardableResult
    public func apply(_ events: [Schedule.Event]) throws -> [String] {
        lock.lock()
        defer { lock.unlock() }
        var tcByNode: [String: [String]] = [:]
        var nftByNode: [String: [String]] = [:]
        var next = state.conditions
        var changed: [String: (link: LabPlan.PlannedLink, before: LinkConditions)] = [:]
        for event in events {
            for link in try links(for: event) {
                let before = next[link.name] ?? link.initial
                if changed[link.name] == nil { changed[link.name] = (link, before) }
                next[link.name] = try event.apply(to: before)
            }
        }
        // A blackhole needs one end of a link; take the node most of the changed links share,
        // so that a whole path goes down or up in as few nodes (transactions) as possible.
        var shared: [String: Int] = [:]
        for entry in changed.values { for end in [entry.link.a, entry.link.b] { shared[end.node, default: 0] += 1 } }
        var blackholes = state.blackholes
        for (name, entry) in changed.sorted(by: { $0.key < $1.key }) {
            let link = entry.link
            let before = entry.before
            let after = next[name]!
            if after.down != before.down {
                let end: Topology.Endpoint
                if after.down {
                    end = (shared[link.b.node] ?? 0) > (shared[link.a.node] ?? 0) ? link.b : link.a
                    blackholes[name] = end.description
                } else {
                    end = [link.a, link.b].first { $0.description == blackholes[name] } ?? link.a
                    blackholes[name] = nil
                }
                nftByNode[end.node, default: []].append(InterfaceShaping.blackholeLine(interface: end.interface, down: after.down))
            }
            for end in [link.a, link.b] {
                let shaping = plan.shaping(end, of: link, conditions: after)
                let old = plan.shaping(end, of: link, conditions: before)
                if shaping.tcLines != old.tcLines { tcByNode[end.node, default: []] += shaping.tcLines }
                nftByNode[end.node, default: []] += shaping.nftLines(from: old.conditions)
            }
        }
        var commands: [(argv: [String], input: String?)] = []
        for (node, lines) in tcByNode {
            commands.append((["tc", "-n", plan.namespace(node), "-batch", "-"], lines.joined(separator: "\n") + "\n"))
        }
        for (node, lines) in nftByNode where !lines.isEmpty {
            commands.append((["ip", "netns", "exec", plan.namespace(node), "nft", "-f", "-"], lines.joined(separator: "\n") + "\n"))
        }
        try Command.runConcurrently(commands)
        lastEffective = Date()
        state.conditions = next
        state.blackholes = blackholes
        try save()
        return commands.map { ($0.argv.joined(separator: " ")) + ": " + ($0.input ?? "").replacingOccurrences(of: "\n", with: "; ") }
    }

    // MARK: - Routing

    /// The next hop `node` uses toward `destination` (nil when it has no route).
    public func nextHop(node: String, to destination: String) -> String? {
        guard let output = try? Command.run(["ip", "-n", plan.namespace(node), "route", "get", destination]) else { return nil }
        let words = output.split(separator: " ").map(String.init)
        guard let via = words.firstIndex(of: "via"), via + 1 < words.count else { return nil }
        return words[via + 1]
    }

    /// The router at the far end of the link whose address `hop` is, seen from `node`.
    public func neighbour(of node: String, at hop: String) -> String? {
        for link in plan.links {
            if link.a.node == node && link.bAddress.description == hop { return link.b.node }
            if link.b.node == node && link.aAddress.description == hop { return link.a.node }
        }
        return nil
    }

    /// Waits until every VNet routes both ways through OSPF: its ingress has a route to the
    /// receiver and its egress one to the sender. Returns the seconds it took.
    @discardableResult
    public func waitForRouting(timeout: Double) throws -> Double {
        let start = Date()
        while true {
            var missing: [String] = []
            for (index, vnet) in plan.topology.vnets.enumerated() {
                let forward = (try? Command.run(["ip", "-n", plan.namespace(vnet.ingress), "route", "show", "\(plan.receiverAddress)/32", "proto", "bird"])) ?? ""
                let back = (try? Command.run(["ip", "-n", plan.namespace(vnet.egress), "route", "show", plan.senderPrefix(vnet: index), "proto", "bird"])) ?? ""
                if forward.isEmpty || back.isEmpty { missing.append(vnet.name) }
            }
            if missing.isEmpty { return Date().timeIntervalSince(start) }
            try Lab.checkInterrupted()
            if Date().timeIntervalSince(start) > timeout {
                throw LabError("OSPF did not converge within \(Int(timeout)) s in \(missing.joined(separator: ", ")) (vnetstream lab status shows the neighbours)")
            }
            usleep(100_000)
        }
    }

    // MARK: - Status

    public struct Status: Codable, Sendable {
        public struct Link: Codable, Sendable {
            public var name: String
            public var vnet: String
            public var path: String?
            public var addresses: [String]
            public var conditions: LinkConditions?
            public var qdiscs: [String]
        }

        public var runID: String
        public var topology: String
        public var shaper: Shaper
        public var shaperReason: String
        public var namespaces: [String]
        public var links: [Link]
        /// `birdc show ospf neighbors` per router.
        public var ospfNeighbours: [String: String]

        enum CodingKeys: String, CodingKey {
            case topology, shaper, namespaces, links
            case runID = "run_id"
            case shaperReason = "shaper_reason"
            case ospfNeighbours = "ospf_neighbours"
        }
    }

    public func status() -> Status {
        let links = plan.links.map { link -> Status.Link in
            let qdiscs = [link.a, link.b].map { end in
                "\(end): " + ((try? Command.run(["tc", "-n", plan.namespace(end.node), "qdisc", "show", "dev", end.interface, "root"])) ?? "?")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return Status.Link(
                name: link.name, vnet: plan.topology.vnets[link.vnet].name, path: link.path,
                addresses: ["\(link.a)=\(link.aAddress)", "\(link.b)=\(link.bAddress)"],
                conditions: link.access ? nil : state.conditions[link.name], qdiscs: qdiscs)
        }
        var neighbours: [String: String] = [:]
        for router in state.birds {
            neighbours[router] = (try? Command.run(["birdc", "-s", file(router, "ctl"), "show", "ospf", "neighbors"])) ?? "(no answer)"
        }
        return Status(
            runID: runID, topology: plan.topology.name, shaper: shaper, shaperReason: state.shaperReason,
            namespaces: state.namespaces, links: links, ospfNeighbours: neighbours)
    }
}
