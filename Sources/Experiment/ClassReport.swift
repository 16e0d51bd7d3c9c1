import Foundation
import Lab
import Packets

/// The class experiment's report: per class next to Table I, what the captures saw, the targets.
public struct ClassReport: ExperimentReporting {
    public let results: ClassResults

    public init(results: ClassResults) { self.results = results }

    func format(_ value: Double?, _ places: Int) -> String { value.map { decimal($0, places) } ?? "–" }

    public var markdown: String {
        var out = "# \(results.experiment)\n\n"
        if let description = results.description { out += description + "\n\n" }
        out += "\(results.packetsPerClass) packets of \(results.packetBytes) B per class at \(decimal(results.packetsPerSecond)) packets/s (\(results.arrivals.rawValue) arrivals); "
        out += "shaper \(results.provenance.shaper), queues \(results.red ? "RED" : "tail drop (no sch_red here)"); \(results.provenance.machine)."
        if let shifts = results.senderScheduleShifts, shifts > 0 {
            out += " The sender fell behind \(shifts) times and moved its schedule \(decimal(results.senderScheduleShiftS ?? 0, 2)) s later in all (no catch-up bursts)."
        }
        out += "\n\n"
        out += "| class | TT | VNet | queue | loss % (paper) | delay ms mean (paper) | p50 | p99 | max |\n|---|---|---|---|---:|---:|---:|---:|---:|\n"
        for c in results.classes {
            out += "| \(c.name) | \(c.tt) | \(c.vnet) | \(c.queue) | \(decimal(c.lossPct, 2)) (\(format(c.paperLossPct, 2))) | "
            out += "\(format(c.delayMsMean, 1)) (\(format(c.paperDelayMs, 1))) | \(format(c.delayMsP50, 1)) | \(format(c.delayMsP99, 1)) | \(format(c.delayMsMax, 1)) |\n"
        }
        out += "\n## What the captures inside each VNet saw\n\n| VNet | capture point | packets by TT |\n|---|---|---|\n"
        for capture in results.captures {
            let counts = capture.packetsByTOS.sorted { $0.key < $1.key }.map { key, count in
                "\(TrafficMark(tos: UInt8(key) ?? 0)): \(count)"
            }
            out += "| \(capture.vnet) | \(capture.point) | \(counts.isEmpty ? "none" : counts.joined(separator: ", ")) |\n"
        }
        return out
    }

    public var targets: [TargetCheck] {
        var checks: [TargetCheck] = []
        let tosToClass = Dictionary(uniqueKeysWithValues: results.classes.map { ($0.tos, $0) })
        for vnet in Set(results.captures.map(\.vnet)).sorted() {
            let entry = results.captures.filter { $0.vnet == vnet && $0.point.hasSuffix(":\(LabPlan.ingressInterface)") }
            var wrong = 0
            var right = 0
            for capture in entry {
                for (key, count) in capture.packetsByTOS {
                    guard let cls = tosToClass[Int(key) ?? -1] else { continue }
                    if cls.vnet == vnet { right += count } else { wrong += count }
                }
            }
            checks.append(
                TargetCheck(
                    target: "every packet in the VNet of its mark", run: "VNet \(vnet)",
                    measured: "\(right) of its classes' packets, \(wrong) of other classes'", pass: wrong == 0 && right > 0, note: nil))
        }
        for c in results.classes {
            let sentIn = results.captures.filter { $0.vnet == c.vnet && $0.point.hasSuffix(":\(LabPlan.ingressInterface)") }
                .map { $0.packetsByTOS[String(c.tos)] ?? 0 }.reduce(0, +)
            checks.append(
                TargetCheck(
                    target: "every packet of the class entered its VNet", run: c.name, measured: "\(sentIn) of \(c.sent) (+ end messages)",
                    pass: sentIn >= c.sent, note: nil))
        }
        let delay = results.classes.filter { $0.sensitive == .delay }
        let loss = results.classes.filter { $0.sensitive == .loss }
        for d in delay {
            for l in loss {
                checks.append(
                    TargetCheck(
                        target: "the delay-sensitive class has the lower mean delay", run: "\(d.name) vs \(l.name)",
                        measured: "\(format(d.delayMsMean, 1)) vs \(format(l.delayMsMean, 1)) ms",
                        pass: (d.delayMsMean ?? .infinity) < (l.delayMsMean ?? -.infinity), note: nil))
                checks.append(
                    TargetCheck(
                        target: "the loss-sensitive class has the lower loss", run: "\(l.name) vs \(d.name)",
                        measured: "\(decimal(l.lossPct, 2)) vs \(decimal(d.lossPct, 2)) %", pass: l.lossPct < d.lossPct, note: nil))
            }
        }
        return checks
    }

    /// report.md and classes.csv in `folder`; returns the files written.
    public func write(folder: String, plotsCopy _: String?) throws -> [String] {
        var csv = "class,tt,tos,vnet,queue,sent,received,loss_pct,delay_ms_mean,delay_ms_p50,delay_ms_p99,delay_ms_max,paper_loss_pct,paper_delay_ms\n"
        for c in results.classes {
            let fields: [String] = [
                c.name, c.tt, String(c.tos), c.vnet, "\"\(c.queue)\"", String(c.sent), String(c.received), decimal(c.lossPct),
                format(c.delayMsMean, 3), format(c.delayMsP50, 3), format(c.delayMsP99, 3), format(c.delayMsMax, 3),
                format(c.paperLossPct, 3), format(c.paperDelayMs, 3),
            ]
            csv += fields.joined(separator: ",").replacingOccurrences(of: "–", with: "") + "\n"
        }
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("classes.csv", csv)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"), options: .atomic)
            written.append("\(folder)/\(name)")
        }
        return written
    }
}
