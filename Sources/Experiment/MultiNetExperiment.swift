import Control
import Foundation
import Lab
import RunRecords
import Traces
import Units

/// The multi-net kind (`Experiments/paper-multinet.toml`, the files without a `kind` key):
/// every source in every mode, each pair in a lab of its own, side by side; the schedule played
/// on every lab on the stream's clock; per run and interval, loss next to the fluid bound, and
/// how the split followed each change.
public struct MultiNetExperiment: ExperimentKind {
    public static let kind = "multinet"
    public let file: ExperimentFile
    public let path: String
    let topologyFile: String
    let topology: Topology
    let schedule: Schedule
    let intervalS: Double
    let durationS: Double
    static let port = 5004

    public static func load(_ path: String) throws -> MultiNetExperiment {
        let file = try ExperimentFile.load(path)
        let topologyFile = ExperimentFile.resolve(file.topology, relativeTo: path)
        return MultiNetExperiment(
            file: file, path: path, topologyFile: topologyFile, topology: try Topology.load(topologyFile),
            schedule: try Schedule.load(ExperimentFile.resolve(file.schedule, relativeTo: path)).scaled(by: file.timeScale),
            intervalS: file.intervalS * file.timeScale, durationS: file.durationS * file.timeScale)
    }

    public var name: String { file.name }
    public var startLeadS: Double { file.startLeadS }
    public var staggerS: Double { file.staggerS }
    public var streamS: Double { durationS }
    public func timeLimitS(runs: Int) -> Double { durationS + file.staggerS * Double(runs) + 90 }

    /// The adaptive controller's parameters as every multi-net run uses them.
    var controller: AdaptiveController.Parameters {
        var parameters = AdaptiveController.Parameters()
        parameters.probeInterval = file.probeIntervalS
        return parameters
    }

    public func runs(_ context: HarnessContext) throws -> [LabRun] {
        try FileManager.default.createDirectory(atPath: "\(context.out)/sources", withIntermediateDirectories: true)
        var runs: [LabRun] = []
        var used: [SourceUsed] = []
        for source in file.sources {
            let trace = "\(context.out)/sources/\(source.name).csv"
            let what = try prepare(source, into: trace)
            used.append(what)
            context.print("source \(source.name): \(what.input) (\(what.reason))")
            for mode in file.modes(of: source) {
                let folder = "\(context.out)/runs/\(source.name)-\(mode.name.replacingOccurrences(of: ":", with: "_"))"
                var receiver = ReceiveInvocation(
                    listen: "\(topology.receiverAddress):\(Self.port)", intervalS: intervalS, reportMs: file.reportMs,
                    // The receiver starts before the streams' lead and stagger: it must wait that
                    // long for its first packet (with start_lead_s = 120 in the VM, 60 s did not).
                    startTimeoutS: 60 + file.startLeadS + file.staggerS * Double(file.runs.count), idleTimeoutS: 45,
                    packetLog: "\(folder)/receiver-packets.csv", json: "\(folder)/receiver.json", trace: trace)
                if source.recovery != .none || source.latencyMs != 200 { receiver.latencyS = source.latencyMs / 1000 }
                runs.append(
                    LabRun(
                        name: "\(source.name)-\(mode.name)", folder: folder, topology: topology, topologyFile: topologyFile, schedule: schedule,
                        liveLog: "\(folder)/sender.jsonl"
                    ) { [topology, file] _, start in
                        var sender = SendInvocation(
                            trace: trace, to: "\(topology.receiverAddress):\(Self.port)", startAt: start, mode: mode,
                            tuns: topology.vnets.map(\.tun), probeIntervalS: file.probeIntervalS, log: "\(folder)/sender.jsonl",
                            packetLog: "\(folder)/sender-packets.csv", json: "\(folder)/sender.json", shed: source.shed)
                        // A VNet's reservation on a provisioned access link caps what the controller believes it carries.
                        if source.recovery != .none { sender.recovery = source.recovery.rawValue }
                        if source.recovery != .none || source.latencyMs != 200 { sender.latencyS = source.latencyMs / 1000 }
                        sender.fec = source.fec?.description
                        let reserved = topology.reservations
                        if !reserved.isEmpty {
                            sender.ceilings = Dictionary(
                                uniqueKeysWithValues: topology.vnets.compactMap { vnet in reserved[vnet.name].map { (vnet.tun, $0.description) } })
                        }
                        return [
                            RunProcess(name: "receiver", node: topology.receiver, arguments: receiver.arguments, role: .listener),
                            RunProcess(name: "sender", node: topology.sender, arguments: sender.arguments, role: .stream),
                        ]
                    })
            }
        }
        try JSONFile.write(used, to: "\(context.out)/sources/sources.json")
        return runs
    }

