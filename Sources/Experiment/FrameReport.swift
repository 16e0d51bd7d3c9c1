import Foundation

/// The report's frames: decodable frames per run and interval, and the targets of runs that
/// shed frames (where the VNets fell short).
extension ExperimentReport {
    /// Decodable frames per run and interval, where the trace has frame types.
    var framesMarkdown: String {
        let runs = results.runs.filter { $0.total.frames != nil }
        guard let first = runs.first else { return "" }
        var out = "\n## Frames\n\n"
        out += "Each cell: **decodable frames' bytes, % of all the frames' bytes** / what the capacity allows (the VNets' capacity over the stream's rate, at most 100 %); "
        out += "then I frames whole of I frames, and frames shed by the sender. A frame is decodable when all its packets and its references arrived.\n\n"
        let labels = first.intervals.map { "\(decimal($0.startS, 1))-\(decimal($0.endS, 1)) s" } + ["total"]
        out += "| run | " + labels.joined(separator: " | ") + " |\n|---|" + String(repeating: "---|", count: labels.count) + "\n"
        for run in runs {
            let cells = (run.intervals.map(\.frames) + [run.total.frames]).map { frames -> String in
                guard let f = frames else { return "–" }
                let shed = f.shed > 0 ? ", shed \(f.shed)" : ""
                return "**\(String(format: "%.1f", f.decodableBytesPct))** / \(String(format: "%.0f", f.capacitySharePct)) (I \(f.iDecodable)/\(f.iFrames)\(shed))"
            }
            out += "| \(run.source) \(run.mode)\(run.shed == true ? " (sheds)" : "") | " + cells.joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// Where the VNets fell short: every I frame whole, and decodable frames near what the capacity allows.
    func frameTargets(_ run: RunResult, name: String) -> [TargetCheck] {
        let goals = results.targets
        var checks: [TargetCheck] = []
        for interval in run.intervals {
            guard let frames = interval.frames, frames.capacitySharePct < 99.5 else { continue }
            let span = "\(name) \(decimal(interval.startS, 1))-\(decimal(interval.endS, 1)) s"
            if goals.everyIFrame {
                checks.append(
                    TargetCheck(
                        target: "every I frame arrives where the VNets fall short", run: span, measured: "\(frames.iDecodable) of \(frames.iFrames)",
                        pass: frames.iDecodable == frames.iFrames, note: nil))
            }
            if let goal = goals.decodableOfCapacityPct {
                checks.append(
                    TargetCheck(
                        target: "decodable frames ≥ \(decimal(goal)) % of what the capacity allows (by size)", run: span,
                        measured: "\(decimal(frames.decodableOfCapacityPct, 1)) % (\(decimal(frames.decodableBytesPct, 1)) % of bytes, capacity \(decimal(frames.capacitySharePct, 1)) %)",
                        pass: frames.decodableOfCapacityPct >= goal, note: nil))
            }
        }
        return checks
    }
}
