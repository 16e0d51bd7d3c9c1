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
