import Foundation
import Voice

/// The shadow-voip report: Table 1 with MOS at the receiver, in the production VNet and in its
/// shadow next to the paper's, the targets, VoIP drops in bins with the background (Fig. 7) and
/// MOS per phase (Fig. 8).
public struct ShadowVoiceReport: ExperimentReporting {
    public let results: ShadowVoiceResults
    public let folder: String

    public init(results: ShadowVoiceResults, folder: String) {
        self.results = results
        self.folder = folder
    }

    /// The paper's MOS (section 4.2, Fig. 8) as its text gives them: 4.34 at low load, 4.16 once
    /// the load was high, 4.38 on the shadow with QoS, 1.45 on the old VNet under high load.
    static let paperLow = 4.34
    static let paperHigh = 4.16
    static let paperShadowQoS = 4.38
    static let paperOldHigh = 1.45

    func paper(_ row: ShadowVoiceResults.PhaseRow, vnet: String) -> String {
        let loaded = row.load.uppercased() != "L"
        if row.priority.contains(vnet) { return decimal(Self.paperShadowQoS, 2) }
        if !loaded { return decimal(Self.paperLow, 2) }
        // A high load on a VNet without QoS: 4.16 before the shadow had QoS, 1.45 after.
        return row.priority.isEmpty ? decimal(Self.paperHigh, 2) : decimal(Self.paperOldHigh, 2)
    }

    func mos(_ bin: VoiceAccounting.Bin?) -> String { bin.map { decimal($0.mos, 2) } ?? "–" }
    func ppl(_ bin: VoiceAccounting.Bin?) -> String { bin.map { decimal($0.pplPct, 2) } ?? "–" }

    public var markdown: String {
        let r = results
        let (a, b) = (r.production, r.shadow)
        var out = "# \(r.experiment)\n\n"
        if let description = r.description { out += description + "\n\n" }
        out += "Phases of \(decimal(r.phaseS)) s; G.711 over RTP, fixed playout buffer \(decimal(r.playoutMs)) ms, E-model (G.107) with packet loss "
        out += "concealment; background: \(r.load.generator), \(r.load.flows) flows of \(r.load.payloadBytes)-byte payloads, Pareto (shape "
        out += "\(decimal(r.load.paretoShape, 2))) on/off periods of mean \(decimal(r.load.onMs)) / \(decimal(r.load.offMs)) ms, L \(decimal(r.load.low * 100, 0)) % "
        out += "and H \(decimal(r.load.high * 100, 0)) % of \(decimal(r.load.capacityMbit)) Mbit/s. \(a) is the production VNet, \(b) its shadow; "
        out += "the call is scored at the receiver and at each VNet's exit (its monitoring node); \(r.provenance.machine).\n\n"
        out += "| phase | production | active | QoS on | load | exit Mbit/s \(a) / \(b) | MOS receiver | MOS \(a) | MOS \(b) | paper \(a) / \(b) | lost or late % receiver / \(a) / \(b) |\n"
        out += "|---:|---|---|---|---|---:|---:|---:|---:|---:|---:|\n"
        for row in r.phases {
            let mbit = [a, b].map { row.exitMbit[$0].map { decimal($0, 1) } ?? "–" }.joined(separator: " / ")
            let paperB = row.active.contains(b) ? paper(row, vnet: b) : "–"
            let paperA = row.active.contains(a) ? paper(row, vnet: a) : "–"
            out += "| \(row.phase) | \(row.production) | \(row.active.joined(separator: ", ")) | \(row.priority.isEmpty ? "–" : row.priority.joined(separator: ", ")) | "
            out += "\(row.load) | \(mbit) | \(mos(row.receiver)) | \(mos(row.productionVNet)) | \(mos(row.shadowVNet)) | \(paperA) / \(paperB) | "
            out += "\(ppl(row.receiver)) / \(ppl(row.productionVNet)) / \(ppl(row.shadowVNet)) |\n"
        }
        out += "\nThe paper (Fig. 8): MOS 4.34 at low load, 4.16 when the load went high, 4.38 on the shadow with QoS, 1.45 on the old VNet; "
        out += "after the switch the user got the shadow's quality.\n\n"
        for row in r.switches {
            out += "Switch to \(row.to) at \(decimal(row.atS, 2)) s: \(row.lostBySwitch) packets lost by the switch; of the \(row.aroundSent) sent within 2 s "
            out += "of it, the receiver got \(row.aroundReceived).\n"
        }
        out += "The receiver got \(r.receiverDuplicates) packets twice"
        if let drops = r.exitDrops { out += "; the exit dropped \(drops.standby) packets of the standby VNet and \(drops.copies) second copies during switches" }
        out += ".\n"
        if let iso = r.isolation, let range = iso.ranges {
            out += "\n\(a) over the last third before its shadow became active (\(decimal(iso.atS)) s): lost or late \(decimal(iso.idle.pplPct, 2)) %, "
            out += "mean delay \(iso.idle.meanDelayMs.map { decimal($0, 2) } ?? "?") ms; over the \(iso.active.count) thirds with the same background replayed and "
            out += "\(b) active: \(decimal(range.ppl.lowerBound, 2))-\(decimal(range.ppl.upperBound, 2)) % and \(decimal(range.delay.lowerBound, 2))-\(decimal(range.delay.upperBound, 2)) ms"
            if let offered = iso.idleOfferedMbit, let active = iso.activeOfferedMbit, let low = active.min(), let high = active.max() {
                out += "; offered into \(a): \(decimal(offered, 2)) Mbit/s in the idle third, \(decimal(low, 2))-\(decimal(high, 2)) in the active ones"
            }
            if let left = iso.leftOut { out += "; left out, their background off the plan: \(left.joined(separator: ", "))" }
            out += ".\n"
        }
        let troubled = r.background.filter { $0.trouble != nil }
        out += "\nBackground: \(r.background.count) ITGSend segments, \(r.background.map(\.flowsFinished).reduce(0, +)) of \(r.background.count * r.load.flows) flows finished sending"
        out += troubled.isEmpty ? ".\n" : "; trouble in segments \(troubled.map { "\($0.segment) (\($0.trouble!))" }.joined(separator: ", ")).\n"
        out += "\nEvents: " + r.events.joined(separator: "; ") + "\n"
        return out
    }

