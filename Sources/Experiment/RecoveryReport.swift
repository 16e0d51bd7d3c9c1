import Foundation

/// The report's recovery: per run and interval, the network's loss against what the viewer
/// lost after recovery (not delivered by the playout deadline), and what resending cost.
extension ExperimentReport {
    var recoveryMarkdown: String {
        let runs = results.runs.filter { $0.total.residualLossPct != nil }
        guard results.runs.contains(where: { $0.recovery != nil }), let first = runs.first else { return "" }
        var out = "\n## Recovery\n\n"
        out += "Each cell: the network's loss % / **the loss after recovery %** (not delivered by the playout deadline: lost for good, or late) "
        out += "and, in brackets, packets a retransmission delivered in time (+ those FEC rebuilt in time). Then what it cost: packets resent (of them on another VNet "
        out += "than the one that lost them, and of a failed VNet's unreported tail), their bytes as % of the stream's, the parity's bytes as % of the stream's "
        out += "(its block shape), the receiver's NACKs, entries it gave up at their deadline, and the smoothed time from a NACK to its answer.\n\n"
        let labels = first.intervals.map { "\(decimal($0.startS, 1))-\(decimal($0.endS, 1)) s" } + ["total"]
        out += "| run | recovery | " + labels.joined(separator: " | ") + " | resent (elsewhere, tail) | bytes % | parity bytes % (shape) | NACKs | given up | NACK to answer (ms) |\n"
        out += "|---|---|" + String(repeating: "---|", count: labels.count) + "---:|---:|---:|---:|---:|---:|\n"
        for run in runs {
            let cells = (run.intervals + [run.total]).map { interval -> String in
                guard let residual = interval.residualLossPct else { return "–" }
                let rebuilt = interval.recoveredFEC.map { " + \($0) FEC" } ?? ""
                return "\(String(format: "%.2f", interval.lossPct)) / **\(String(format: "%.2f", residual))** (\(interval.recovered ?? 0)\(rebuilt))"
            }
            let r = run.recovery
            out += "| \(run.source) \(run.mode) | \(r.map { "\($0.mode), \(decimal($0.latencyMs)) ms" } ?? "none") | " + cells.joined(separator: " | ")
            out += r.map { r in
                let parity = r.parityBytesPct.map { "\(String(format: "%.1f", $0)) (\(r.fec ?? ""))" } ?? "–"
                return " | \(r.resent) (\(r.resentElsewhere), \(r.deadTail)) | \(String(format: "%.1f", r.resentBytesPct)) | \(parity) | \(r.nacks) | \(r.gaveUp) | "
                    + "\(r.recoveryMs.map { decimal($0, 1) } ?? "–") |\n"
            } ?? " | – | – | – | – | – | – |\n"
        }
        return out
    }

    /// A source's `residual_target_pct`: the loss after recovery in every interval.
    func recoveryTargets(_ run: RunResult, name: String) -> [TargetCheck] {
        guard let limit = run.residualTargetPct else { return [] }
        return run.intervals.map { interval in
            let span = "\(name) \(decimal(interval.startS, 1))-\(decimal(interval.endS, 1)) s"
            guard let residual = interval.residualLossPct else {
                return TargetCheck(
                    target: "loss after recovery ≤ \(decimal(limit, 2)) % per interval", run: span, measured: "not counted (results from before recovery)",
                    pass: false, note: nil, judged: false)
            }
            return TargetCheck(
                target: "loss after recovery ≤ \(decimal(limit, 2)) % per interval", run: span,
                measured: "\(decimal(residual, 2)) % (network \(decimal(interval.lossPct, 2)) %)", pass: residual <= limit, note: nil)
        }
    }
}
