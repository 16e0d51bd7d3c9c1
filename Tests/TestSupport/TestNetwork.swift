import Foundation

/// A program started in the background (a receiver, say), with its output collected.
public final class BackgroundProcess: @unchecked Sendable {
    private let process = Process()
    private let out = Pipe()
    private let err = Pipe()
    private let group = DispatchGroup()
    private var outData = Data()
    private var errData = Data()
    public let argv: [String]
    public var pid: Int32 { process.processIdentifier }

    public init(_ argv: [String]) throws {
        self.argv = argv
        process.executableURL = URL(fileURLWithPath: argv[0].contains("/") ? argv[0] : try which(argv[0]))
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        group.enter()
        DispatchQueue.global().async { [self] in
            outData = out.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async { [self] in
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
    }

    /// Waits for it to exit; after `timeout` seconds it is terminated, then killed.
    public func wait(timeout: Double) -> ProcessResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            usleep(500_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        group.wait()
        return ProcessResult(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self), argv: argv)
    }

    /// Ends it if it is still running (for cleanup after a failed test).
    public func stop() { _ = wait(timeout: 0) }
}

/// Two VNets as plain routed paths, in network namespaces this test makes and removes:
///
///     sender [tun0 198.18.1.1/30, tun1 198.18.2.1/30]
///       vn1 198.18.11.1 -- west 198.18.11.2 [router1] east 198.18.12.1 -- v1 198.18.12.2 [receiver, 198.18.100.1 on lo]
///       vn2 198.18.21.1 -- west 198.18.21.2 [router2] east 198.18.22.1 -- v2 198.18.22.2
///
/// Policy routing in the sender sends what enters tun0 into VNet 1 and what enters tun1 into
/// VNet 2; each router routes the sender's VNet address (198.18.1.2, 198.18.2.2) back, so the
/// receiver's reports return over the VNet they are addressed to. All addresses are in
/// 198.18.0.0/15. Namespace names carry this process's id, so a later run can remove exactly
/// the ones a crashed run left behind.
public final class TwoVNetNetwork: @unchecked Sendable {
    public let prefix: String
    public var sender: String { prefix + "-snd" }
    public var router1: String { prefix + "-r1" }
    public var router2: String { prefix + "-r2" }
    public var receiver: String { prefix + "-rcv" }
    public var namespaces: [String] { [sender, router1, router2, receiver] }
    public static let receiverAddress = "198.18.100.1"
    private var made: [String] = []
    private static let counter = NSLock()
    nonisolated(unsafe) private static var next = 0

    public init() throws {
        Self.sweepStale()
        Self.counter.lock()
        Self.next += 1
        prefix = "vnst\(getpid())x\(Self.next)"
        Self.counter.unlock()
        do { try build() } catch {
            teardown()
            throw error
        }
    }

    /// Namespaces of earlier runs of these tests whose process is gone.
    public static func sweepStale() {
        guard let list = try? runProcess(["ip", "netns", "list"]) else { return }
        for line in list.stdout.split(separator: "\n") {
            let name = String(line.split(separator: " ")[0])
            guard name.hasPrefix("vnst"), let x = name.firstIndex(of: "x"),
                let pid = Int32(name[name.index(name.startIndex, offsetBy: 4)..<x])
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { _ = try? runProcess(["ip", "netns", "del", name]) }
        }
    }

    /// Runs `ip ARGS`, throwing with the command line and its stderr when it fails.
    public func ip(_ arguments: String...) throws {
        try check(["ip"] + arguments)
    }

    public func check(_ argv: [String]) throws {
        let result = try runProcess(argv)
        guard result.status == 0 else { throw TestSetupError("\(argv.joined(separator: " ")) failed: \(result.stderr)") }
    }

    /// Runs a command inside a namespace and returns what it said.
    @discardableResult
    public func exec(_ namespace: String, _ argv: [String]) throws -> ProcessResult {
        try runProcess(["ip", "netns", "exec", namespace] + argv)
    }

    public func start(_ namespace: String, _ argv: [String]) throws -> BackgroundProcess {
        try BackgroundProcess(["ip", "netns", "exec", namespace] + argv)
    }

