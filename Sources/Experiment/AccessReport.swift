import Foundation
import Lab

/// The access experiment's report: per flow, its rate per 1 s bin next to what it should get
/// and the paper's figure; the access link's HTB counters; the targets; a plot like Fig. 3a.
public struct AccessReport: ExperimentReporting {
    public let results: AccessResults
    public let folder: String

    public init(results: AccessResults, folder: String) {
        self.results = results
        self.folder = folder
    }

    /// Provisioned flows within 2 % of their reservation, legacy within 5 % of the balance.
    static let provisionedTolerance = 0.02
    static let legacyTolerance = 0.05
    /// A live reservation change in effect within this long of its due time.
    static let reserveLateMs = 50.0

    var bins: Int { results.flows.map(\.mbitS.count).max() ?? 0 }

    func cell(_ value: Double?) -> String { value.map { decimal($0, 2) } ?? "" }

    public var markdown: String {
        var out = "# \(results.experiment)\n\n"
        if let description = results.description { out += description + "\n\n" }
        let reservations = results.reservations.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        out += "Access link \(results.linkRate), assignable \(results.assignable), reservations \(reservations); \(results.provenance.machine). "
        out += "Rates are on the wire (IPv4 + 14 B Ethernet header, as HTB counts them), measured by libpcap at the receiver in 1 s bins.\n\n"
        out += "| flow | VNet | planned | paper Mbit/s | expected | worst bin | iperf3 goodput Mbit/s |\n|---|---|---|---:|---|---|---:|\n"
        for flow in results.flows {
            let expected = Set(flow.expectedMbitS.compactMap { $0 }).sorted().map { decimal($0, 1) }.joined(separator: " / ")
            let worst = flow.worst.map { "\(decimal(flow.mbitS[$0.bin], 2)) at \($0.bin)-\($0.bin + 1) s (\(decimal($0.deviation * 100, 2)) %, of \($0.bins) bins)" } ?? "–"
            out += "| \(flow.name) | \(flow.vnet ?? "legacy") | \(decimal(flow.plannedStartS))-\(decimal(flow.plannedEndS)) s | \(flow.paperMbitS.map { decimal($0) } ?? (flow.vnet == nil ? "the balance" : "–")) | "
            out += "\(expected.isEmpty ? "–" : expected) | \(worst) | \(flow.iperf.map { decimal($0.receivedMbitS, 2) } ?? "–") |\n"
        }
        out += "\n## Rate per bin (Mbit/s; expected in parentheses where checked)\n\n| t (s) | " + results.flows.map(\.name).joined(separator: " | ") + " |\n|---:|"
        out += String(repeating: "---:|", count: results.flows.count) + "\n"
        for bin in 0..<bins {
            out += "| \(bin)-\(bin + 1) |"
            for flow in results.flows {
                let value = bin < flow.mbitS.count ? flow.mbitS[bin] : 0
                let expected = bin < flow.expectedMbitS.count ? flow.expectedMbitS[bin] : nil
                out += " \(decimal(value, 2))\(expected.map { " (\(decimal($0, 1)))" } ?? "") |"
            }
            out += "\n"
        }
        out += "\n## The access link's HTB classes after the run\n\n| end | class | VNet | rate | ceil | packets | dropped |\n|---|---|---|---|---|---:|---:|\n"
        for (end, classes) in results.classes.sorted(by: { $0.key > $1.key }) {
            for (id, c) in classes.sorted(by: { $0.key < $1.key }) where id != "1:1" {
                out += "| \(end) | \(id) | \(results.classNames[id] ?? (id == AccessShaping.legacyClassID ? "legacy" : "–")) | \(c.rate) | \(c.ceil) | \(c.packets) | \(c.drops) |\n"
            }
        }
        if !results.reservationChanges.isEmpty {
            out += "\n## Live reservation changes\n\n| at (s) | change | in effect after (ms) | of it, the machine stalled (ms) |\n|---:|---|---:|---:|\n"
            for change in results.reservationChanges {
                out += "| \(decimal(change.atS)) | \(change.event) | \(decimal(change.lateMs, 1)) | \(change.stalledMs.map { decimal($0, 1) } ?? "–") |\n"
            }
        }
        return out
    }

