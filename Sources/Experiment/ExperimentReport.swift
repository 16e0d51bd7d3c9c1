import Control
import Foundation
import Lab
import RunRecords

/// The paper's published loss figures (Tables III and IV), percent of packets sent per interval.
public enum PaperFigures {
    /// [source: [row: five intervals]]; rows: `uni-net1`, `uni-net2`, `multi-net VNet 1`,
    /// `multi-net VNet 2`, `multi-net`.
    public static let loss: [String: [String: [Double]]] = [
        "cbr": [
            "uni-net1": [0.69, 62.89, 42.06, 75.75, 38.10],
            "uni-net2": [60.33, 2.97, 37.78, 38.84, 41.23],
            "multi-net VNet 1": [0, 0.65, 0, 7.43, 0],
            "multi-net VNet 2": [0.44, 0, 0.11, 8.41, 0],
            "multi-net": [0.44, 0.65, 0.11, 15.85, 0],
        ],
        "vbr": [
            "uni-net1": [8.00, 53.11, 28.19, 62.20, 29.85],
            "uni-net2": [50.30, 15.50, 26.52, 30.00, 29.71],
            "multi-net VNet 1": [1.13, 4.04, 0.61, 10.02, 0.49],
            "multi-net VNet 2": [3.27, 2.06, 0.69, 12.24, 0.61],
            "multi-net": [4.40, 6.06, 1.30, 22.25, 1.10],
        ],
    ]
}

/// Tables and plots from `results.json`.
public struct ExperimentReport {
    public let results: ExperimentResults
    public let folder: String

    public init(results: ExperimentResults, folder: String) {
        self.results = results
        self.folder = folder
    }

    /// One table row: a label and, per interval then for the total, (paper, ours, bound).
    struct Row {
        var source: String
        var mode: String
        var label: String
        var cells: [(paper: Double?, ours: Double, bound: Double?)]
    }

    var sources: [String] { results.runs.map(\.source).reduce(into: []) { if !$0.contains($1) { $0.append($1) } } }

    func rows(_ source: String) -> [Row] {
        var rows: [Row] = []
        // The paper's figures belong to its experiment (and shortened copies of it) only.
        let paper = results.experiment.hasPrefix("paper-multinet") ? PaperFigures.loss[source] ?? [:] : [:]
        for run in results.runs where run.source == source {
            func paperValue(_ key: String, _ index: Int) -> Double? {
                guard let values = paper[key], index < values.count, run.intervals.count == values.count else { return nil }
                return values[index]
            }
            let mode = run.mode.name
            if run.mode.uniVNet != nil {
                rows.append(
                    Row(
                        source: source, mode: mode, label: mode,
                        cells: run.intervals.enumerated().map { (paperValue(mode, $0.offset), $0.element.lossPct, $0.element.fluidBoundPct) }
                            + [(nil, run.total.lossPct, run.total.fluidBoundPct)]))
                continue
            }
            if run.mode == .adaptive {
                for v in run.total.perVNet.indices {
                    rows.append(
                        Row(
                            source: source, mode: mode, label: "multi-net VNet \(v + 1)",
                            cells: run.intervals.enumerated().map {
                                (paperValue("multi-net VNet \(v + 1)", $0.offset), $0.element.perVNet[v].lossPctOfAll, nil)
                            } + [(nil, run.total.perVNet[v].lossPctOfAll, nil)]))
                }
            }
            let paperKey = run.mode == .adaptive ? "multi-net" : ""
            rows.append(
                Row(
                    source: source, mode: mode, label: run.mode == .adaptive ? "multi-net (adaptive) total" : "\(mode) total",
                    cells: run.intervals.enumerated().map { (paperValue(paperKey, $0.offset), $0.element.lossPct, $0.element.fluidBoundPct) }
                        + [(nil, run.total.lossPct, run.total.fluidBoundPct)]))
        }
        return rows
    }

    func intervalLabels(_ source: String) -> [String] {
        guard let run = results.runs.first(where: { $0.source == source }) else { return [] }
        return run.intervals.map { "\(decimal($0.startS, 1))-\(decimal($0.endS, 1)) s" } + ["total"]
    }

    static func cell(_ c: (paper: Double?, ours: Double, bound: Double?)) -> String {
        let paper = c.paper.map { String(format: "%.2f", $0) } ?? "–"
        let bound = c.bound.map { String(format: "%.2f", $0) } ?? "–"
        return "\(paper) / **\(String(format: "%.2f", c.ours))** / \(bound)"
    }

