import CNetShims
import Foundation
import Units

/// Runs the real tools (ip, tc, nft, bird, qemu): argv in; exit status, output and duration
/// out; a time limit on every call. A failure carries the command line, its exit status (or
/// the limit it ran past) and its stderr, and names the Debian package when the tool itself is
/// missing.
public enum Command {
    /// How long a command may run unless its caller says otherwise, seconds: far beyond what
    /// ip, tc, nft and birdc take, short enough that a hung one cannot hang a schedule or
    /// `lab status` for good.
    public static let defaultTimeout: Double = 30

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var argv: [String]
        public var status: Int32
        public var stderr: String
        /// Set when the command ran past its time limit and was killed.
        public var timeout: Double? = nil

        public var description: String {
            let text = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            if let timeout {
                return "`\(argv.joined(separator: " "))` did not finish within \(timeout.plainText) s and was killed" + (text.isEmpty ? "" : ": \(text)")
            }
            return "`\(argv.joined(separator: " "))` failed (exit \(status)): \(text)"
        }
    }

    /// How a command ended.
    public struct Outcome: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var seconds: Double
    }

    static let packages = [
        "ip": "iproute2", "tc": "iproute2", "nft": "nftables", "bird": "bird2", "birdc": "bird2",
        "qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "cpio": "cpio", "gnuplot": "gnuplot-nox", "ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "ssh": "openssh-client", "ssh-keygen": "openssh-client", "sshd": "openssh-server",
    ]

    /// The path of a tool, or an error naming its Debian package.
    public static func locate(_ name: String) throws -> String {
        for directory in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
            let path = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw LabError("\(name) is not installed: apt-get install \(packages[name] ?? name) (scripts/install-deps does)")
    }

    /// Runs to completion (within `timeout` seconds); returns stdout, or throws `Failure`.
    @discardableResult
    public static func run(_ argv: [String], input: String? = nil, timeout: Double = defaultTimeout) throws -> String {
        try start(argv, input: input).finish(timeout: timeout).stdout
    }

    /// Runs to completion (within `timeout` seconds) and says how it ended, whatever its exit
    /// status; throws only when it could not be started or ran past the limit.
    public static func execute(_ argv: [String], input: String? = nil, timeout: Double = defaultTimeout) throws -> Outcome {
        try start(argv, input: input).collect(timeout: timeout)
    }

    /// Runs several commands at once and waits for all; throws the first failure.
    public static func runConcurrently(_ commands: [(argv: [String], input: String?)], timeout: Double = defaultTimeout) throws {
        try Waiting([]).run(commands, timeout: timeout)
    }

    /// A started command. Spawned with posix_spawn rather than Foundation's Process, which
    /// takes about 50 ms a command here: too slow for schedule events due within 50 ms.
    final class Running {
        let pid: Int32
        var fds: [Int32]
        let argv: [String]
        /// Written to its stdin when it is collected; a process started ahead of time gets its
        /// input only then (`Command.Waiting`).
        var input: String?

        init(pid: Int32, fds: [Int32], argv: [String], input: String?) {
            self.pid = pid
            self.fds = fds
            self.argv = argv
            self.input = input
        }

        let started = Date()

        /// Waits for it (killing it past `timeout` seconds) and collects its output.
        func collect(timeout: Double) throws -> Outcome {
            var out: UnsafeMutablePointer<CChar>?
            var err: UnsafeMutablePointer<CChar>?
            var outLength = 0
            var errLength = 0
            let bytes = Array((input ?? "").utf8)
            let limit = Int32(clamping: Int((timeout * 1000).rounded(.up)))
            let status = bytes.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) {
                    vns_collect(pid, &fds, $0.baseAddress, $0.count, &out, &outLength, &err, &errLength, limit)
                }
            }
            defer {
                free(out)
                free(err)
            }
            let stdout = out.map { String(cString: $0) } ?? ""
            let stderr = err.map { String(cString: $0) } ?? ""
            if status == VNS_TIMED_OUT { throw Failure(argv: argv, status: status, stderr: stderr, timeout: timeout) }
            return Outcome(status: status, stdout: stdout, stderr: stderr, seconds: Date().timeIntervalSince(started))
        }

        /// Kills a process that was started ahead of time and is not needed, and reaps it.
        func discard() {
            kill(pid, SIGKILL)
            input = nil
            _ = try? collect(timeout: 5)
        }

        /// Its stdout, or `Failure` unless it exited with status 0.
        func finish(timeout: Double) throws -> Outcome {
            let outcome = try collect(timeout: timeout)
            guard outcome.status == 0 else { throw Failure(argv: argv, status: outcome.status, stderr: outcome.stderr) }
            return outcome
        }
    }

    /// Processes started before they are due, each blocked reading its stdin: at the due moment
    /// `run` hands each command's input to the one started for its argv, so what a schedule
    /// event waits for is the tool's own work, not the process start (fork, exec and dynamic
    /// loading, which took up to 290 ms on this machine under load, against 5 ms at rest).
    public final class Waiting: WaitingCommands, @unchecked Sendable {
        private let lock = NSLock()
        private var waiting: [Running]

        /// Starts one process per argv; one that cannot start is left to `run` to start.
        init(_ argvs: [[String]]) {
            waiting = argvs.compactMap { try? Command.start($0, input: nil) }
        }

        public func run(_ commands: [(argv: [String], input: String?)], timeout: Double) throws {
            lock.lock()
            var spare = waiting
            waiting = []
            lock.unlock()
            var running: [Running] = []
            var firstError: Error?
            for command in commands {
                if let index = spare.firstIndex(where: { $0.argv == command.argv }) {
                    let process = spare.remove(at: index)
                    process.input = command.input
                    running.append(process)
                } else {
                    do { running.append(try Command.start(command.argv, input: command.input)) } catch { firstError = firstError ?? error }
                }
            }
            for process in spare { process.discard() }
            for process in running {
                do { _ = try process.finish(timeout: timeout) } catch { firstError = firstError ?? error }
            }
            if let firstError { throw firstError }
        }

        public func cancel() {
            lock.lock()
            let spare = waiting
            waiting = []
            lock.unlock()
            for process in spare { process.discard() }
        }

        deinit { for process in waiting { process.discard() } }
    }

    static func start(_ argv: [String], input: String?) throws -> Running {
        let full = [argv[0].hasPrefix("/") ? argv[0] : try locate(argv[0])] + argv.dropFirst()
        var pointers = full.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        var fds: [Int32] = [-1, -1, -1]
        let pid = vns_spawn_piped(&pointers, &fds)
        guard pid > 0 else { throw Failure(argv: argv, status: -1, stderr: String(cString: strerror(errno))) }
        return Running(pid: pid, fds: fds, argv: argv, input: input)
    }

    /// Starts a daemon that forks into the background (bird): its output goes to /dev/null, so
    /// that the child, which keeps its descriptors, cannot hold a pipe of ours open; waits for
    /// the starting process to exit and checks its status.
    public static func startDaemon(_ argv: [String]) throws {
        // Not Foundation's Process: on Linux it learns of a child's exit through a descriptor
        // the child inherits, and a daemon keeps it open for good.
        let full = [argv[0].hasPrefix("/") ? argv[0] : try locate(argv[0])] + argv.dropFirst()
        var pointers = full.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        let status = vns_spawn_detached(&pointers)
        guard status == 0 else {
            throw Failure(argv: argv, status: status, stderr: status < 0 ? String(cString: strerror(errno)) : "(see its log)")
        }
    }

    /// A long-running child whose output goes to files (a sender or receiver of an experiment).
    public final class Child: @unchecked Sendable {
        public let pid: Int32
        public let argv: [String]
        public let stdoutFile: String
        public let stderrFile: String
        private var status: Int32?
        /// How `terminate` asks it to stop, when SIGTERM to `pid` would not reach it (a command
        /// on another host, whose local process is its ssh client).
        public var stop: (@Sendable () -> Void)?

        /// Starts `argv` with stdout and stderr written to the two files.
        public init(_ argv: [String], stdout: String, stderr: String) throws {
            let full = [argv[0].hasPrefix("/") ? argv[0] : try Command.locate(argv[0])] + argv.dropFirst()
            var pointers = full.map { strdup($0) } + [nil]
            defer { for pointer in pointers { free(pointer) } }
            let pid = vns_spawn_to_files(&pointers, stdout, stderr)
            guard pid > 0 else { throw Failure(argv: argv, status: -1, stderr: String(cString: strerror(errno))) }
            self.pid = pid
            self.argv = argv
            self.stdoutFile = stdout
            self.stderrFile = stderr
        }

        /// The exit status if it has exited (nil while it runs).
        public func poll() -> Int32? {
            if status == nil {
                let result = vns_wait(pid, 0)
                if result != -2 { status = result }
            }
            return status
        }

        /// Waits for it to exit; returns its exit status.
        @discardableResult
        public func wait() -> Int32 {
            if status == nil { status = vns_wait(pid, 1) }
            return status!
        }

        /// Asks it to stop (SIGTERM), then waits.
        public func terminate() {
            guard poll() == nil else { return }
            if let stop { stop() } else { kill(pid, SIGTERM) }
            wait()
        }

        /// Throws `Failure` (with its stderr file's text) unless it exited with status 0.
        public func check() throws {
            let status = wait()
            guard status == 0 else {
                let text = (try? String(contentsOfFile: stderrFile, encoding: .utf8)) ?? ""
                throw Failure(argv: argv, status: status, stderr: text.isEmpty ? "(stderr empty: \(stderrFile))" : text)
            }
        }
    }
}
