import Units

// The loss report as Markdown, beside `LossReport.swift`.

extension LossReport {
    /// The loss table as Markdown: one row per interval and path, and an `all` row per interval.
    public var markdown: String {
        var lines = [
            "| interval (s) | VNet | sent | received | lost | loss % of path | loss % of all |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        func rows(_ interval: Interval, label: String) {
            for path in interval.perVNet {
                lines.append(
                    "| \(label) | \(path.vnet) | \(path.sent) | \(path.received) | \(path.lost) | \(fixed(path.lossPctOfPath)) | \(fixed(path.lossPctOfAll)) |")
            }
            lines.append(
                "| \(label) | all | \(interval.sent) | \(interval.received) | \(interval.lost) | \(fixed(interval.lossPct)) | \(fixed(interval.lossPct)) |")
        }
        for interval in intervals { rows(interval, label: "\(trim(interval.startS))-\(trim(interval.endS))") }
        rows(total, label: "total")
        var text = lines.joined(separator: "\n") + "\n"
        if !frames.isEmpty {
            text += "\nframes lost (a frame is lost when any of its packets is): "
            text += frames.map { "\($0.type) \($0.lost)/\($0.frames - $0.shed) (\(fixed($0.lossPct)) %)" }.joined(separator: ", ") + "\n"
            text += "frames decodable (all packets and references arrived): "
            text += frames.map { "\($0.type) \($0.decodable)/\($0.frames) (\(fixed($0.decodablePct)) %)" }.joined(separator: ", ") + "\n"
            let shed = frames.filter { $0.shed > 0 }
            if !shed.isEmpty { text += "frames shed by the sender: " + shed.map { "\($0.type) \($0.shed)" }.joined(separator: ", ") + "\n" }
        }
        if let recovery {
            text += "\nafter recovery (playout deadline \(trim(recovery.latencyMs)) ms): network loss against what the viewer lost\n"
            for interval in intervals + [total] {
                let label = interval.startS == total.startS && interval.endS == total.endS && interval.sent == total.sent ? "total" : "\(trim(interval.startS))-\(trim(interval.endS)) s"
                text += "  \(label): network \(interval.lost) lost (\(fixed(interval.lossPct)) %), residual \(interval.residualLost ?? 0) (\(fixed(interval.residualLossPct ?? 0)) %), "
                text += "\(interval.recovered ?? 0) recovered" + (interval.recoveredFEC.map { ", \($0) rebuilt by FEC" } ?? "") + ", \(interval.late ?? 0) late\n"
            }
            text += "  NACKs: \(recovery.nacks) sent for \(recovery.asked) packets, \(recovery.answered) answered, \(recovery.gaveUp) given up"
            text += (recovery.recoveryMs.map { ", recovery in \(fixed($0)) ms (smoothed)" } ?? "") + "\n"
            if let parities = recovery.parities {
                text += "  FEC: \(parities) parity packets came, \(recovery.rebuilt ?? 0) packets rebuilt, \(recovery.parityUnusable ?? 0) parities unusable, "
                text += "\(recovery.parityGaveUp ?? 0) given up with two or more missing, \(recovery.rebuiltOvertaken ?? 0) overtaken by their original\n"
            }
        }
        if !endReceived { text += "\nthe sender's end-of-stream message did not arrive: losses after the last packet received are not counted\n" }
        let drops = dropped.filter { $0.value > 0 }.sorted { $0.key < $1.key }
        if !drops.isEmpty || otherStreams > 0 {
            text += "\ndatagrams dropped: " + drops.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            if otherStreams > 0 { text += (drops.isEmpty ? "" : ", ") + "other streams \(otherStreams)" }
            text += "\n"
        }
        return text
    }

    /// The loss table as CSV, one row per interval and path (`vnet` is `all` for the total).
    public var csv: String {
        var text = "start_s,end_s,vnet,sent,received,lost,loss_pct_of_path,loss_pct_of_all\n"
        for interval in intervals + [total] {
            for path in interval.perVNet {
                text += "\(trim(interval.startS)),\(trim(interval.endS)),\(path.vnet),\(path.sent),\(path.received),\(path.lost),\(path.lossPctOfPath),\(path.lossPctOfAll)\n"
            }
            text += "\(trim(interval.startS)),\(trim(interval.endS)),all,\(interval.sent),\(interval.received),\(interval.lost),\(interval.lossPct),\(interval.lossPct)\n"
        }
        return text
    }
}

func fixed(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    let fraction = hundredths % 100
    return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
}

func trim(_ value: Double) -> String { value.plainText }