    public var markdown: String {
        var out = "# \(results.experiment): loss per interval, % of packets sent\n\n"
        out += "Each cell: the paper's figure / **ours** / the fluid lower bound (– where there is none). "
        out += "Shaper: \(results.provenance.shaper) (\(results.provenance.shaperReason)); queues \(decimal(results.queueMs)) ms; "
        out += "interval \(decimal(results.intervalS)) s; \(results.provenance.machine); \(results.provenance.startedUTC).\n\n"
        for source in results.sources {
            out += "Source \(source.name): \(source.input) (\(source.reason))\(source.fit.map { "; fit: \($0)" } ?? "").\n"
        }
        if !results.sources.isEmpty { out += "\n" }
        for source in sources {
            out += "| \(source.uppercased()) | " + intervalLabels(source).joined(separator: " | ") + " |\n"
            out += "|---|" + String(repeating: "---|", count: intervalLabels(source).count) + "\n"
            for row in rows(source) { out += "| \(row.label) | " + row.cells.map(Self.cell).joined(separator: " | ") + " |\n" }
            out += "\n"
        }
        out += "## Split and failover (modes that split)\n\n"
        out += "| run | split within \(decimal(RunAnalysis.shareTolerancePct)) points of capacity-proportional after each change (s) | left the failed VNet (ms) | back after the reroute (s) | extra bytes % |\n"
        out += "|---|---|---|---|---:|\n"
        for run in results.runs where run.mode.usesAllVNets {
            let settle = run.shifts.map { "\(decimal($0.atS, 1)): \($0.settleS.map { decimal($0, 1) } ?? "never")" }.joined(separator: ", ")
            let left = run.failovers.map { $0.leftMs.map { decimal($0, 0) } ?? "–" }.joined(separator: ", ")
            let back = run.failovers.map { $0.returnedAfterS.map { decimal($0, 2) } ?? "–" }.joined(separator: ", ")
            out += "| \(run.source) \(run.mode) | \(settle) | \(left.isEmpty ? "–" : left) | \(back.isEmpty ? "–" : back) | \(String(format: "%.1f", run.extraBytesPct)) |\n"
        }
        if let run = results.runs.first(where: { !$0.failovers.isEmpty }), let failover = run.failovers.first {
            let after = failover.reroutedS.map { decimal($0 - failover.failedS, 1) } ?? "never"
            out += "\nRouting moved VNet \(failover.vnet) off \(failover.path) \(after) s after the failure (run \(run.source) \(run.mode)).\n"
        }
        out += framesMarkdown
        out += recoveryMarkdown
        out += kernelMarkdown
        return out
    }

    /// The receiver's losses against the kernel's counters, per run and VNet.
    var kernelMarkdown: String {
        let runs = results.runs.filter { $0.kernel != nil }
        guard !runs.isEmpty else { return "" }
        var out = "\n## The kernel's count\n\n"
        out += "Per VNet: what the receiver counts lost = packets the sender's tun would not take + media packets the kernel dropped on the VNet's links "
        out += "(nftables counters at both ends of each link: blackhole, random loss, qdisc) + in its routers + **unexplained**.\n\n"
        out += "| run | VNet | receiver lost | tun refused | link drops | router drops | unexplained | links that dropped |\n|---|---:|---:|---:|---:|---:|---:|---|\n"
        for run in runs {
            let kernel = run.kernel!
            for row in kernel.reconciliation {
                let links = kernel.total.links.filter { $0.dropped != 0 && $0.vnet == kernel.total.vnets.first { $0.vnet == row.vnet }?.name }
                    .map { "\($0.from)→\($0.to) \($0.dropped)" }.joined(separator: ", ")
                out += "| \(run.source) \(run.mode) | \(row.vnet) | \(row.receiverLost) | \(row.senderLocalDrops) | \(row.linkDrops) | \(row.routerDrops) | "
                out += "\(row.unexplained == 0 ? "0" : "**\(row.unexplained)**") | \(links.isEmpty ? "–" : links) |\n"
            }
        }
        return out
    }

