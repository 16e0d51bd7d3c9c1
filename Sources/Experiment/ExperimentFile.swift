import Control
import Foundation
import Lab
import Recovery
import Traces
import Units

/// An experiment: a lab topology, a schedule of condition shifts, the sources to stream and the
/// ways to send them (`Experiments/*.toml`). Every source runs in every mode, each pair in a lab
/// of its own, all side by side.
public struct ExperimentFile: Decodable, Sendable {
    public var name: String
    public var description: String?
    /// Paths relative to the experiment file.
    public var topology: String
    public var schedule: String
    /// Length of the accounting intervals, seconds (scaled with `time_scale`).
    public var intervalS: Double
    /// Length of every stream, seconds (scaled with `time_scale`).
    public var durationS: Double
    /// Multiplies the schedule's times, the interval and the duration (0.2 plays a 150 s
    /// experiment in 30 s; routing timers do not scale).
    public var timeScale: Double
    public var reportMs: Int
    public var probeIntervalS: Double
    /// Seconds between the starts of consecutive runs, so that their schedule events (tc and
    /// nft calls) do not all fall on the same instant.
    public var staggerS: Double
    /// Seconds from starting the senders to the first run's time zero: enough for every
    /// sender to start (much longer under emulation, in the netem VM).
    public var startLeadS: Double
    public var modes: [SendMode]
    public var targets: Targets
    public var sources: [Source]

