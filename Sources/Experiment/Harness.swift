import Foundation
import Lab
import Pacing
import RunRecords

/// A kind of experiment: how its file loads, which runs it makes (labs, processes, schedules
/// as data), how it turns what they left behind into its results, and how those are reported.
/// The harness does everything else. Adding a kind is one type conforming to this and one line
/// in `ExperimentKinds.all`.
public protocol ExperimentKind {
    associatedtype Results: ResultsDocument
    associatedtype Report: ExperimentReporting

    /// The `kind` key of its experiment files and results documents.
    static var kind: String { get }
    /// Reads and checks an experiment file of this kind.
    static func load(_ path: String) throws -> Self
    var name: String { get }
    /// The runs, each in a lab of its own, side by side. May write inputs (traces) under
    /// `context.out` first.
    func runs(_ context: HarnessContext) throws -> [LabRun]
    /// Seconds after the first run's time zero by which every run must have ended.
    func timeLimitS(runs: Int) -> Double
    /// Seconds from starting the processes to the first run's time zero (default 3).
    var startLeadS: Double { get }
    /// Seconds between the time zeros of consecutive runs (default 0).
    var staggerS: Double { get }
    /// How long each stream lasts, seconds: the live view and the route watch use it.
    var streamS: Double { get }
    /// The results document, from what the runs left behind (their logs, the lab's records).
    func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> Results
    static func report(_ results: Results, folder: String) -> Report
}

/// What a harness run is given: where things go, how links are shaped, which binary the
/// processes in the labs run as, how to print.
public struct HarnessContext: Sendable {
    public var file: String
    public var out: String
    public var shaper: Shaper?
    public var binary: String
    /// Redraw the live view in place (a terminal) or print it every 10 s (a log).
    public var redraw: Bool
    public var print: @Sendable (String) -> Void
    /// Filled in by the harness: when, on what and from which commit the experiment ran.
    public internal(set) var provenance = Provenance()
    /// Places a run's topology on real hosts (`run --hosts`): the topology as placed and the
    /// hosts its nodes go to. Nil: hosts that name no ssh are emulated.
    public var place: (@Sendable (Topology) throws -> HostsFile.Placement)?

    public init(file: String, out: String, shaper: Shaper?, binary: String, redraw: Bool, print: @escaping @Sendable (String) -> Void) {
        self.file = file
        self.out = out
        self.shaper = shaper
        self.binary = binary
        self.redraw = redraw
        self.print = print
    }

    /// `path` relative to the output folder, when it lies inside it.
    public func relative(_ path: String) -> String {
        path.hasPrefix(out + "/") ? String(path.dropFirst(out.count + 1)) : path
    }
}

/// One run: a lab of its own and what runs in it.
public struct LabRun {
    public var name: String
    /// Where its logs go (created by the harness).
    public var folder: String
    public var topology: Topology
    public var topologyFile: String
    /// The processes to start in the lab, given the lab and the run's time zero (CLOCK_MONOTONIC).
    public var processes: (Lab, UInt64) throws -> [RunProcess]
    /// Condition shifts played on the lab on the run's clock, logged to `schedule.jsonl`; for
    /// every path failure the harness also watches when the route moves (`routes.jsonl`).
    public var schedule: Schedule?
    /// A sender's JSON-lines log the live view follows.
    public var liveLog: String?

    public init(
        name: String, folder: String, topology: Topology, topologyFile: String, schedule: Schedule? = nil, liveLog: String? = nil,
        processes: @escaping (Lab, UInt64) throws -> [RunProcess]
    ) {
        self.name = name
        self.folder = folder
        self.topology = topology
        self.topologyFile = topologyFile
        self.schedule = schedule
        self.liveLog = liveLog
        self.processes = processes
    }
}

/// A process of a run, started inside one of the lab's namespaces.
public struct RunProcess: Sendable {
    public enum Role: Sendable {
        /// Listens before the streams start (a receiver, a capture).
        case listener
        /// The stream: starts after the listeners, and must exit with status 0.
        case stream
    }

