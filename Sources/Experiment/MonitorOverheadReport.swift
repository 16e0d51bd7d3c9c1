import Foundation
import Units

/// `results.json` of the monitoring-overhead experiment: per phase, the router's forwarding
/// rate in every 1 s bin, and what its monitoring node saw, dropped and cost.
public struct MonitorOverheadResults: Codable, Sendable, ResultsDocument {
    public var kind = MonitorOverheadExperiment.kind
    public var schemaVersion = ResultsSchema.version
    public var experiment: String
    public var description: String?
    public var provenance: Provenance
    /// On the wire, with the FCS.
    public var frameBytes: Int
    public var phaseS: Double
    public var phases: [PhaseFigures]

    public struct PhaseFigures: Codable, Sendable, Equatable {
        public var phase: String
        /// How copies were made (nil: no monitoring).
        public var method: String?
        public var kppsPerSecond: [Double]
        public var copies: Int?
        /// Copies the overloaded node lost before libpcap read them, and on the mirror link.
        public var copiesDroppedByKernel: Int?
        public var mirrorLinkDrops: Int?
        public var moniCPUS: Double?

        public var sorted: [Double] { kppsPerSecond.sorted() }
        /// The `p`-th percentile (0-100) of the 1 s bins, nearest rank.
        public func percentile(_ p: Double) -> Double? {
            nearestRank(p / 100, ofSorted: sorted)
        }
        public var median: Double? { percentile(50) }
    }

    public static func load(_ path: String) throws -> MonitorOverheadResults { try loadDocument(path, kind: "monitor-overhead results") }

    public func phase(_ name: String) -> PhaseFigures? { phases.first { $0.phase == name } }

    /// A phase's median below the baseline's, percent.
    public func cost(_ name: String) -> Double? {
        guard let base = phase("baseline")?.median, base > 0, let value = phase(name)?.median else { return nil }
        return (1 - value / base) * 100
    }
}

/// The overhead report: a table per phase next to the paper's Fig. 5 figures, the targets, and
/// a box plot like Fig. 5.
public struct MonitorOverheadReport: ExperimentReporting {
    public let results: MonitorOverheadResults
    public let folder: String

    public init(results: MonitorOverheadResults, folder: String) {
        self.results = results
        self.folder = folder
    }

    /// The paper's Fig. 5 (kpps, 64-byte packets, direct attachment): baseline, with
    /// duplication, with the monitoring node overloaded.
    static let paper: [String: String] = ["baseline": "961.6", "tc": "953 (-0.9 %)", "nft": "953 (-0.9 %)", "overloaded": "896 (-6.8 %)"]
    static let costLimitPct = 5.0

    func kpps(_ value: Double?) -> String { value.map { decimal($0, 1) } ?? "–" }