    /// The least half-width of the noise band of A's figures with its shadow active (the same
    /// departures replayed; queues are not replayed to the packet), around their mean.
    static let isolationPplPoints = 2.0
    static let isolationDelayMs = 3.0

    public var targets: [TargetCheck] {
        let r = results
        let (a, b) = (r.production, r.shadow)
        var checks: [TargetCheck] = []
        for row in r.switches {
            checks.append(
                TargetCheck(
                    target: "the switch is clean: nothing lost by it, nothing twice", run: "to \(row.to) at \(decimal(row.atS, 1)) s",
                    measured: "\(row.lostBySwitch) lost by the switch, \(r.receiverDuplicates) twice", pass: row.lostBySwitch == 0 && r.receiverDuplicates == 0, note: nil))
        }
        if let iso = r.isolation, let band = iso.bands, let idleDelay = iso.idle.meanDelayMs {
            let pass = band.ppl.contains(iso.idle.pplPct) && band.delay.contains(idleDelay)
            var measured = "idle \(decimal(iso.idle.pplPct, 2)) %, \(decimal(idleDelay, 2)) ms; active \(decimal(band.ppl.lowerBound, 2))-\(decimal(band.ppl.upperBound, 2)) %, "
                + "\(decimal(band.delay.lowerBound, 2))-\(decimal(band.delay.upperBound, 2)) ms"
            if let offered = iso.idleOfferedMbit, let median = iso.offeredMedianMbit {
                measured += "; offered into \(a) \(decimal(offered, 2)) Mbit/s idle, median \(decimal(median, 2))"
            }
            if !iso.idleComparable {
                measured += ": the idle third's background was not its plan's (more than \(decimal(ShadowVoiceResults.Isolation.offeredTolerance * 100, 1)) % off), so nothing to compare"
            }
            checks.append(
                TargetCheck(
                    target: "the shadow does not touch production: \(a) with \(b) idle within the noise of \(a) with \(b) active (mean +- 3 sd, at least +-\(decimal(Self.isolationPplPoints)) points and +-\(decimal(Self.isolationDelayMs)) ms)",
                    run: "\(decimal(iso.atS)) s, \(iso.active.count) thirds", measured: measured, pass: pass, note: nil, judged: iso.idleComparable))
        }
        let low = r.phases.filter { $0.load.uppercased() == "L" }.compactMap(\.receiver)
        if !low.isEmpty {
            let values = low.map(\.mos)
            checks.append(
                TargetCheck(
                    target: "MOS around 4.3-4.4 at low load (4.25-4.45)", run: "receiver, L phases", measured: values.map { decimal($0, 2) }.joined(separator: ", "),
                    pass: values.allSatisfy { (4.25...4.45).contains($0) }, note: "paper 4.34"))
        }
        let loadedA = r.phases.filter { $0.load.uppercased() == "H" && !$0.priority.contains(a) }.compactMap(\.productionVNet)
        if !loadedA.isEmpty {
            let worst = loadedA.map(\.mos).min()!
            checks.append(
                TargetCheck(
                    target: "under high load without QoS, \(a) falls below 3.6", run: "\(a), H phases", measured: loadedA.map { decimal($0.mos, 2) }.joined(separator: ", "),
                    pass: worst < 3.6, note: "paper 4.16, then 1.45"))
        }
        let qosB = r.phases.filter { $0.priority.contains(b) }.compactMap(\.shadowVNet)
        if !qosB.isEmpty {
            checks.append(
                TargetCheck(
                    target: "\(b) with QoS stays at or above 4.3", run: "\(b), QoS phases", measured: qosB.map { decimal($0.mos, 2) }.joined(separator: ", "),
                    pass: qosB.allSatisfy { $0.mos >= 4.3 }, note: "paper 4.38"))
        }
        let after = r.phases.filter { $0.production == b }
        let pairs = after.compactMap { row in row.receiver.flatMap { rx in row.shadowVNet.map { (row.phase, rx.mos, $0.mos) } } }
        if !pairs.isEmpty {
            checks.append(
                TargetCheck(
                    target: "after the switch the receiver's MOS is \(b)'s (within 0.05)", run: "phases \(pairs.map { String($0.0) }.joined(separator: ", "))",
                    measured: pairs.map { "\(decimal($0.1, 2)) vs \(decimal($0.2, 2))" }.joined(separator: ", "), pass: pairs.allSatisfy { abs($0.1 - $0.2) <= 0.05 }, note: nil))
        }
        return checks
    }