    public var csv: String {
        var out = "source,mode,row,interval,paper_pct,ours_pct,fluid_bound_pct\n"
        for source in sources {
            let labels = intervalLabels(source)
            for row in rows(source) {
                for (index, cell) in row.cells.enumerated() {
                    out += "\(source),\(row.mode),\(row.label),\(labels[index]),\(cell.paper.map { String($0) } ?? ""),\(cell.ours),\(cell.bound.map { String($0) } ?? "")\n"
                }
            }
        }
        return out
    }

    public var latex: String {
        var out = "% \(results.experiment): loss per interval (%), paper / ours / fluid lower bound\n"
        for source in sources {
            let labels = intervalLabels(source)
            out += "\\begin{tabular}{l\(String(repeating: "c", count: labels.count))}\n\\hline\n"
            out += "\(source.uppercased()) & " + labels.map { $0.replacingOccurrences(of: "-", with: "--") }.joined(separator: " & ") + " \\\\\n\\hline\n"
            for row in rows(source) {
                let cells = row.cells.map { c in
                    "\(c.paper.map { String(format: "%.2f", $0) } ?? "--") / \\textbf{\(String(format: "%.2f", c.ours))} / \(c.bound.map { String(format: "%.2f", $0) } ?? "--")"
                }
                out += "\(row.label) & " + cells.joined(separator: " & ") + " \\\\\n"
            }
            out += "\\hline\n\\end{tabular}\n\n"
        }
        return out
    }

    /// Writes report.md, loss.csv, loss.tex and the plots into the results' folder (and the
    /// plots into `plotsCopy`); returns what it wrote.
    public func write(folder _: String, plotsCopy: String?) throws -> [String] {
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("loss.csv", csv), ("loss.tex", latex)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"))
            written.append("\(folder)/\(name)")
        }
        let plots = "\(folder)/plots"
        try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
        written += try writePlots(into: plots)
        if let copy = plotsCopy { written.append(try copyPlots(from: plots, to: copy)) }
        return written
    }

    func writePlots(into plots: String) throws -> [String] {
        var scripts: [String] = []
        // Rates over time, per run: the paper's Figures 7 and 8.
        for run in results.runs {
            guard let log = run.logs["sender_packets"], let sent = try? CSVLog.read(SentPacket.self, from: "\(folder)/\(log)") else { continue }
            let vnets = run.capacity.vnets
            let bin = 0.5
            let bins = Int((results.durationS / bin).rounded(.up))
            var bytes = Array(repeating: Array(repeating: 0.0, count: vnets + 1), count: bins)
            for packet in sent where packet.vnet >= 1 && packet.vnet <= vnets {
                let i = min(bins - 1, max(0, Int(packet.t / bin)))
                if packet.copy { bytes[i][vnets] += Double(packet.bytes) } else { bytes[i][packet.vnet - 1] += Double(packet.bytes) }
            }
            let shiftLines = run.capacity.breakpoints.filter { $0 > 0.5 }
                .map { "set arrow from \(decimal($0)), graph 0 to \(decimal($0)), graph 1 nohead dt 2 lc rgb 'gray40'" }
                .joined(separator: "\n")
            var top = 0.0
            var data = "# t_s " + (1...vnets).map { "vnet\($0)_kbit_s vnet\($0)_capacity_kbit_s" }.joined(separator: " ") + " copies_kbit_s\n"
            for i in 0..<bins {
                let t = (Double(i) + 0.5) * bin
                data += decimal(t)
                for v in 0..<vnets {
                    let c = run.capacity.capacity(vnet: v + 1, at: t)
                    top = max(top, bytes[i][v] * 8 / bin / 1000, c.isFinite ? c / 1000 : 0)
                    data += " \(decimal(bytes[i][v] * 8 / bin / 1000)) \(c.isFinite ? decimal(c / 1000) : "NaN")"
                }
                data += " \(decimal(bytes[i][vnets] * 8 / bin / 1000))\n"
            }
            let name = "rates-\(run.source)-\(run.mode.name.replacingOccurrences(of: ":", with: "_"))"
            try Data(data.utf8).write(to: URL(fileURLWithPath: "\(plots)/\(name).dat"))
            let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
            var plotsLine: [String] = []
            for v in 0..<vnets {
                plotsLine.append("'\(name).dat' using 1:\(2 + 2 * v) with steps lw 2 lc rgb '\(colors[v % 4])' title 'VNet \(v + 1) sent'")
                plotsLine.append("'\(name).dat' using 1:\(3 + 2 * v) with steps dt 3 lw 1 lc rgb '\(colors[v % 4])' title 'VNet \(v + 1) capacity'")
            }
            plotsLine.append("'\(name).dat' using 1:\(2 + 2 * vnets) with steps lw 1 lc rgb 'gray50' title 'probe copies'")
            scripts.append(
                """
                set title "\(run.source.uppercased()) \(run.mode): sending rate per VNet (0.5 s bins), shifts dashed"
                set xlabel "time (s)"; set ylabel "kbit/s (IPv4)"; set key outside right top; set grid
                set xrange [0:\(decimal(results.durationS))]; set yrange [0:\(decimal((top * 1.15 / 50).rounded(.up) * 50))]
                unset arrow
                \(shiftLines)
                set output '\(name).png'; set terminal pngcairo size 1000,420 font ',10'
                plot \(plotsLine.joined(separator: ", "))
                set output '\(name).svg'; set terminal svg size 1000,420 font 'sans,10'
                replot
                """)
        }
        // Loss per interval per mode, per source.
        for source in sources {
            let runs = results.runs.filter { $0.source == source }
            guard let first = runs.first else { continue }
            var data = "interval " + runs.map { "\"\($0.mode)\"" }.joined(separator: " ") + "\n"
            for (index, interval) in first.intervals.enumerated() {
                data += "\"\(decimal(interval.startS, 0))-\(decimal(interval.endS, 0))\" " + runs.map { String($0.intervals[index].lossPct) }.joined(separator: " ") + "\n"
            }
            let name = "loss-\(source)"
            try Data(data.utf8).write(to: URL(fileURLWithPath: "\(plots)/\(name).dat"))
            scripts.append(
                """
                unset arrow
                set title "\(source.uppercased()): loss per interval and mode"
                set xlabel "interval (s)"; set ylabel "loss (% of packets sent)"; set key outside right top; set grid ytics
                set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1
                set xrange [*:*]; set yrange [0:*]
                set output '\(name).png'; set terminal pngcairo size 1000,420 font ',10'
                plot for [i=2:\(runs.count + 1)] '\(name).dat' using i:xtic(1) title columnheader(i)
                set output '\(name).svg'; set terminal svg size 1000,420 font 'sans,10'
                replot
                unset style data
                """)
        }
        return try runGnuplot(scripts, in: plots)
    }
}

