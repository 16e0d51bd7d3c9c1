import Foundation

/// Where a lab's commands run. Today every node of a lab is on this machine (`LocalHost`);
/// the lab's runtime goes through this one door, so that nodes can later be placed on other
/// machines (commands over SSH) without the lab's plans changing.
public protocol Host: Sendable {
    /// How errors and records name it (`local`).
    var name: String { get }
    /// Runs `argv` to completion within `timeout` seconds; stdout, or `Command.Failure`.
    func run(_ argv: [String], input: String?, timeout: Double) throws -> String
    /// Runs several commands at once and waits for all; throws the first failure.
    func runConcurrently(_ commands: [(argv: [String], input: String?)], timeout: Double) throws
    /// Starts, ahead of the moment they are due, what running commands with these argvs needs
    /// (the processes themselves, or the session that will run them), so that `run` on the
    /// result at that moment costs no start. Never fails: what could not start ahead starts
    /// when it runs.
    func startWaiting(_ argvs: [[String]]) -> any WaitingCommands
    /// Starts a daemon that forks into the background (bird) and checks that it started.
    func startDaemon(_ argv: [String]) throws
}

/// Commands started before they are due (`Host.startWaiting`), waiting for their input.
public protocol WaitingCommands: AnyObject, Sendable {
    /// Runs `commands` at once, each in what was started for it, and waits for all; throws the
    /// first failure. What was started and is not used is stopped.
    func run(_ commands: [(argv: [String], input: String?)], timeout: Double) throws
    /// Stops what was started and not run (idempotent).
    func cancel()
}

/// Nothing started ahead: `run` is the host's `runConcurrently`.
final class NothingWaiting: WaitingCommands {
    let host: any Host
    init(host: any Host) { self.host = host }
    func run(_ commands: [(argv: [String], input: String?)], timeout: Double) throws { try host.runConcurrently(commands, timeout: timeout) }
    func cancel() {}
}

extension Host {
    @discardableResult
    public func run(_ argv: [String], input: String? = nil) throws -> String {
        try run(argv, input: input, timeout: Command.defaultTimeout)
    }

    public func runConcurrently(_ commands: [(argv: [String], input: String?)]) throws {
        try runConcurrently(commands, timeout: Command.defaultTimeout)
    }

    public func startWaiting(_ argvs: [[String]]) -> any WaitingCommands { NothingWaiting(host: self) }
}

/// This machine: commands run here, as this process's user.
public struct LocalHost: Host {
    public init() {}
    public var name: String { "local" }

    public func run(_ argv: [String], input: String?, timeout: Double) throws -> String {
        try Command.run(argv, input: input, timeout: timeout)
    }

    public func runConcurrently(_ commands: [(argv: [String], input: String?)], timeout: Double) throws {
        try Command.runConcurrently(commands, timeout: timeout)
    }

    public func startWaiting(_ argvs: [[String]]) -> any WaitingCommands { Command.Waiting(argvs) }

    public func startDaemon(_ argv: [String]) throws { try Command.startDaemon(argv) }
}

/// The hosts a lab is spread over, as one door: each command goes to the host of the namespace
/// it names (`LabPlan.host(forCommand:)`), so that the lab's runtime stays as it is for one host.
/// A command that names no namespace of the lab has no host, and fails naming it.
public struct PlacedHosts: Host {
    public let hosts: [String: any Host]
    let route: @Sendable ([String]) -> String?

    public init(hosts: [String: any Host], route: @escaping @Sendable ([String]) -> String?) {
        self.hosts = hosts
        self.route = route
    }

    public var name: String { hosts.keys.sorted().joined(separator: ", ") }

    /// The host `argv` runs on.
    public func host(for argv: [String]) throws -> any Host {
        guard let name = route(argv) else {
            throw LabError("`\(argv.joined(separator: " "))` names no namespace of the lab, so no host of \(self.name) to run it on")
        }
        guard let host = hosts[name] else { throw LabError("`\(argv.joined(separator: " "))` is for host \(name), which is not among \(self.name)") }
        return host
    }

    public func run(_ argv: [String], input: String?, timeout: Double) throws -> String {
        try host(for: argv).run(argv, input: input, timeout: timeout)
    }

    /// Each host's share at once, all hosts in parallel; the first failure is thrown.
    public func runConcurrently(_ commands: [(argv: [String], input: String?)], timeout: Double) throws {
        try WaitingOnHosts(placed: self, waiting: [:]).run(commands, timeout: timeout)
    }

    /// Each host starts its share ahead; an argv with no host is left to fail when it runs.
    public func startWaiting(_ argvs: [[String]]) -> any WaitingCommands {
        var shares: [String: [[String]]] = [:]
        for argv in argvs { if let name = route(argv), hosts[name] != nil { shares[name, default: []].append(argv) } }
        return WaitingOnHosts(placed: self, waiting: Dictionary(uniqueKeysWithValues: shares.map { ($0.key, hosts[$0.key]!.startWaiting($0.value)) }))
    }

    public func startDaemon(_ argv: [String]) throws { try host(for: argv).startDaemon(argv) }
}

/// `PlacedHosts`' commands started ahead, by host: at `run`, each host's share runs in what that
/// host started for it, all hosts in parallel.
final class WaitingOnHosts: WaitingCommands, @unchecked Sendable {
    let placed: PlacedHosts
    private let lock = NSLock()
    private var waiting: [String: any WaitingCommands]

    init(placed: PlacedHosts, waiting: [String: any WaitingCommands]) {
        self.placed = placed
        self.waiting = waiting
    }

    func run(_ commands: [(argv: [String], input: String?)], timeout: Double) throws {
        lock.lock()
        let started = waiting
        waiting = [:]
        lock.unlock()
        var shares: [String: [(argv: [String], input: String?)]] = [:]
        do {
            for command in commands {
                _ = try placed.host(for: command.argv)
                shares[placed.route(command.argv)!, default: []].append(command)
            }
        } catch {
            for unused in started.values { unused.cancel() }
            throw error
        }
        for (name, unused) in started where shares[name] == nil { unused.cancel() }
        let errors = NSLock()
        nonisolated(unsafe) var firstError: Error?
        let work = shares.sorted { $0.key < $1.key }.map { (name: $0.key, commands: $0.value) }
        DispatchQueue.concurrentPerform(iterations: work.count) { index in
            let share = work[index]
            do {
                if let ready = started[share.name] {
                    try ready.run(share.commands, timeout: timeout)
                } else {
                    try placed.hosts[share.name]!.runConcurrently(share.commands, timeout: timeout)
                }
            } catch {
                errors.lock()
                if firstError == nil { firstError = error }
                errors.unlock()
            }
        }
        if let firstError { throw firstError }
    }

    func cancel() {
        lock.lock()
        let started = waiting
        waiting = [:]
        lock.unlock()
        for unused in started.values { unused.cancel() }
    }
}
