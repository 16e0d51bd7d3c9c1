import Foundation
import Lab
import Pacing
import Traces
import Units

/// Runs an experiment: every source in every mode, each pair in a lab of its own, side by side;
/// the schedule played on every lab on the stream's clock; a live view while it runs; the
/// results computed from the raw logs and written to `OUT/results.json`.
public final class ExperimentRunner {
    public struct Options {
        public var out: String
        public var shaper: Shaper?
        /// The vnetstream binary the senders and receivers run as.
        public var binary: String
        /// Redraw the live view in place (a terminal) or print it every 10 s (a log).
        public var redraw: Bool
        public var print: (String) -> Void

        public init(out: String, shaper: Shaper?, binary: String, redraw: Bool, print: @escaping (String) -> Void) {
            self.out = out
            self.shaper = shaper
            self.binary = binary
            self.redraw = redraw
            self.print = print
        }
    }

    /// One source in one mode.
    struct Run {
        var source: ExperimentFile.Source
        var mode: ExperimentFile.Mode
        var traceFile: String
        var labID: String
        var folder: String
        var name: String { "\(source.name)-\(mode)" }
        var lab: Lab?
        var start: UInt64 = 0
        var sender: Command.Child?
        var receiver: Command.Child?
    }

    public let file: ExperimentFile
    public let path: String
    public let options: Options
    let topology: Topology
    let schedule: Schedule
    let intervalS: Double
    let durationS: Double
    static let port = 5004

    public init(file: ExperimentFile, path: String, options: Options) throws {
        self.file = file
        self.path = path
        self.options = options
        topology = try Topology.load(ExperimentFile.resolve(file.topology, relativeTo: path))
        schedule = try Schedule.load(ExperimentFile.resolve(file.schedule, relativeTo: path)).scaled(by: file.timeScale)
        intervalS = file.intervalS * file.timeScale
        durationS = file.durationS * file.timeScale
    }