    public enum Ending: Sendable {
        /// Ends by itself; the run waits for it.
        case byItself
        /// Runs until the run's other processes have ended, then is stopped (a capture).
        case whenOthersEnd
    }

    public var name: String
    public var node: String
    /// The program's arguments.
    public var arguments: [String]
    public var role: Role
    public var ending: Ending
    /// The program: nil for the harness's vnetstream binary, else a tool (`iperf3`) on PATH.
    public var program: String?
    /// Seconds after the run's time zero at which it starts (nil: with the others of its role).
    public var startAtS: Double?

    public init(
        name: String, node: String, arguments: [String], role: Role, ending: Ending = .byItself, program: String? = nil,
        startAtS: Double? = nil
    ) {
        self.name = name
        self.node = node
        self.arguments = arguments
        self.role = role
        self.ending = ending
        self.program = program
        self.startAtS = startAtS
    }

    /// What runs inside the node's namespace: a late start waits in `sleep`, then becomes the
    /// program (one process throughout, so that the harness waits for and stops it as any other).
    func argv(binary: String, timeZero: UInt64) throws -> [String] {
        let program = try self.program.map { try Command.locate($0) } ?? binary
        guard let startAtS else { return [program] + arguments }
        let delay = max(0, (Double(timeZero) - Double(MonotonicClock.now())) / 1e9 + startAtS)
        return ["/bin/sh", "-c", "sleep \(decimal(delay, 3)) && exec \"$0\" \"$@\"", program] + arguments
    }
}

/// What a run left behind, for the analysis.
public struct FinishedRun {
    public var run: LabRun
    public var lab: Lab
    /// The run's time zero on CLOCK_MONOTONIC.
    public var start: UInt64
    /// The schedule's events as the lab applied them.
    public var applied: [SchedulePlayer.Applied]
    /// The reroutes the route watch saw, by the index of the failure event in the schedule.
    public var outages: [(index: Int, outage: CapacityTimeline.Outage)]
    /// The kernel's counters on every router interface: before the streams, after each batch
    /// of schedule events, and after every process ended.
    public var kernel: [KernelSnapshot]
}