    /// Writes a source's trace file: CBR made here, or a trace (fitted if asked); says what it
    /// streams and why.
    @discardableResult
    func prepare(
        _ source: ExperimentFile.Source, into target: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> SourceUsed {
        func typed(_ trace: FrameTrace) -> FrameTrace {
            guard let gop = source.gop, !trace.hasFrameTypes else { return trace }
            return trace.assigning(gop)
        }
        let gopNote = source.gop.map { "; frame types from the GoP pattern \($0) where the trace has none" } ?? ""
        if let cbr = source.cbr {
            let trace = typed(try CBRSource.trace(rate: try BitRate(parsing: cbr), framesPerSecond: source.fps, duration: durationS))
            try TraceWriter.write(trace, header: ["CBR \(cbr) at \(decimal(source.fps)) frames/s for \(decimal(durationS)) s\(gopNote)"], to: target)
            return SourceUsed(name: source.name, input: "CBR \(cbr)", reason: "made here", fit: nil)
        }
        let (original, reason) = try ExperimentFile.traceFile(of: source, relativeTo: path, environment: environment)
        // Types go on before the fit, so that a window of the trace keeps the groups it had.
        let trace = typed(try TraceReader.read(contentsOf: original, options: TraceReadOptions(framesPerSecond: source.fps)))
        if let mean = source.fitMean, let peak = source.fitPeak {
            let fit = try TraceFitter.fit(trace, mean: try BitRate(parsing: mean), peak: try BitRate(parsing: peak), duration: durationS)
            let header = fit.header(source: original)
            try TraceWriter.write(fit.trace, header: header, to: target)
            return SourceUsed(name: source.name, input: original, reason: reason, fit: header.dropFirst(2).joined(separator: "; "))
        }
        try TraceWriter.write(trace, header: ["copy of \(original)"], to: target)
        return SourceUsed(name: source.name, input: original, reason: reason, fit: nil)
    }

    public func analyse(_ finished: [FinishedRun], context: HarnessContext) throws -> ExperimentResults {
        var results: [RunResult] = []
        for (index, run) in finished.enumerated() {
            let (source, mode) = file.runs[index]
            results.append(try analyse(run, source: source, mode: mode, context: context))
        }
        return ExperimentResults(
            experiment: file.name, description: file.description, provenance: context.provenance,
            sources: try JSONFile.read([SourceUsed].self, from: "\(context.out)/sources/sources.json"), intervalS: intervalS, durationS: durationS, timeScale: file.timeScale, reportMs: file.reportMs, queueMs: LinkConditions().queueMs,
            controller: controller, targets: file.targets, definitions: ExperimentResults.definitionTexts,
            schedule: schedule.events.map { "\(decimal($0.atS)) s: \($0.summary)" }, runs: results)
    }

    func analyse(_ finished: FinishedRun, source: ExperimentFile.Source, mode: SendMode, context: HarnessContext) throws -> RunResult {
        // An outage starts when its failure took effect (the player's applied time).
        let outages = finished.outages.map { entry -> CapacityTimeline.Outage in
            var outage = entry.outage
            if let record = finished.applied.first(where: { $0.index == entry.index + 1 }) { outage.fromS = record.appliedS }
            return outage
        }
        let timeline = CapacityTimeline.from(schedule: schedule, applied: finished.applied, topology: topology, outages: outages)
        let folder = finished.run.folder
        // The network's loss is the originals'; retransmissions are what recovery added (their
        // effect is the receiver's residual loss, their cost counted below).
        let sentRows = try CSVLog.read(SentPacket.self, from: "\(folder)/sender-packets.csv")
        let resentBytes = sentRows.lazy.filter(\.resent).reduce(0) { $0 + $1.bytes }
        let parityBytes = sentRows.lazy.filter(\.parity).reduce(0) { $0 + $1.bytes }
        var analysis = RunAnalysis(
            sent: sentRows.filter { !$0.resent && !$0.parity },
            received: try CSVLog.read(ReceivedPacket.self, from: "\(folder)/receiver-packets.csv").filter { !$0.resent && !$0.parity },
            startMonotonic: finished.start, intervalS: intervalS, durationS: durationS, capacity: timeline,
            queueBytes: { [plan = finished.lab.plan] vnet, bits in plan.queueBytes(vnet: vnet - 1, bitsPerSecond: bits) ?? 0 },
            usesAllVNets: mode.usesAllVNets, uniVNet: mode.uniVNet)
        analysis.leaveAllowanceS = file.targets.leaveMs / 1000
        analysis.load = sentRows.filter { $0.resent || $0.parity }
        var (intervals, total) = analysis.intervalsAndTotal()
        let receiver = try JSONFile.read(ReceiverResult.self, from: "\(folder)/receiver.json")
        let sender = try JSONFile.read(SenderSummary.self, from: "\(folder)/sender.json")
        let traceFile = "\(context.out)/sources/\(source.name).csv"
        if let report = receiver.report,
            let frames = FrameFigures.compute(
                receiver: report, trace: try TraceReader.read(contentsOf: traceFile), mtu: sender.mtu, intervalS: intervalS,
                count: intervals.count, capacity: timeline, vnets: mode.uniVNet.map { [$0] } ?? Array(1...topology.vnets.count))
        {
            for index in intervals.indices { intervals[index].frames = frames.intervals[index] }
            total.frames = frames.total
        }
        if let report = receiver.report {
            for index in intervals.indices where index < report.intervals.count {
                intervals[index].residualLossPct = report.intervals[index].residualLossPct
                intervals[index].recovered = report.intervals[index].recovered
                intervals[index].late = report.intervals[index].late
                intervals[index].recoveredFEC = report.intervals[index].recoveredFEC
            }
            total.residualLossPct = report.total.residualLossPct
            total.recovered = report.total.recovered
            total.recoveredFEC = report.total.recoveredFEC
            total.late = report.total.late
        }
        let recovery = sender.recovery.map { side in
            RunResult.RecoveryFigures(
                mode: side.mode, latencyMs: side.latencyMs, nacks: receiver.report?.recovery?.nacks ?? 0, resent: side.resent,
                resentElsewhere: side.resentElsewhere, deadTail: side.deadTail,
                resentBytesPct: percent(Double(resentBytes), Double(analysis.streamBytes)), gaveUp: receiver.report?.recovery?.gaveUp ?? 0,
                recoveryMs: receiver.report?.recovery?.recoveryMs, fec: side.fec, parities: side.parities,
                rebuilt: receiver.report?.recovery?.rebuilt, parityBytesPct: side.fec == nil ? nil : percent(Double(parityBytes), Double(analysis.streamBytes)))
        }
        let kernel = receiver.report.flatMap { KernelRecord(plan: finished.lab.plan, snapshots: finished.kernel, sender: sender, receiver: $0) }
        let relative = context.relative(folder)
        return RunResult(
            source: source.name, mode: mode, shaper: finished.lab.shaper.rawValue, lab: finished.lab.runID, lossTargetPct: source.lossTargetPct,
            intervals: intervals, total: total, accounting: .init(analysis: total, receiver: receiver.report?.total),
            streamBytes: analysis.streamBytes, sentBytes: analysis.sentBytes + resentBytes + parityBytes,
            extraBytesPct: percent(Double(analysis.sentBytes + resentBytes + parityBytes - analysis.streamBytes), Double(analysis.streamBytes)),
            shifts: analysis.shifts(),
            failovers: analysis.failovers(), capacity: timeline,
            logs: [
                "sender_packets": "\(relative)/sender-packets.csv", "receiver_packets": "\(relative)/receiver-packets.csv",
                "sender_log": "\(relative)/sender.jsonl", "sender_summary": "\(relative)/sender.json",
                "receiver_results": "\(relative)/receiver.json", "schedule": "\(relative)/schedule.jsonl",
                "routes": "\(relative)/routes.jsonl", "trace": context.relative(traceFile),
            ], kernel: kernel, shed: source.shed ? true : nil, recovery: recovery, residualTargetPct: source.residualTargetPct)
    }

    public static func report(_ results: ExperimentResults, folder: String) -> ExperimentReport {
        ExperimentReport(results: results, folder: folder)
    }
}

/// What a source of a run streams: the input, why that one, and how it was fitted.
public struct SourceUsed: Codable, Sendable, Equatable {
    public var name: String
    /// A trace file, or `CBR RATE`.
    public var input: String
    public var reason: String
    /// The fit's header (first frame, scale, mean and peak achieved), when it was fitted.
    public var fit: String?
}
