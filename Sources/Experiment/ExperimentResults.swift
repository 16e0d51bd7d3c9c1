import Control
import Foundation
import Lab
import RunRecords

/// `results.json`: one document for the whole experiment, units in the key names.
public struct ExperimentResults: Codable, Sendable {
    public var kind = MultiNetExperiment.kind
    /// 2: typed modes, targets, controller parameters and the accounting check (session 4).
    /// 3: the kernel's counters and the reconciliation per run (`kernel`).
    public var schemaVersion = ResultsSchema.version
    public var experiment: String
    public var description: String?
    /// When it ran, on what, from which file and commit, with which shaper.
    public var provenance: Provenance
    /// What each source streamed (which trace, and why that one).
    public var sources: [SourceUsed]
    public var intervalS: Double
    public var durationS: Double
    public var timeScale: Double
    public var reportMs: Int
    public var queueMs: Double
    /// The adaptive controller's parameters, as its runs used them.
    public var controller: AdaptiveController.Parameters
    public var targets: ExperimentFile.Targets
    /// How the fluid bound and the split's settling are defined, in words.
    public var definitions: [String: String]
    public var schedule: [String]
    public var runs: [RunResult]

    enum CodingKeys: String, CodingKey {
        case kind, experiment, description, provenance, sources, definitions, schedule, runs, controller, targets
        case schemaVersion = "schema_version"
        case intervalS = "interval_s"
        case durationS = "duration_s"
        case timeScale = "time_scale"
        case reportMs = "report_ms"
        case queueMs = "queue_ms"
    }

    public static let definitionTexts: [String: String] = [
        "loss_pct": "distinct packets of the stream sent in the interval (by send time) of which no copy arrived, over those sent",
        "per_vnet.loss_pct_of_all": "packets lost (no copy arrived) that the split had put on this VNet, over every packet of the stream sent in the interval; the VNets' columns add up to the total except in duplicate mode, where every VNet carried every packet",
        "per_vnet.path_lost": "packets sent on this VNet, probe copies included, that did not arrive over it",
        "fluid_bound_pct": "loss of a fluid FIFO fed the same packets (IPv4 + 14 B Ethernet), drained at the capacity of the VNets the mode uses (their sum for modes that split) with the queue its links have as the lab configured them (the largest of its links: a TBF limit, queue_ms of the rate under netem, or the tail-drop threshold of a queue policy); a VNet's capacity is zero from a path failure until its ingress routed around it (measured)",
        "shifts.settle_s": "seconds after a capacity change until every 2 s window of the split (packets of the split, by bytes; one VBR I frame can be a third of a second's bytes) stayed within tolerance_pct points of capacity-proportional until the next change",
        "failovers.left_ms": "from the failure taking effect to the last packet of the split sent on the failed VNet before it went quiet for a second or more (the whole outage if it never did)",
        "failovers.returned_after_s": "from the reroute the route watch saw (it polls every 100 ms) to the first packet of the split on the VNet after its silence; 0 when the sender found the VNet first",
        "extra_bytes_pct": "bytes sent beyond the stream's own (probe copies, duplicates), over the stream's bytes",
    ]

    public init(
        experiment: String, description: String?, provenance: Provenance, sources: [SourceUsed], intervalS: Double, durationS: Double, timeScale: Double, reportMs: Int, queueMs: Double,
        controller: AdaptiveController.Parameters, targets: ExperimentFile.Targets, definitions: [String: String], schedule: [String],
        runs: [RunResult]
    ) {
        self.experiment = experiment
        self.description = description
        self.provenance = provenance
        self.sources = sources
        self.intervalS = intervalS
        self.durationS = durationS
        self.timeScale = timeScale
        self.reportMs = reportMs
        self.queueMs = queueMs
        self.controller = controller
        self.targets = targets
        self.definitions = definitions
        self.schedule = schedule
        self.runs = runs
    }

    public static func load(_ path: String) throws -> ExperimentResults { try loadDocument(path, kind: "results document") }
}

/// The version of the results documents' layout, in each as `schema_version`.
public enum ResultsSchema {
    public static let version = 3
}

extension ExperimentResults: ResultsDocument {}

/// A results document (`results.json`): sorted keys, written atomically, read back with the
/// file named in any error.
public protocol ResultsDocument: Codable {
    static func load(_ path: String) throws -> Self
}

extension ResultsDocument {
    static func loadDocument(_ path: String, kind: String) throws -> Self {
        try JSONFile.read(Self.self, from: path, what: "\(kind) of schema \(ResultsSchema.version)", hint: "`vnetstream run` writes it")
    }

    public func write(to path: String) throws { try JSONFile.write(self, to: path) }
}

/// Where and from what an experiment came: for results documents.
public struct Provenance: Codable, Sendable, Equatable {
    /// The experiment file.
    public var file = ""
    /// When it ran (UTC, ISO 8601).
    public var startedUTC = ""
    /// `host, Linux RELEASE, N CPUs`.
    public var machine = Provenance.thisMachine
    public var gitCommit: String?
    /// How the labs' links were shaped, and why.
    public var shaper = ""
    public var shaperReason = ""

    init() {}

    init(startedUTC: String, file: String) {
        self.file = file
        self.startedUTC = startedUTC
        gitCommit = Self.gitCommit(near: file)
    }

    enum CodingKeys: String, CodingKey {
        case file, machine, shaper
        case startedUTC = "started_utc"
        case gitCommit = "git_commit"
        case shaperReason = "shaper_reason"
    }

    static var thisMachine: String {
        var machine = utsname()
        uname(&machine)
        let release = withUnsafeBytes(of: &machine.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let host = withUnsafeBytes(of: &machine.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return "\(host), Linux \(release), \(ProcessInfo.processInfo.activeProcessorCount) CPUs"
    }

    /// The commit checked out where `file` lives, if it is in a git work tree.
    static func gitCommit(near file: String) -> String? {
        try? Command.run(["git", "-C", URL(fileURLWithPath: file).deletingLastPathComponent().path, "rev-parse", "HEAD"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