    public var markdown: String {
        var out = "# \(results.experiment)\n\n"
        if let description = results.description { out += description + "\n\n" }
        out += "\(results.frameBytes)-byte frames, \(decimal(results.phaseS)) s per phase, forwarding rate from the router's egress counter in 1 s bins "
        out += "(\(decimal(MonitorOverheadExperiment.edgeS)) s left out at each end); \(results.provenance.machine).\n\n"
        out += "| phase | copies by | median kpps | p5 | p95 | cost | paper kpps | copies seen | copies dropped (libpcap / mirror link) | Moni CPU s |\n"
        out += "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for phase in results.phases {
            let cost = phase.phase == "baseline" ? "–" : results.cost(phase.phase).map { "\(decimal($0, 1)) %" } ?? "–"
            let dropped = phase.method == nil ? "–" : "\(phase.copiesDroppedByKernel.map(String.init) ?? "?") / \(phase.mirrorLinkDrops.map(String.init) ?? "?")"
            out += "| \(phase.phase) | \(phase.method ?? "–") | \(kpps(phase.median)) | \(kpps(phase.percentile(5))) | \(kpps(phase.percentile(95))) | \(cost) | "
            out += "\(Self.paper[phase.phase] ?? "–") | \(phase.copies.map(String.init) ?? "–") | \(dropped) | \(phase.moniCPUS.map { decimal($0, 1) } ?? "–") |\n"
        }
        out += "\nThe paper: native Linux 840 kpps; behind a software bridge 215, 180 with mirroring (-16 %); direct attachment 961.6, "
        out += "953 with duplication (-0.9 %), 896 with the monitoring node overloaded (-6.8 %).\n"
        return out
    }

    public var targets: [TargetCheck] {
        var checks: [TargetCheck] = []
        let methods = results.phases.filter { $0.phase == "tc" || $0.phase == "nft" }.compactMap { phase in results.cost(phase.phase).map { (phase.phase, $0) } }
        if let best = methods.min(by: { $0.1 < $1.1 }) {
            checks.append(
                TargetCheck(
                    target: "monitoring costs at most 5 % of the median forwarding rate (the better method)", run: best.0,
                    measured: methods.map { "\($0.0) \(decimal($0.1, 1)) %" }.joined(separator: ", "), pass: best.1 <= Self.costLimitPct, note: nil))
        }
        if let overloaded = results.phase("overloaded"), let cost = results.cost("overloaded"), let method = overloaded.method, let plain = results.cost(method) {
            checks.append(
                TargetCheck(
                    target: "an overloaded Moni costs at most 5 % more", run: "overloaded (\(method))",
                    measured: "\(decimal(cost, 1)) % against \(decimal(plain, 1)) %", pass: cost - plain <= Self.costLimitPct, note: nil))
        }
        return checks
    }

    /// report.md, forwarding.csv and the box plot.
    public func write(folder: String, plotsCopy: String?) throws -> [String] {
        var csv = "phase,second,kpps\n"
        for phase in results.phases {
            for (index, value) in phase.kppsPerSecond.enumerated() { csv += "\(phase.phase),\(index),\(decimal(value, 2))\n" }
        }
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("forwarding.csv", csv)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"), options: .atomic)
            written.append("\(folder)/\(name)")
        }
        let plots = "\(folder)/plots"
        try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
        let name = "monitoring-overhead"
        // x, min (p5), box bottom (p25), box top (p75), max (p95), median.
        var data = "# x p5 p25 p75 p95 median label\n"
        for (index, phase) in results.phases.enumerated() {
            guard let median = phase.median else { continue }
            let values = [5, 25, 75, 95].map { phase.percentile(Double($0)) ?? median }
            data += "\(index + 1) \(values.map { decimal($0, 2) }.joined(separator: " ")) \(decimal(median, 2)) \(phase.phase)\n"
        }
        try Data(data.utf8).write(to: URL(fileURLWithPath: "\(plots)/\(name).dat"))
        let top = (results.phases.flatMap(\.kppsPerSecond).max() ?? 1) * 1.15
        written += try runGnuplot(
            [
                """
                set title "\(results.experiment): forwarding rate of \(results.frameBytes)-byte packets per phase (1 s bins; box p25-p75, whiskers p5-p95)"
                set ylabel "kpps forwarded"; set grid ytics; set boxwidth 0.4; set style fill solid 0.3
                set xrange [0.4:\(results.phases.count).6]; set yrange [0:\(decimal(top.rounded(.up)))]
                set output '\(name).png'; set terminal pngcairo size 800,420 font ',10'
                plot '\(name).dat' using 1:3:2:5:4:xticlabels(7) with candlesticks whiskerbars 0.5 lc rgb '#1f77b4' title 'p5 / p25 / p75 / p95', \\
                     '' using 1:6:6:6:6 with candlesticks lt -1 lw 2 notitle
                set output '\(name).svg'; set terminal svg size 800,420 font 'sans,10'
                replot
                """
            ], in: plots)
        if let copy = plotsCopy { written.append(try copyPlots(from: plots, to: copy)) }
        return written
    }
}