    public var targets: [TargetCheck] {
        var checks: [TargetCheck] = []
        for flow in results.flows where flow.inAggregate != true {
            let tolerance = flow.vnet == nil ? Self.legacyTolerance : Self.provisionedTolerance
            let target = flow.vnet == nil
                ? "legacy gets the balance within 5 % in every 1 s bin, and the slack within 1 s" + (flow.sums.map { " (\($0.joined(separator: " + ")))" } ?? "")
                : "a provisioned flow gets its reservation within 2 % in every 1 s bin from 1 s after its start"
            guard let worst = flow.worst else {
                checks.append(TargetCheck(target: target, run: flow.name, measured: "no bin to check (did it send?)", pass: false, note: nil))
                continue
            }
            let off = flow.offBins(tolerance: tolerance)
            let madeUp = off.madeUp.map { "\($0)-\($0 + 1) s" }.joined(separator: ", ")
            checks.append(
                TargetCheck(
                    target: target, run: flow.name,
                    measured: "worst \(decimal(flow.mbitS[worst.bin], 2)) against \(decimal(flow.expectedMbitS[worst.bin]!, 1)) Mbit/s (\(decimal(worst.deviation * 100, 2)) %) over \(worst.bins) bins",
                    pass: off.not.isEmpty,
                    note: off.madeUp.isEmpty ? nil : "off in \(madeUp), made up by the bin beside it: packets moved across a bin's edge by a stall of the machine"))
        }
        checks += results.reservationChanges.map { $0.check(boundMs: Self.reserveLateMs) }
        if !results.reservationChanges.isEmpty {
            let dropped = results.classes.values.flatMap { $0.filter { $0.key != AccessShaping.legacyClassID }.values }.map(\.drops).reduce(0, +)
            checks.append(
                TargetCheck(
                    target: "reservation changes lose no packet (HTB drop counters at both ends)", run: "reserved classes",
                    measured: "\(dropped) dropped", pass: dropped == 0, note: nil))
        }
        return checks
    }

    /// report.md, rates.csv and the plot; returns the files written.
    public func write(folder: String, plotsCopy: String?) throws -> [String] {
        var csv = "t_s," + results.flows.flatMap { ["\($0.name)_mbit_s", "\($0.name)_expected_mbit_s"] }.joined(separator: ",") + "\n"
        var data = "# t_s " + results.flows.flatMap { ["\($0.name)_mbit_s", "\($0.name)_expected_mbit_s"] }.joined(separator: " ") + "\n"
        for bin in 0..<bins {
            var row: [String] = [decimal(Double(bin) + 0.5)]
            var plotRow: [String] = [decimal(Double(bin))]
            for flow in results.flows {
                let value = bin < flow.mbitS.count ? flow.mbitS[bin] : 0
                let expected = bin < flow.expectedMbitS.count ? flow.expectedMbitS[bin] : nil
                row += [decimal(value, 2), cell(expected)]
                plotRow += [decimal(value, 2), expected.map { decimal($0, 2) } ?? "NaN"]
            }
            csv += row.joined(separator: ",") + "\n"
            data += plotRow.joined(separator: " ") + "\n"
        }
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("rates.csv", csv)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"), options: .atomic)
            written.append("\(folder)/\(name)")
        }
        let plots = "\(folder)/plots"
        try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
        let name = "access-\(results.experiment)"
        try Data(data.utf8).write(to: URL(fileURLWithPath: "\(plots)/\(name).dat"))
        let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]
        var lines: [String] = []
        for (index, flow) in results.flows.enumerated() {
            let color = colors[index % colors.count]
            lines.append("'\(name).dat' using 1:\(2 + 2 * index) with steps lw 2 lc rgb '\(color)' title '\(flow.name)\(flow.vnet == nil ? " (legacy)" : "")'")
            lines.append("'\(name).dat' using 1:\(3 + 2 * index) with steps dt 3 lw 1 lc rgb '\(color)' notitle")
        }
        let top = max(results.linkRate.bitsPerSecond / 1e6, results.flows.flatMap(\.mbitS).max() ?? 0) * 1.1
        written += try runGnuplot(
            [
                """
                set title "\(results.experiment): rate per flow at the receiver (1 s bins; dotted: expected)"
                set xlabel "time (s)"; set ylabel "Mbit/s on the wire"; set key outside right top; set grid
                set xrange [0:\(bins)]; set yrange [0:\(decimal(top.rounded(.up)))]
                set output '\(name).png'; set terminal pngcairo size 1000,420 font ',10'
                plot \(lines.joined(separator: ", "))
                set output '\(name).svg'; set terminal svg size 1000,420 font 'sans,10'
                replot
                """
            ], in: plots)
        if let copy = plotsCopy { written.append(try copyPlots(from: plots, to: copy)) }
        return written
    }
}