public struct ExperimentError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Runs an experiment of any kind: builds every run's lab at once and removes them all at the
/// end (on failure and on interrupt too), starts the listeners, then the streams, plays each
/// schedule on its run's clock, shows the live view, enforces the time limit, records the
/// provenance and writes `OUT/results.json`.
public enum Harness {
    public static func run<Kind: ExperimentKind>(_ experiment: Kind, context base: HarnessContext) throws -> Kind.Results {
        var context = base
        let fm = FileManager.default
        try fm.createDirectory(atPath: context.out, withIntermediateDirectories: true)
        context.provenance = Provenance(startedUTC: ISO8601DateFormatter().string(from: Date()), file: context.file)
        let runs = try experiment.runs(context)
        guard !runs.isEmpty else { throw ExperimentError("\(context.file): the experiment makes no runs") }
        for run in runs { try fm.createDirectory(atPath: run.folder, withIntermediateDirectories: true) }
        if let warning = Lab.orphanWarning { context.print(warning) }
        let prefix = String(Kind.kind.prefix(1)) + String(format: "%02x", UInt8.random(in: 0...255))
        context.print("\(experiment.name): \(runs.count) run\(runs.count == 1 ? "" : "s") side by side; building \(runs.count) lab\(runs.count == 1 ? "" : "s")")
        let built = Date()
        let labs = Parallel.map(runs.indices) { [context] index -> Result<Lab, Error> in
            Result {
                let placed = try context.place?(runs[index].topology)
                let lab = try Lab.up(
                    topology: placed?.topology ?? runs[index].topology, file: runs[index].topologyFile, runID: prefix + String(index, radix: 36),
                    shaper: context.shaper, ownedByThisProcess: true, hosts: placed?.hosts ?? [:])
                do { try lab.waitForRouting(timeout: 120) } catch {
                    lab.down()
                    throw error
                }
                return lab
            }
        }
        defer { for case .success(let lab) in labs { lab.down() } }
        var up: [Lab] = []
        for (index, result) in labs.enumerated() {
            if case .failure(let error) = result { throw ExperimentError("lab for run \(runs[index].name): \(error)") }
            up.append(try result.get())
        }
        context.provenance.shaper = up[0].shaper.rawValue
        context.provenance.shaperReason = up[0].state.shaperReason
        context.print(
            "labs up with OSPF converged in \(decimal(Date().timeIntervalSince(built), 1)) s (shaper \(up[0].shaper.rawValue): \(up[0].state.shaperReason))")

        // Time zero of each run, staggered; listeners first, then the streams, then the schedules.
        let base = MonotonicClock.now() + UInt64(experiment.startLeadS * 1e9)
        let starts = runs.indices.map { base + UInt64(Double($0) * experiment.staggerS * 1e9) }
        // The kernel's counters before anything of the runs was sent.
        let snapshots = runs.indices.map { _ in SnapshotLog() }
        func snapshot(_ index: Int, _ label: String) {
            let atS = (Double(MonotonicClock.now()) - Double(starts[index])) / 1e9
            snapshots[index].append(up[index].kernelSnapshot(label: label, atS: (atS * 1000).rounded() / 1000))
        }
        _ = Parallel.map(runs.indices) { snapshot($0, "start") }
        let planned = try runs.indices.map { try runs[$0].processes(up[$0], starts[$0]) }
        // Hosts that do not share this machine's files get the run's folders, and give back
        // what was written there once the processes end.
        let apart = try up.map { lab in try lab.hostsApart(from: context.out) }
        for (lab, hosts) in zip(up, apart) { try lab.makeFolders(context.out, on: hosts) }
        var children: [(run: Int, process: RunProcess, child: Command.Child)] = []
        defer { for entry in children { entry.child.terminate() } }
        for role in [RunProcess.Role.listener, .stream] {
            for (index, processes) in planned.enumerated() {
                for process in processes where process.role == role {
                    let folder = runs[index].folder
                    let child = try up[index].child(
                        node: process.node, try process.argv(binary: up[index].binary(on: process.node, local: context.binary), timeZero: starts[index]),
                        stdout: "\(folder)/\(process.name).out", stderr: "\(folder)/\(process.name).err")
                    children.append((index, process, child))
                }
            }
            if role == .listener { Thread.sleep(forTimeInterval: 0.5) }
        }
        let players = runs.indices.map { index in
            Background { () -> Result<[SchedulePlayer.Applied], Error> in
                guard let schedule = runs[index].schedule else { return .success([]) }
                let log = try? LineFile(path: "\(runs[index].folder)/schedule.jsonl")
                defer { log?.close() }
                return Result {
                    try SchedulePlayer(lab: up[index]).play(
                        schedule, start: Self.date(ofMonotonic: starts[index]),
                        afterBatch: { batch in snapshot(index, batch.map(\.event).joined(separator: "; ")) }
                    ) { log?.write($1) }
                }
            }
        }
        let durationS = experiment.timeLimitS(runs: runs.count)
        let watches = runs.indices.map { index in
            Background { () -> [(index: Int, outage: CapacityTimeline.Outage)] in
                guard let schedule = runs[index].schedule else { return [] }
                return RouteWatch(lab: up[index], schedule: schedule, start: starts[index], durationS: experiment.streamS)
                    .watch(log: "\(runs[index].folder)/routes.jsonl")
            }
        }
        try wait(for: children, runs: runs, starts: starts, deadline: base + UInt64(durationS * 1e9), experiment: experiment, context: context)
        for entry in children where entry.process.ending == .whenOthersEnd { entry.child.terminate() }
        if apart.contains(where: { !$0.isEmpty }) { for entry in children { _ = entry.child.wait() } }
        for (lab, hosts) in zip(up, apart) where !hosts.isEmpty {
            let counts = try lab.gather(context.out, from: hosts)
            context.print("gathered " + counts.sorted { $0.key < $1.key }.map { "\($0.value) files from \($0.key)" }.joined(separator: ", "))
        }
        for entry in children where entry.process.role == .stream {
            let status = entry.child.wait()
            guard status == 0 else {
                let text = (try? String(contentsOfFile: entry.child.stderrFile, encoding: .utf8)) ?? ""
                throw ExperimentError(
                    "the \(entry.process.name) of run \(runs[entry.run].name) failed (exit \(status)): \(text.trimmingCharacters(in: .whitespacesAndNewlines)) (lab \(up[entry.run].runID), logs in \(runs[entry.run].folder))")
            }
        }
        var finished: [FinishedRun] = []
        for index in runs.indices {
            let applied = try players[index].wait().get()
            // Every process of the run has ended by now (or, past the time limit, was stopped):
            // nothing of it is in flight when the kernel's counters are read the last time.
            snapshot(index, "end")
            finished.append(
                FinishedRun(
                    run: runs[index], lab: up[index], start: starts[index], applied: applied, outages: watches[index].wait(),
                    kernel: snapshots[index].all))
        }
        let results = try experiment.analyse(finished, context: context)
        try results.write(to: "\(context.out)/results.json")
        return results
    }