/// Copies the PNG and SVG plots in `plots` into `copy` (the committed reference run's folder).
func copyPlots(from plots: String, to copy: String) throws -> String {
    try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
    for file in try FileManager.default.contentsOfDirectory(atPath: plots) where file.hasSuffix(".png") || file.hasSuffix(".svg") {
        let target = "\(copy)/\(file)"
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.copyItem(atPath: "\(plots)/\(file)", toPath: target)
    }
    return copy
}

/// Writes `scripts` (each after a `reset`) as `plots.gp` into `plots` and runs gnuplot there,
/// where the scripts' data files are; returns the PNG and SVG files' patterns.
func runGnuplot(_ scripts: [String], in plots: String) throws -> [String] {
    let script = scripts.joined(separator: "\nreset\n") + "\n"
    try Data(script.utf8).write(to: URL(fileURLWithPath: "\(plots)/plots.gp"))
    let gnuplot = try Command.locate("gnuplot")
    let directory = FileManager.default.currentDirectoryPath
    FileManager.default.changeCurrentDirectoryPath(plots)
    defer { FileManager.default.changeCurrentDirectoryPath(directory) }
    try Command.run([gnuplot, "plots.gp"])
    return ["\(plots)/*.png", "\(plots)/*.svg"]
}

extension ExperimentReport: ExperimentReporting {}

/// An experiment kind's report: its tables, its targets (`--check` fails on a missed one),
/// and the files it writes.
public protocol ExperimentReporting {
    var markdown: String { get }
    var targets: [TargetCheck] { get }
    /// Writes the report's files into `folder` (and plots into `plotsCopy`); returns what it wrote.
    func write(folder: String, plotsCopy: String?) throws -> [String]
}

extension ExperimentReporting {
    public var targetsMarkdown: String {
        var out = "## Targets\n\n| target | run | measured | met |\n|---|---|---|---|\n"
        for check in targets {
            let met = !check.judged ? "not judged" : check.pass ? "yes" : "**no**"
            out += "| \(check.target) | \(check.run) | \(check.measured) | \(met)\(check.note.map { " (\($0))" } ?? "") |\n"
        }
        return out
    }
}