    public func run() throws -> ExperimentResults {
        let out = options.out
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(out)/sources", withIntermediateDirectories: true)
        let startedUTC = ISO8601DateFormatter().string(from: Date())
        // The sources, as trace files the senders read.
        var traceFiles: [String: String] = [:]
        for source in file.sources {
            let target = "\(out)/sources/\(source.name).csv"
            try prepare(source, into: target)
            traceFiles[source.name] = target
        }
        // One lab per run, all built at once.
        let prefix = "x" + String(format: "%02x", UInt8.random(in: 0...255))
        var runs: [Run] = []
        for source in file.sources {
            for mode in file.modes {
                let index = runs.count
                let id = prefix + String(index, radix: 36)
                let folder = "\(out)/runs/\(source.name)-\(mode.description.replacingOccurrences(of: ":", with: "_"))"
                try fm.createDirectory(atPath: folder, withIntermediateDirectories: true)
                runs.append(Run(source: source, mode: mode, traceFile: traceFiles[source.name]!, labID: id, folder: folder))
            }
        }
        options.print("\(file.name): \(runs.count) runs side by side, \(decimal(durationS)) s each; building \(runs.count) labs")
        let built = Date()
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        let labs = Parallel.map(runs.indices) { [topology, options] index -> Result<Lab, Error> in
            Result {
                let lab = try Lab.up(topology: topology, file: topologyFile, runID: runs[index].labID, shaper: options.shaper)
                do { try lab.waitForRouting(timeout: 120) } catch {
                    lab.down()
                    throw error
                }
                return lab
            }
        }
        defer {
            for case .success(let lab) in labs { lab.down() }
        }
        for (index, result) in labs.enumerated() {
            if case .failure(let error) = result { throw ExperimentError("lab for run \(runs[index].name): \(error)") }
            runs[index].lab = try result.get()
        }
        let shaper = runs[0].lab!.shaper
        options.print(
            "labs up with OSPF converged in \(decimal(Date().timeIntervalSince(built), 1)) s (shaper \(shaper.rawValue): \(runs[0].lab!.state.shaperReason))")

        // Time zero of each run, staggered; receivers first, then senders, then the schedules.
        let base = MonotonicClock.now() + UInt64(file.startLeadS * 1e9)
        for index in runs.indices { runs[index].start = base + UInt64(Double(index) * file.staggerS * 1e9) }
        var children: [Command.Child] = []
        defer { for child in children { child.terminate() } }
        for index in runs.indices {
            let run = runs[index]
            let plan = run.lab!.plan
            let receiver = try Command.Child(
                [
                    "ip", "netns", "exec", plan.namespace(topology.receiver), options.binary, "recv",
                    "--listen", "\(topology.receiverAddress):\(Self.port)", "--interval", String(intervalS),
                    "--report-ms", String(file.reportMs), "--start-timeout", "60", "--idle-timeout", "45", "--linger", "2",
                    "--packet-log", "\(run.folder)/receiver-packets.csv", "--json", "\(run.folder)/receiver.json",
                ], stdout: "\(run.folder)/receiver.out", stderr: "\(run.folder)/receiver.err")
            children.append(receiver)
            runs[index].receiver = receiver
        }
        Thread.sleep(forTimeInterval: 0.3)
        for index in runs.indices {
            let run = runs[index]
            let plan = run.lab!.plan
            var argv = [
                "ip", "netns", "exec", plan.namespace(topology.sender), options.binary, "send", run.traceFile,
                "--to", "\(topology.receiverAddress):\(Self.port)", "--start-at", String(run.start),
                "--probe-interval", String(file.probeIntervalS),
                "--log", "\(run.folder)/sender.jsonl", "--packet-log", "\(run.folder)/sender-packets.csv",
                "--json", "\(run.folder)/sender.json",
            ]
            for vnet in topology.vnets { argv += ["--vnet", vnet.tun] }
            argv += run.mode.sendArguments
            let sender = try Command.Child(argv, stdout: "\(run.folder)/sender.out", stderr: "\(run.folder)/sender.err")
            children.append(sender)
            runs[index].sender = sender
        }
        // The schedule on every lab, and a watch on the routes its path events break.
        let players = runs.map { run in
            Background { [schedule] () -> Result<[SchedulePlayer.Applied], Error> in
                let log = try? LineFile(path: "\(run.folder)/schedule.jsonl")
                defer { log?.close() }
                return Result {
                    try SchedulePlayer(lab: run.lab!).play(schedule, start: Self.date(ofMonotonic: run.start)) { log?.write($0) }
                }
            }
        }
        let watches = runs.map { run in
            Background { [self] in self.watchRoutes(lab: run.lab!, start: run.start, folder: run.folder) }
        }
        // The live view, until every child is done (bounded: the stream's length plus margins).
        let deadline = base + UInt64((durationS + file.staggerS * Double(runs.count) + 90) * 1e9)
        var view = LiveView(runs: runs.map { ($0.name, "\($0.folder)/sender.jsonl", $0.start) }, durationS: durationS, vnets: topology.vnets.count)
        var lastPrint: UInt64 = 0
        while children.contains(where: { $0.poll() == nil }) {
            do { try Lab.checkInterrupted() } catch {
                throw ExperimentError("interrupted: the runs were stopped and the labs removed")
            }
            let now = MonotonicClock.now()
            if now > deadline {
                options.print("time limit reached: stopping the runs that have not ended")
                break
            }
            view.update()
            if options.redraw {
                options.print("\u{1B}[H\u{1B}[2J" + view.render(now: now))
            } else if now >= lastPrint + 10_000_000_000 {
                options.print(view.render(now: now))
                lastPrint = now
            }
            Thread.sleep(forTimeInterval: 1)
        }
        for child in children { child.terminate() }
        for run in runs {
            if let status = run.sender?.wait(), status != 0 {
                let text = (try? String(contentsOfFile: run.sender!.stderrFile, encoding: .utf8)) ?? ""
                throw ExperimentError("the sender of run \(run.name) failed (exit \(status)): \(text.trimmingCharacters(in: .whitespacesAndNewlines)) (lab \(run.labID), logs in \(run.folder))")
            }
        }
        // Results, from the logs.
        var results: [RunResult] = []
        for (index, run) in runs.enumerated() {
            let applied = try players[index].wait().get()
            let outages = watches[index].wait()
            results.append(try analyse(run, applied: applied, outages: outages, shaper: shaper))
        }
        let document = ExperimentResults(
            experiment: file.name, description: file.description, file: path, startedUTC: startedUTC,
            machine: Provenance.machine, gitCommit: Provenance.gitCommit(near: path),
            shaper: shaper.rawValue, shaperReason: runs[0].lab!.state.shaperReason, intervalS: intervalS, durationS: durationS,
            timeScale: file.timeScale, reportMs: file.reportMs, queueMs: LinkConditions().queueMs,
            definitions: ExperimentResults.definitionTexts, schedule: schedule.events.map { "\(decimal($0.atS)) s: \($0.summary)" },
            runs: results)
        try document.write(to: "\(out)/results.json")
        return document
    }