    /// report.md, bins.csv, phases.csv and the two plots.
    public func write(folder: String, plotsCopy: String?) throws -> [String] {
        let r = results
        let (a, b) = (r.production, r.shadow)
        func cell(_ value: Double?) -> String { value.map { decimal($0, 3) } ?? "" }
        var bins = "start_s,receiver_pct,\(a)_pct,\(b)_pct,\(a)_mbit,\(b)_mbit\n"
        for bin in r.bins {
            bins += "\(decimal(bin.startS)),\(cell(bin.receiverPct)),\(cell(bin.productionPct)),\(cell(bin.shadowPct)),\(cell(bin.exitMbit[a])),\(cell(bin.exitMbit[b]))\n"
        }
        var phases = "phase,receiver_mos,\(a)_mos,\(b)_mos\n"
        for row in r.phases { phases += "\(row.phase),\(cell(row.receiver?.mos)),\(cell(row.productionVNet?.mos)),\(cell(row.shadowVNet?.mos))\n" }
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("bins.csv", bins), ("phases.csv", phases)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"), options: .atomic)
            written.append("\(folder)/\(name)")
        }
        let plots = "\(folder)/plots"
        try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
        // gnuplot reads "?" as a missing point.
        try Data(bins.replacingOccurrences(of: ",,", with: ",?,").replacingOccurrences(of: ",,", with: ",?,").replacingOccurrences(of: ",\n", with: ",?\n").utf8)
            .write(to: URL(fileURLWithPath: "\(plots)/shadow-voip-bins.csv"))
        try Data(phases.replacingOccurrences(of: ",,", with: ",?,").replacingOccurrences(of: ",\n", with: ",?\n").utf8)
            .write(to: URL(fileURLWithPath: "\(plots)/shadow-voip-phases.csv"))
        let boundaries = (1..<r.phases.count).map { "set arrow from \(decimal(Double($0) * r.phaseS)), graph 0 to \(decimal(Double($0) * r.phaseS)), graph 1 nohead dt 2 lc rgb '#888888'" }
            .joined(separator: "\n")
        written += try runGnuplot(
            [
                """
                set datafile separator ','; set datafile missing '?'
                set title "\(r.experiment): VoIP lost or late per \(decimal(r.binS)) s bin, and the background at each exit (Fig. 7)"
                set xlabel 'time (s)'; set ylabel 'VoIP lost or late (%)'; set y2label 'exit throughput (Mbit/s)'
                set ytics nomirror; set y2tics; set yrange [0:*]; set y2range [0:*]; set grid; set key top left
                \(boundaries)
                set output 'shadow-voip-drops.png'; set terminal pngcairo size 900,450 font ',10'
                plot 'shadow-voip-bins.csv' every ::1 using 1:2 with linespoints lw 2 title 'receiver', \\
                     '' every ::1 using 1:3 with linespoints title 'VNet \(a)', '' every ::1 using 1:4 with linespoints title 'VNet \(b)', \\
                     '' every ::1 using 1:5 axes x1y2 with lines dt 3 title '\(a) exit Mbit/s', '' every ::1 using 1:6 axes x1y2 with lines dt 4 title '\(b) exit Mbit/s'
                set output 'shadow-voip-drops.svg'; set terminal svg size 900,450 font 'sans,10'
                replot
                """,
                """
                set datafile separator ','; set datafile missing '?'
                set title "\(r.experiment): MOS per phase (E-model, G.107; Fig. 8)"
                set xlabel 'phase'; set ylabel 'MOS'; set yrange [1:4.6]; set grid ytics; set key bottom left
                set style data histograms; set style histogram clustered gap 1; set style fill solid 0.6 border -1; set boxwidth 0.9
                set output 'shadow-voip-mos.png'; set terminal pngcairo size 800,420 font ',10'
                plot 'shadow-voip-phases.csv' every ::1 using 2:xtic(1) title 'receiver', '' every ::1 using 3 title 'VNet \(a)', '' every ::1 using 4 title 'VNet \(b)'
                set output 'shadow-voip-mos.svg'; set terminal svg size 800,420 font 'sans,10'
                replot
                """,
            ], in: plots)
        if let copy = plotsCopy { written.append(try copyPlots(from: plots, to: copy)) }
        return written
    }
}

