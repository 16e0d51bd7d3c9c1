import Foundation
import RunRecords

/// What the runs are doing, from their senders' logs as they grow: time left, and per run and
/// VNet the rate sent over the last second and the loss the receiver reported so far.
struct LiveView {
    struct RunState {
        var name: String
        var log: String
        var start: UInt64
        var offset: UInt64 = 0
        var partial = ""
        var kbitS: [Double]
        var received: [Int]
        var lost: [Int]
        var dead: [Bool]
    }

    var runs: [RunState]
    let durationS: Double
    let vnets: Int

    init(runs: [(name: String, log: String, start: UInt64)], durationS: Double, vnets: Int) {
        self.durationS = durationS
        self.vnets = vnets
        self.runs = runs.map {
            RunState(
                name: $0.name, log: $0.log, start: $0.start, kbitS: Array(repeating: 0, count: vnets),
                received: Array(repeating: 0, count: vnets), lost: Array(repeating: 0, count: vnets),
                dead: Array(repeating: false, count: vnets))
        }
    }

    /// Reads what the logs gained since the last call.
    mutating func update() {
        for index in runs.indices {
            guard let handle = FileHandle(forReadingAtPath: runs[index].log) else { continue }
            defer { try? handle.close() }
            try? handle.seek(toOffset: runs[index].offset)
            let data = handle.readDataToEndOfFile()
            runs[index].offset += UInt64(data.count)
            let text = runs[index].partial + String(decoding: data, as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            runs[index].partial = String(lines.removeLast())
            for line in lines { apply(String(line), to: &runs[index]) }
        }
    }

    private func apply(_ line: String, to run: inout RunState) {
        guard let event = SenderLogEvent(line: line) else { return }
        switch event {
        case .sent(let sent) where sent.vnet >= 1 && sent.vnet <= vnets:
            run.kbitS[sent.vnet - 1] = Double(sent.bytes) * 8 / 1000
        case .report(let report):
            for path in report.paths where path.vnet >= 1 && path.vnet <= vnets {
                run.received[path.vnet - 1] = Int(path.received)
                run.lost[path.vnet - 1] = Int(path.lost)
            }
        case .control(let control) where control.vnet >= 1 && control.vnet <= vnets:
            if control.event == .dead { run.dead[control.vnet - 1] = true }
            if control.event == .alive { run.dead[control.vnet - 1] = false }
        default: break
        }
    }

    func render(now: UInt64) -> String {
        let elapsed = runs.map { now > $0.start ? Double(now - $0.start) / 1e9 : 0 }.min() ?? 0
        var lines = ["\(decimal(max(0, durationS - elapsed), 0)) s of \(decimal(durationS, 0)) s left (rate sent over the last second; loss reported so far)"]
        let width = runs.map(\.name.count).max() ?? 10
        for run in runs {
            var line = run.name.padding(toLength: width, withPad: " ", startingAt: 0)
            for v in 0..<vnets {
                let all = run.received[v] + run.lost[v]
                let loss = all > 0 ? Double(run.lost[v]) / Double(all) * 100 : 0
                let rate = decimal(run.kbitS[v], 0)
                line += "  VNet \(v + 1) \(String(repeating: " ", count: max(0, 4 - rate.count)))\(rate) kbit/s \(String(format: "%5.1f", loss)) % lost"
                line += run.dead[v] ? " (dead)" : "       "
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