    static func date(ofMonotonic instant: UInt64) -> Date {
        Date().addingTimeInterval((Double(instant) - Double(MonotonicClock.now())) / 1e9)
    }

    /// Writes a source's trace file: CBR made here, or a trace (fitted if asked).
    func prepare(_ source: ExperimentFile.Source, into target: String) throws {
        if let cbr = source.cbr {
            let trace = try CBRSource.trace(rate: try BitRate(parsing: cbr), framesPerSecond: source.fps, duration: durationS)
            try TraceWriter.write(trace, header: ["CBR \(cbr) at \(decimal(source.fps)) frames/s for \(decimal(durationS)) s"], to: target)
            return
        }
        let original = ExperimentFile.resolve(source.trace!, relativeTo: path)
        let trace = try TraceReader.read(contentsOf: original, options: TraceReadOptions(framesPerSecond: source.fps))
        if let mean = source.fitMean, let peak = source.fitPeak {
            let fit = try TraceFitter.fit(trace, mean: try BitRate(parsing: mean), peak: try BitRate(parsing: peak), duration: durationS)
            try TraceWriter.write(fit.trace, header: fit.header(source: original), to: target)
        } else {
            try TraceWriter.write(trace, header: ["copy of \(original)"], to: target)
        }
    }

    /// Watches, for every path that fails in the schedule, when the VNet's ingress stops
    /// routing through it (polling its route to the receiver every 100 ms).
    func watchRoutes(lab: Lab, start: UInt64, folder: String) -> [(index: Int, outage: CapacityTimeline.Outage)] {
        let log = try? LineFile(path: "\(folder)/routes.jsonl")
        defer { log?.close() }
        var found: [(Int, CapacityTimeline.Outage)] = []
        let receiver = topology.receiverAddress
        for (index, event) in schedule.events.enumerated() where event.path != nil && event.action == "down" {
            let path = event.path!
            let links = lab.plan.transitLinks.filter { $0.path == path }
            guard let vnetIndex = links.first?.vnet else { continue }
            let ingress = topology.vnets[vnetIndex].ingress
            let pathNodes = Set(links.flatMap { [$0.a.node, $0.b.node] }).subtracting([ingress, topology.vnets[vnetIndex].egress])
            let upAt = schedule.events.first { $0.path == path && $0.action == "up" && $0.atS > event.atS }?.atS
            let eventTime = start + UInt64(event.atS * 1e9)
            Pacer.wait(until: eventTime > 500_000_000 ? eventTime - 500_000_000 : 0)
            guard let before = lab.nextHop(node: ingress, to: receiver), let neighbour = lab.neighbour(of: ingress, at: before),
                pathNodes.contains(neighbour)
            else { continue }  // the VNet was not routing over this path
            Pacer.wait(until: eventTime)
            var changed: Double?
            let limit = start + UInt64(min(durationS, (upAt ?? durationS) + 5) * 1e9)
            while MonotonicClock.now() < limit {
                let hop = lab.nextHop(node: ingress, to: receiver)
                if hop != nil && hop != before {
                    changed = Double(MonotonicClock.now() - start) / 1e9
                    break
                }
                if (try? Lab.checkInterrupted()) == nil { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            let end = changed ?? upAt
            let outage = CapacityTimeline.Outage(
                vnet: vnetIndex + 1, path: path, fromS: event.atS, toS: end.map(round3), rerouted: changed != nil)
            log?.write(
                #"{"kind":"route","path":"\#(path)","vnet":\#(vnetIndex + 1),"ingress":"\#(ingress)","hop_before":"\#(before)","failed_at_s":\#(event.atS),"rerouted_s":\#(changed.map { String(round3($0)) } ?? "null")}"#)
            found.append((index, outage))
        }
        return found
    }

    func analyse(
        _ run: Run, applied: [SchedulePlayer.Applied], outages watched: [(index: Int, outage: CapacityTimeline.Outage)], shaper: Shaper
    ) throws -> RunResult {
        // An outage starts when its failure took effect (the player's applied time).
        let outages = watched.map { entry -> CapacityTimeline.Outage in
            var outage = entry.outage
            if let record = applied.first(where: { $0.index == entry.index + 1 }) { outage.fromS = record.appliedS }
            return outage
        }
        let timeline = CapacityTimeline.from(schedule: schedule, applied: applied, topology: topology, outages: outages)
        let uni: Int? = if case .uni(let n) = run.mode { n } else { nil }
        let analysis = RunAnalysis(
            sent: try PacketLogs.sent("\(run.folder)/sender-packets.csv"),
            received: try PacketLogs.received("\(run.folder)/receiver-packets.csv"),
            startMonotonic: run.start, intervalS: intervalS, durationS: durationS, capacity: timeline,
            queueMs: LinkConditions().queueMs, burstBytes: { Double(InterfaceShaping.tbfBurstBytes($0)) },
            usesAllVNets: run.mode.usesAllVNets, uniVNet: uni)
        let (intervals, total) = analysis.intervalsAndTotal()
        let streamBytes = analysis.streamBytes
        let sentBytes = analysis.sentBytes
        let relative = run.folder.hasPrefix(options.out + "/") ? String(run.folder.dropFirst(options.out.count + 1)) : run.folder
        return RunResult(
            source: run.source.name, mode: run.mode.description, shaper: shaper.rawValue, lab: run.labID, intervals: intervals,
            total: total, streamBytes: streamBytes, sentBytes: sentBytes,
            extraBytesPct: percent(Double(sentBytes - streamBytes), Double(streamBytes)), shifts: analysis.shifts(),
            failovers: analysis.failovers(), capacity: timeline,
            logs: [
                "sender_packets": "\(relative)/sender-packets.csv", "receiver_packets": "\(relative)/receiver-packets.csv",
                "sender_log": "\(relative)/sender.jsonl", "sender_summary": "\(relative)/sender.json",
                "receiver_results": "\(relative)/receiver.json", "schedule": "\(relative)/schedule.jsonl",
                "routes": "\(relative)/routes.jsonl", "trace": run.traceFile,
            ])
    }
}

public struct ExperimentError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

func decimal(_ value: Double, _ places: Int = 3) -> String { value.plainText(places: places) }

/// Work on a thread of its own, and its result.
final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: T?

    init(_ work: @escaping () -> T) {
        nonisolated(unsafe) let work = work
        let thread = Thread { [self] in
            result = work()
            done.signal()
        }
        thread.start()
    }

    func wait() -> T {
        done.wait()
        done.signal()
        return result!
    }
}

enum Parallel {
    /// `transform` on every element, each on a thread of its own; results in order.
    static func map<T>(_ indices: Range<Int>, _ transform: @escaping (Int) -> T) -> [T] {
        let jobs = indices.map { index in Background { transform(index) } }
        return jobs.map { $0.wait() }
    }
}