    /// Until every process that ends by itself has ended: the live view, interrupts, the time limit.
    private static func wait<Kind: ExperimentKind>(
        for children: [(run: Int, process: RunProcess, child: Command.Child)], runs: [LabRun], starts: [UInt64], deadline: UInt64,
        experiment: Kind, context: HarnessContext
    ) throws {
        let followed = runs.indices.compactMap { index in runs[index].liveLog.map { (runs[index].name, $0, starts[index]) } }
        var view = followed.isEmpty ? nil : LiveView(runs: followed, durationS: experiment.streamS, vnets: runs[0].topology.vnets.count)
        var lastPrint: UInt64 = 0
        while children.contains(where: { $0.process.ending == .byItself && $0.child.poll() == nil }) {
            do { try Lab.checkInterrupted() } catch {
                throw ExperimentError("interrupted: the runs were stopped and the labs removed")
            }
            let now = MonotonicClock.now()
            if now > deadline {
                context.print("time limit reached: stopping the runs that have not ended")
                return
            }
            if view != nil {
                view!.update()
                if context.redraw {
                    context.print("\u{1B}[H\u{1B}[2J" + view!.render(now: now))
                } else if now >= lastPrint + 10_000_000_000 {
                    context.print(view!.render(now: now))
                    lastPrint = now
                }
            }
            Thread.sleep(forTimeInterval: view == nil ? 0.5 : 1)
        }
    }

    /// One run's snapshots, appended from the schedule's thread and the harness's.
    final class SnapshotLog: @unchecked Sendable {
        private let lock = NSLock()
        private var snapshots: [KernelSnapshot] = []
        func append(_ snapshot: KernelSnapshot) {
            lock.lock()
            snapshots.append(snapshot)
            lock.unlock()
        }
        var all: [KernelSnapshot] {
            lock.lock()
            defer { lock.unlock() }
            return snapshots
        }
    }

    static func date(ofMonotonic instant: UInt64) -> Date {
        Date().addingTimeInterval((Double(instant) - Double(MonotonicClock.now())) / 1e9)
    }
}

/// The defaults of the timing a kind may leave unsaid.
extension ExperimentKind {
    public var startLeadS: Double { 3 }
    public var staggerS: Double { 0 }
}

func decimal(_ value: Double, _ places: Int = 3) -> String { value.plainText(places: places) }
