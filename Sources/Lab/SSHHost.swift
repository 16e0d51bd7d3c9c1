import Foundation
import Units

/// A machine of a lab reached over OpenSSH (CORE's and Mininet Cluster Edition's way): each
/// command runs as `ssh -o BatchMode=yes … DESTINATION -- 'argv'`, with a time limit, and a
/// failure names the host. No daemon of the project's own runs there; the host needs root's
/// sshd, the vnetstream binary and the Debian packages `scripts/install-deps` installs.
public struct SSHHost: Host {
    public let name: String
    /// `user@address` (or an alias the ssh configuration knows).
    public let destination: String
    public var port: Int
    /// A private key to log in with (`-i`), or the agent's and ssh's defaults.
    public var identity: String?
    /// A known_hosts file to check the host's key against (strictly); nil: the user's, with
    /// new hosts accepted on first sight.
    public var knownHosts: String?
    /// How long to wait for the connection itself, seconds.
    public var connectTimeout: Int
    /// Words before `ssh` (where the client runs: `ip netns exec NS` for emulated hosts).
    public var launcher: [String]
    /// A socket for one shared connection (ssh's ControlMaster): a command then costs a new
    /// session, not a new login (about 10 ms instead of 200 here). The master ends by itself
    /// 30 s after its last session.
    public var controlPath: String?
    /// Where vnetstream is on the host (a hosts file's `binary`); nil: the same path as here.
    public var binary: String?

    /// What a lab's state keeps of a host reached over ssh, so that `lab down` and the other
    /// `lab` commands reach it from another process.
    public struct Record: Codable, Sendable, Equatable {
        public var name: String
        public var destination: String
        public var port: Int
        public var identity: String?
        public var knownHosts: String?
        public var launcher: [String]
        public var binary: String?

        enum CodingKeys: String, CodingKey {
            case name, destination, port, identity, launcher, binary
            case knownHosts = "known_hosts"
        }
    }

    public var record: Record {
        Record(name: name, destination: destination, port: port, identity: identity, knownHosts: knownHosts, launcher: launcher, binary: binary)
    }

    /// The host a record names, sharing one connection per destination with every vnetstream
    /// process (ssh's `%C`: a hash of the connection).
    public init(record: Record) {
        self.init(
            name: record.name, destination: record.destination, port: record.port, identity: record.identity, knownHosts: record.knownHosts,
            launcher: record.launcher, controlPath: "/tmp/vnetstream-ssh-%C")
        binary = record.binary
    }

    public init(
        name: String, destination: String, port: Int = 22, identity: String? = nil, knownHosts: String? = nil, connectTimeout: Int = 5,
        launcher: [String] = [], controlPath: String? = nil
    ) {
        self.name = name
        self.destination = destination
        self.port = port
        self.identity = identity
        self.knownHosts = knownHosts
        self.connectTimeout = connectTimeout
        self.launcher = launcher
        self.controlPath = controlPath
    }

    /// ssh's exit status when ssh itself failed (could not connect, was refused the login).
    public static let sshFailed: Int32 = 255

    /// The ssh command line that runs `argv` on the host (its words quoted for the remote shell).
    public func sshArgv(_ argv: [String], options: [String] = []) -> [String] {
        var ssh = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=\(connectTimeout)", "-o", "LogLevel=ERROR", "-o", "ServerAliveInterval=5"]
        ssh += ["-p", String(port)]
        if let identity { ssh += ["-i", identity, "-o", "IdentitiesOnly=yes"] }
        if let knownHosts {
            ssh += ["-o", "UserKnownHostsFile=\(knownHosts)", "-o", "StrictHostKeyChecking=yes"]
        } else {
            ssh += ["-o", "StrictHostKeyChecking=accept-new"]
        }
        if let controlPath { ssh += ["-o", "ControlMaster=auto", "-o", "ControlPath=\(controlPath)", "-o", "ControlPersist=30"] }
        return launcher + ssh + options + [destination, "--", Self.remoteCommand(argv)]
    }

