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
    /// Starts a daemon that forks into the background (bird) and checks that it started.
    func startDaemon(_ argv: [String]) throws
}

extension Host {
    @discardableResult
    public func run(_ argv: [String], input: String? = nil) throws -> String {
        try run(argv, input: input, timeout: Command.defaultTimeout)
    }

    public func runConcurrently(_ commands: [(argv: [String], input: String?)]) throws {
        try runConcurrently(commands, timeout: Command.defaultTimeout)
    }
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
        var shares: [String: [(argv: [String], input: String?)]] = [:]
        for command in commands {
            _ = try host(for: command.argv)
            shares[route(command.argv)!, default: []].append(command)
        }
        let lock = NSLock()
        nonisolated(unsafe) var firstError: Error?
        let work = shares.sorted { $0.key < $1.key }.map { (host: hosts[$0.key]!, commands: $0.value) }
        DispatchQueue.concurrentPerform(iterations: work.count) { index in
            do { try work[index].host.runConcurrently(work[index].commands, timeout: timeout) } catch {
                lock.lock()
                if firstError == nil { firstError = error }
                lock.unlock()
            }
        }
        if let firstError { throw firstError }
    }

    public func startDaemon(_ argv: [String]) throws { try host(for: argv).startDaemon(argv) }
}