    private func build() throws {
        for namespace in namespaces {
            try ip("netns", "add", namespace)
            made.append(namespace)
            try ip("-n", namespace, "link", "set", "lo", "up")
            try check(["ip", "netns", "exec", namespace, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                       "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"])
        }
        for (index, router) in [router1, router2].enumerated() {
            let vnet = index + 1
            try ip("-n", sender, "link", "add", "vn\(vnet)", "type", "veth", "peer", "name", "west", "netns", router)
            try ip("-n", router, "link", "add", "east", "type", "veth", "peer", "name", "v\(vnet)", "netns", receiver)
            try ip("-n", sender, "addr", "add", "198.18.\(vnet)1.1/30", "dev", "vn\(vnet)")
            try ip("-n", router, "addr", "add", "198.18.\(vnet)1.2/30", "dev", "west")
            try ip("-n", router, "addr", "add", "198.18.\(vnet)2.1/30", "dev", "east")
            try ip("-n", receiver, "addr", "add", "198.18.\(vnet)2.2/30", "dev", "v\(vnet)")
            try ip("-n", sender, "link", "set", "vn\(vnet)", "up")
            try ip("-n", router, "link", "set", "west", "up")
            try ip("-n", router, "link", "set", "east", "up")
            try ip("-n", receiver, "link", "set", "v\(vnet)", "up")
            let tun = "tun\(index)"
            try ip("-n", sender, "tuntap", "add", "dev", tun, "mode", "tun")
            try ip("-n", sender, "addr", "add", "198.18.\(vnet).1/30", "dev", tun)
            try ip("-n", sender, "link", "set", tun, "up")
            try ip("-n", sender, "rule", "add", "iif", tun, "lookup", "10\(vnet)")
            try ip("-n", sender, "route", "add", Self.receiverAddress, "via", "198.18.\(vnet)1.2", "table", "10\(vnet)")
            try ip("-n", router, "route", "add", Self.receiverAddress, "via", "198.18.\(vnet)2.2")
            try ip("-n", router, "route", "add", "198.18.\(vnet).0/30", "via", "198.18.\(vnet)1.1")
            try ip("-n", receiver, "route", "add", "198.18.\(vnet).0/30", "via", "198.18.\(vnet)2.1")
        }
        try ip("-n", receiver, "addr", "add", "\(Self.receiverAddress)/32", "dev", "lo")
    }

    /// Rate-limits a router's link toward the receiver with a token bucket.
    public func limitRate(router: String, rate: String, burst: String = "4kb", latency: String = "100ms") throws {
        try exec(router, ["tc", "qdisc", "add", "dev", "east", "root", "tbf", "rate", rate, "burst", burst, "latency", latency])
            .requireSuccess()
    }

    /// Drops `percent` % of the media packets (VNetStream kind 1; with `retransmissions`, kind 5
    /// too) a router forwards toward the receiver, at random, with an nftables counter of what
    /// it dropped.
    public func dropMedia(router: String, percent: Int, retransmissions: Bool = false, parity: Bool = false) throws {
        let match = percent >= 100 ? "" : "numgen random mod 100 < \(percent) "
        // The kind byte (UDP payload offset 3): 1 media, 5 a retransmission, 6 a parity.
        let kinds = "{ " + (["1"] + (retransmissions ? ["5"] : []) + (parity ? ["6"] : [])).joined(separator: ", ") + " }"
        let rules = """
            table inet vnst {
              chain forward {
                type filter hook forward priority 0;
                ip daddr \(Self.receiverAddress) udp dport 5004 @th,88,8 \(kinds) \(match)counter drop
              }
            }
            """
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = try writeFile(directory, "rules.nft", rules)
        try exec(router, ["nft", "-f", file]).requireSuccess()
    }

    /// Packets the router's drop rule has dropped so far.
    public func droppedByRule(router: String) throws -> Int {
        let listing = try exec(router, ["nft", "list", "table", "inet", "vnst"])
        try listing.requireSuccess()
        guard let range = listing.stdout.range(of: #"counter packets (\d+)"#, options: .regularExpression) else {
            throw TestSetupError("no counter in: \(listing.stdout)")
        }
        return Int(listing.stdout[range].split(separator: " ")[2])!
    }

    /// Removes every namespace this network made (their links, qdiscs and rules go with them).
    public func teardown() {
        for namespace in made.reversed() { _ = try? runProcess(["ip", "netns", "del", namespace]) }
        made.removeAll()
    }

    deinit { teardown() }
}

extension ProcessResult {
    public func requireSuccess() throws {
        guard status == 0 else { throw TestSetupError(summary) }
    }
}