    /// The words as one line for the remote shell, each in single quotes.
    public static func remoteCommand(_ argv: [String]) -> String {
        argv.map { word in
            word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,@%+".contains($0) } && !word.isEmpty
                ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    public func run(_ argv: [String], input: String?, timeout: Double) throws -> String {
        do { return try Command.run(sshArgv(argv), input: input, timeout: timeout) } catch let failure as Command.Failure {
            throw named(failure, argv)
        }
    }

    /// All at once on the host, in one ssh session (a schedule's batch of tc and nft calls
    /// costs one session, not one each): a shell script on ssh's stdin starts every command in
    /// the background, each with its input as a here-document, waits for all, and names each
    /// one that failed with its exit status and stderr.
    public func runConcurrently(_ commands: [(argv: [String], input: String?)], timeout: Double) throws {
        guard commands.count > 1 else {
            for command in commands { try run(command.argv, input: command.input, timeout: timeout) }
            return
        }
        let script = Self.concurrentScript(commands)
        do { _ = try Command.run(sshArgv(["sh", "-s"]), input: script, timeout: timeout) } catch let failure as Command.Failure {
            throw named(failure, ["sh", "-s", "(\(commands.count) commands at once)"])
        }
    }

    /// The session is what starts ahead: an ssh to the host's `sh -s`, connected and waiting
    /// for the script that `run` sends (the one `runConcurrently` sends).
    public func startWaiting(_ argvs: [[String]]) -> any WaitingCommands {
        guard !argvs.isEmpty else { return NothingWaiting(host: self) }
        return WaitingSession(host: self, session: Command.Waiting([sshArgv(["sh", "-s"])]))
    }

    final class WaitingSession: WaitingCommands, @unchecked Sendable {
        let host: SSHHost
        let session: Command.Waiting

        init(host: SSHHost, session: Command.Waiting) {
            self.host = host
            self.session = session
        }

        func run(_ commands: [(argv: [String], input: String?)], timeout: Double) throws {
            guard !commands.isEmpty else { return session.cancel() }
            do { try session.run([(host.sshArgv(["sh", "-s"]), SSHHost.concurrentScript(commands))], timeout: timeout) } catch let failure as Command.Failure {
                throw host.named(failure, ["sh", "-s", "(\(commands.count) commands at once)"])
            }
        }

        func cancel() { session.cancel() }
    }

    /// The script `runConcurrently` sends: POSIX sh.
    static func concurrentScript(_ commands: [(argv: [String], input: String?)]) -> String {
        var lines = ["d=$(mktemp -d) || exit 1"]
        for (index, command) in commands.enumerated() {
            let line = remoteCommand(command.argv) + " >/dev/null 2>\"$d/\(index)\""
            if let input = command.input {
                var delimiter = "VNETSTREAM_INPUT_\(index)"
                while input.contains(delimiter) { delimiter += "_" }
                lines.append(line + " <<'\(delimiter)' &")
                lines.append(input.hasSuffix("\n") ? String(input.dropLast()) : input)
                lines.append(delimiter)
            } else {
                lines.append(line + " </dev/null &")
            }
            lines.append("p\(index)=$!")
        }
        lines.append("s=0")
        for (index, command) in commands.enumerated() {
            let quoted = "'" + command.argv.joined(separator: " ").replacingOccurrences(of: "'", with: "'\\''") + "'"
            lines.append("wait $p\(index) || { e=$?; s=1; printf '`%s` failed (exit %s): ' \(quoted) \"$e\" >&2; cat \"$d/\(index)\" >&2; }")
        }
        lines.append("rm -rf \"$d\"")
        lines.append("exit $s")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The daemon forks into the background on the host; its output goes nowhere (it has its
    /// own log), so that the ssh session ends when it has detached.
    public func startDaemon(_ argv: [String]) throws {
        let line = Self.remoteCommand(argv) + " </dev/null >/dev/null 2>&1"
        do { _ = try Command.run(sshArgv(["sh", "-c", line]), timeout: Command.defaultTimeout) } catch let failure as Command.Failure {
            throw named(failure, argv)
        }
    }

    /// A long-running command on the host in namespace `namespace` (a sender or receiver),
    /// its output written here through ssh. Its pid is kept in a file on the host, so that
    /// `terminate` stops it there with SIGTERM (closing ssh would not). It runs in `directory`
    /// (this process's, by default), so that relative paths in `argv` mean what they mean here;
    /// a host without that folder fails the command.
    public func child(
        namespace: String, _ argv: [String], stdout: String, stderr: String, pidFile: String,
        directory: String = FileManager.default.currentDirectoryPath
    ) throws -> Command.Child {
        let line = "cd \(Self.remoteCommand([directory])) && echo $$ > \(Self.remoteCommand([pidFile])) && exec "
            + Self.remoteCommand(["ip", "netns", "exec", namespace] + argv)
        let child = try Command.Child(sshArgv(["sh", "-c", line], options: ["-n"]), stdout: stdout, stderr: stderr)
        let host = self
        child.stop = {
            _ = try? host.run(["sh", "-c", "kill -TERM $(cat \(Self.remoteCommand([pidFile]))) 2>/dev/null; rm -f \(Self.remoteCommand([pidFile]))"])
        }
        return child
    }

    /// The host's vnetstream, which must be this one's version: a lab whose hosts run
    /// different builds would speak different wire formats.
    public func checkVersion(binary: String, expected: String) throws {
        let theirs = try run([binary, "--version"]).trimmingCharacters(in: .whitespacesAndNewlines)
        guard theirs == expected.trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw LabError("host \(name) (\(destination)) runs vnetstream \(theirs), this one is \(expected): install the same build on every host")
        }
    }

    /// A failure said as the host's: whether ssh could not reach it, or the command failed there.
    private func named(_ failure: Command.Failure, _ argv: [String]) -> LabError {
        let stderr = failure.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        if let timeout = failure.timeout {
            return LabError("host \(name) (\(destination)): `\(argv.joined(separator: " "))` did not finish within \(timeout.plainText) s" + (stderr.isEmpty ? "" : ": \(stderr)"))
        }
        if failure.status == Self.sshFailed {
            return LabError("host \(name) (\(destination)) could not be reached over ssh: \(stderr.isEmpty ? "ssh exited 255" : stderr)")
        }
        return LabError("host \(name) (\(destination)): `\(argv.joined(separator: " "))` failed (exit \(failure.status)): \(stderr)")
    }
}