extension ShadowVoiceResults.Isolation {
    /// Where A's figures with the shadow idle may lie: the active thirds' mean +- 3 standard
    /// deviations, at least +- the report's floors.
    var bands: (ppl: ClosedRange<Double>, delay: ClosedRange<Double>)? {
        func band(_ values: [Double], floor: Double) -> ClosedRange<Double>? {
            guard values.count >= 2 else { return nil }
            let mean = values.reduce(0, +) / Double(values.count)
            let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
            let half = max(3 * sd, floor)
            return (mean - half)...(mean + half)
        }
        guard let ppl = band(active.map(\.pplPct), floor: ShadowVoiceReport.isolationPplPoints),
            let delay = band(active.compactMap(\.meanDelayMs), floor: ShadowVoiceReport.isolationDelayMs)
        else { return nil }
        return (ppl, delay)
    }

    /// The spread of lost-or-late percent and mean delay over the thirds with the shadow active.
    var ranges: (ppl: ClosedRange<Double>, delay: ClosedRange<Double>)? {
        let ppl = active.map(\.pplPct)
        let delays = active.compactMap(\.meanDelayMs)
        guard let lowPpl = ppl.min(), let highPpl = ppl.max(), let lowDelay = delays.min(), let highDelay = delays.max() else { return nil }
        return (lowPpl...highPpl, lowDelay...highDelay)
    }
}