    public struct Source: Decodable, Sendable, Equatable {
        /// `cbr` or `vbr` in the paper's experiment: the name results use.
        public var name: String
        /// Constant bit rate (`320kbit`) ...
        public var cbr: String?
        /// ... or a frame trace (relative to the experiment file), optionally fitted to a mean
        /// and a 1-second peak.
        public var trace: String?
        /// The trace to use when `trace` is not there (a clone without `../shared` beside it):
        /// one the project makes itself (`Traces/make-traces.sh`).
        public var fallbackTrace: String?
        public var fitMean: String?
        public var fitPeak: String?
        public var fps: Double
        /// The loss a splitting mode may have per interval, percent (0.5 for the paper's CBR, 1 for its VBR).
        public var lossTargetPct: Double
        /// The frame types laid over a trace without them (`--gop`); with `shed`, IBBPBBPBBPBB
        /// when not given.
        public var gop: GoPPattern?
        /// The sender sheds frames by priority when the VNets fall short (adaptive runs only).
        public var shed: Bool
        /// The modes this source runs in (nil: the file's `modes`).
        public var modes: [SendMode]?
        /// How its runs recover what the network loses (`send --recovery`), and the playout
        /// deadline both ends use (`--latency`, milliseconds; not scaled by `time_scale`).
        public var recovery: RecoveryMode
        public var latencyMs: Double
        /// The FEC block shape (`send --fec`) of `fec` and `fec+arq` runs (nil: the default).
        public var fec: FECShape?
        /// The loss after recovery (not delivered by the deadline) its runs may have per
        /// interval, percent (checked by --check); nil: no such target.
        public var residualTargetPct: Double?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, cbr, trace, fps, gop, shed, modes, recovery, fec
            case latencyMs = "latency_ms"
            case residualTargetPct = "residual_target_pct"
            case lossTargetPct = "loss_target_pct"
            case fallbackTrace = "fallback_trace"
            case fitMean = "fit_mean"
            case fitPeak = "fit_peak"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            cbr = try c.decodeIfPresent(String.self, forKey: .cbr)
            trace = try c.decodeIfPresent(String.self, forKey: .trace)
            fallbackTrace = try c.decodeIfPresent(String.self, forKey: .fallbackTrace)
            fitMean = try c.decodeIfPresent(String.self, forKey: .fitMean)
            fitPeak = try c.decodeIfPresent(String.self, forKey: .fitPeak)
            fps = try c.number(.fps) ?? 25
            lossTargetPct = try c.number(.lossTargetPct) ?? 1
            shed = try c.decodeIfPresent(Bool.self, forKey: .shed) ?? false
            modes = try c.decodeIfPresent([SendMode].self, forKey: .modes)
            let recoveryText = try c.decodeIfPresent(String.self, forKey: .recovery) ?? "none"
            guard let recovery = RecoveryMode(rawValue: recoveryText) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .recovery, in: c,
                    debugDescription: "source \(name): recovery '\(recoveryText)' is none of \(RecoveryMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            self.recovery = recovery
            latencyMs = try c.number(.latencyMs) ?? 200
            if let text = try c.decodeIfPresent(String.self, forKey: .fec) {
                do { fec = try FECShape(parsing: text) } catch {
                    throw DecodingError.dataCorruptedError(forKey: .fec, in: c, debugDescription: "source \(name): fec: \(error)")
                }
                guard recovery.parity else {
                    throw DecodingError.dataCorruptedError(
                        forKey: .fec, in: c, debugDescription: "source \(name): fec goes with recovery = \"fec\" or \"fec+arq\", not \"\(recovery)\"")
                }
            }
            residualTargetPct = try c.number(.residualTargetPct)
            if let text = try c.decodeIfPresent(String.self, forKey: .gop) {
                do { gop = try GoPPattern(text) } catch let error as GoPPatternError {
                    throw DecodingError.dataCorruptedError(forKey: .gop, in: c, debugDescription: "source \(name): \(error)")
                }
            } else {
                gop = shed ? .mpeg4 : nil
            }
        }
    }

    /// What the runs must reach, checked by `report --check` (`[targets]`; the defaults are
    /// the paper experiment's). The per-interval loss target of a splitting mode is per source.
    public struct Targets: Codable, Sendable, Equatable {
        /// A uni-net run's loss may differ from the fluid bound by this much per interval, points.
        public var uniTolerancePoints: Double = 3
        /// After a capacity change the split is capacity-proportional within this long, seconds.
        public var settleS: Double = 3
        /// Traffic leaves a failed VNet within this long, milliseconds.
        public var leaveMs: Double = 300
        /// Where the fluid bound is above a source's loss target, no sender can meet it: the
        /// bound plus this many points applies there. Below the target the margin shrinks with
        /// the bound (the bound's share of the target), so that the allowed loss never jumps.
        public var boundMarginPoints: Double = 0.5
        /// The adaptive split must lose no more than this mode (e.g. `static-1:1`) in every
        /// interval, give or take `notWorseMarginPoints` (or one packet of the interval, where
        /// that is more); nil: no such target.
        public var notWorseThan: String?
        public var notWorseMarginPoints: Double = 0.1
        /// Where the VNets together fall short of the stream, a run that sheds must deliver
        /// decodable frames (by size) of at least this share of what the capacity allows,
        /// percent; nil: no such target.
        public var decodableOfCapacityPct: Double?
        /// ... and every I frame whole.
        public var everyIFrame = false

        public init() {}

        enum CodingKeys: String, CodingKey, CaseIterable {
            case uniTolerancePoints = "uni_tolerance_points"
            case settleS = "settle_s"
            case leaveMs = "leave_ms"
            case boundMarginPoints = "bound_margin_points"
            case notWorseThan = "not_worse_than"
            case notWorseMarginPoints = "not_worse_margin_points"
            case decodableOfCapacityPct = "decodable_of_capacity_pct"
            case everyIFrame = "every_i_frame"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            uniTolerancePoints = try c.number(.uniTolerancePoints) ?? 3
            settleS = try c.number(.settleS) ?? 3
            leaveMs = try c.number(.leaveMs) ?? 300
            boundMarginPoints = try c.number(.boundMarginPoints) ?? 0.5
            notWorseThan = try c.decodeIfPresent(String.self, forKey: .notWorseThan)
            notWorseMarginPoints = try c.number(.notWorseMarginPoints) ?? 0.1
            decodableOfCapacityPct = try c.number(.decodableOfCapacityPct)
            everyIFrame = try c.decodeIfPresent(Bool.self, forKey: .everyIFrame) ?? false
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, topology, schedule, modes, targets
        case sources = "source"
        case intervalS = "interval_s"
        case durationS = "duration_s"
        case timeScale = "time_scale"
        case reportMs = "report_ms"
        case probeIntervalS = "probe_interval_s"
        case staggerS = "stagger_s"
        case startLeadS = "start_lead_s"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        schedule = try c.decode(String.self, forKey: .schedule)
        intervalS = try c.number(.intervalS) ?? 30
        durationS = try c.number(.durationS) ?? 150
        timeScale = try c.number(.timeScale) ?? 1
        reportMs = Int(try c.number(.reportMs) ?? 50)
        probeIntervalS = try c.number(.probeIntervalS) ?? 1
        staggerS = try c.number(.staggerS) ?? 0.5
        startLeadS = try c.number(.startLeadS) ?? 3
        modes = try c.decode([SendMode].self, forKey: .modes)
        targets = try c.decodeIfPresent(Targets.self, forKey: .targets) ?? Targets()
        sources = try c.decode([Source].self, forKey: .sources)
    }

    /// The modes `source` runs in: its own list, or the file's.
    public func modes(of source: Source) -> [SendMode] { source.modes ?? modes }

    /// Every run, in order: each source in each of its modes.
    public var runs: [(source: Source, mode: SendMode)] { sources.flatMap { source in modes(of: source).map { (source, $0) } } }

    /// Reads and checks an experiment file.
    public static func load(_ path: String) throws -> ExperimentFile {
        let file = try loadTOML(ExperimentFile.self, from: path, kind: "experiment")
        try file.validate(file: path)
        return file
    }

    func validate(file: String) throws {
        func fail(_ message: String) -> LabError { LabError("\(file): \(message)") }
        guard intervalS > 0, durationS > 0, timeScale > 0, reportMs > 0, probeIntervalS > 0, staggerS >= 0, startLeadS > 0 else {
            throw fail("interval_s, duration_s, time_scale, report_ms, probe_interval_s and start_lead_s must be positive, stagger_s not negative")
        }
        guard !modes.isEmpty, !sources.isEmpty else { throw fail("give at least one mode and one [[source]]") }
        guard Set(modes).count == modes.count else { throw fail("a mode is listed twice") }
        guard Set(sources.map(\.name)).count == sources.count else { throw fail("two sources share a name") }
        for source in sources {
            let modes = self.modes(of: source)
            guard !modes.isEmpty, Set(modes).count == modes.count else { throw fail("source \(source.name): give its modes once each, at least one") }
            if source.shed && modes.contains(where: { $0 != .adaptive }) {
                throw fail("source \(source.name) sheds frames, which only multi-net (adaptive) runs do: give it modes = [\"multi-net\"]")
            }
        }
        for source in sources {
            guard (source.cbr == nil) != (source.trace == nil) else {
                throw fail("source '\(source.name)' needs exactly one of cbr = RATE or trace = FILE")
            }
            for rate in [source.cbr, source.fitMean, source.fitPeak].compactMap({ $0 }) {
                do { _ = try BitRate(parsing: rate) } catch { throw fail("source '\(source.name)': \(error)") }
            }
            guard (source.fitMean == nil) == (source.fitPeak == nil) else {
                throw fail("source '\(source.name)': fit_mean and fit_peak go together")
            }
            guard source.fps > 0 else { throw fail("source '\(source.name)': fps must be positive") }
            guard source.latencyMs > 0, source.latencyMs <= 60_000 else { throw fail("source '\(source.name)': latency_ms must be above 0 and at most 60000") }
        }
    }

    /// Which trace a source streams, and why: its `trace` where that file is (a shared trace is
    /// also looked for under `$VNETSTREAM_SHARED/traces`), else its `fallback_trace`.
    public static func traceFile(
        of source: Source, relativeTo file: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> (path: String, reason: String) {
        guard let trace = source.trace else { throw LabError("\(file): source '\(source.name)' has no trace") }
        let named = resolve(trace, relativeTo: file)
        var candidates = [named]
        if let shared = environment["VNETSTREAM_SHARED"], let range = trace.range(of: "shared/traces/") {
            candidates.insert("\(shared)/traces/\(trace[range.upperBound...])", at: 0)
        }
        for path in candidates where FileManager.default.fileExists(atPath: path) {
            return (path, "the source's trace, found at \(path)")
        }
        guard let fallback = source.fallbackTrace else {
            throw LabError("\(file): source '\(source.name)': \(named) is not there (put the traces in ../shared/traces or $VNETSTREAM_SHARED/traces, or give the source a fallback_trace)")
        }
        let path = resolve(fallback, relativeTo: file)
        guard FileManager.default.fileExists(atPath: path) else {
            throw LabError("\(file): source '\(source.name)': neither \(named) nor its fallback \(path) is there (Traces/make-traces.sh makes the fallback)")
        }
        return (path, "\(named) is not there (no ../shared beside the repository, nor $VNETSTREAM_SHARED): the project's own fallback_trace instead")
    }

    /// A path in the file, resolved against the file's folder.
    public static func resolve(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        return URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL.path
    }
}

extension ExperimentFile: KnownKeys {
    public static var keySchema: KeySchema {
        KeySchema(
            CodingKeys.self, sections: ["source": KeySchema(Source.CodingKeys.self), "targets": KeySchema(Targets.CodingKeys.self)],
            also: ["kind"])
    }
}
