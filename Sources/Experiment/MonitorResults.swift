import Foundation
import Lab
import Monitoring

/// `results.json` of a loss-locating experiment: per link direction of the watched VNets, the
/// loss the monitoring VNet located next to the kernel's own count; per path, what was sent,
/// received and placed; each Moni's cost and its own drops; what arrived at every production port.
public struct MonitorResults: Codable, Sendable, ResultsDocument {
    public var kind = MonitorExperiment.kind
    public var schemaVersion = ResultsSchema.version
    public var experiment: String
    public var description: String?
    public var provenance: Provenance
    public var cbr: String
    public var mode: String
    /// How each monitor was set up, one line each.
    public var monitors: [String]
    public var links: [LinkRow]
    public var paths: [LossLocator.PathLoss]
    public var monis: [MoniRow]
    public var captures: [CaptureRow]
    public var collector: MonitorCollector.Totals?

    /// One direction of a link: media packets that entered it, those the Monis placed on it, and
    /// the kernel's count (nil on a VNet's access links, which the kernel counts at one end).
    public struct LinkRow: Codable, Sendable, Equatable {
        public var vnet: String
        public var path: String?
        public var from: String
        public var to: String
        public var entered: Int
        public var located: Int
        public var kernelDropped: Int?
        /// Of the kernel's: its random loss, and its queue.
        public var lossDrops: Int?
        public var queueDrops: Int?
    }

    public struct MoniRow: Codable, Sendable, Equatable {
        public var node: String
        public var router: String
        public var method: String
        public var copies: Int?
        /// Copies lost before libpcap read them, and on the mirror link at the router.
        public var droppedByKernel: Int?
        public var mirrorLinkDrops: Int?
        public var cpuS: Double?
        public var intervals: Int?
    }

    /// What libpcap saw arrive at one production port: media packets, and how many of them
    /// were a second copy of one already seen there (a mirrored copy that leaked would be).
    public struct CaptureRow: Codable, Sendable, Equatable {
        public var port: String
        public var media: Int
        public var duplicates: Int
    }

    public static func load(_ path: String) throws -> MonitorResults { try loadDocument(path, kind: "monitor-locate results") }
}

/// The loss-locating experiment's report: the links table, the paths, the Monis, the targets.
public struct MonitorReport: ExperimentReporting {
    public let results: MonitorResults
    public let folder: String

    public init(results: MonitorResults, folder: String) {
        self.results = results
        self.folder = folder
    }

    func cell(_ value: Int?) -> String { value.map(String.init) ?? "–" }

    public var markdown: String {
        var out = "# \(results.experiment)\n\n"
        if let description = results.description { out += description + "\n\n" }
        out += "CBR \(results.cbr), \(results.mode); monitors: \(results.monitors.joined(separator: "; ")); \(results.provenance.machine).\n\n"
        out += "## Loss per link, located by the monitoring VNet and counted by the kernel\n\n"
        out += "| VNet | path | link | packets in | located lost | kernel dropped | of it random loss | of it queue |\n|---|---|---|---:|---:|---:|---:|---:|\n"
        for row in results.links {
            out += "| \(row.vnet) | \(row.path ?? "–") | \(row.from) -> \(row.to) | \(row.entered) | \(row.located) | \(cell(row.kernelDropped)) | \(cell(row.lossDrops)) | \(cell(row.queueDrops)) |\n"
        }
        out += "\n## Per path\n\n| path | sent | received | lost | located | unchained |\n|---:|---:|---:|---:|---:|---:|\n"
        for path in results.paths {
            out += "| \(path.path) | \(path.sent) | \(path.received) | \(path.sent - path.received) | \(path.located) | \(path.unchained) |\n"
        }
        out += "\n## Monitoring nodes\n\n| node | router | method | copies | dropped before libpcap | dropped on the mirror link | CPU s | summaries |\n|---|---|---|---:|---:|---:|---:|---:|\n"
        for moni in results.monis {
            out += "| \(moni.node) | \(moni.router) | \(moni.method) | \(cell(moni.copies)) | \(cell(moni.droppedByKernel)) | \(cell(moni.mirrorLinkDrops)) | \(moni.cpuS.map { decimal($0, 2) } ?? "–") | \(cell(moni.intervals)) |\n"
        }
        let media = results.captures.map(\.media).reduce(0, +)
        out += "\nlibpcap on all \(results.captures.count) production ports saw \(media) media packets arrive, "
        out += "\(results.captures.map(\.duplicates).reduce(0, +)) of them twice.\n"
        return out
    }

    public var targets: [TargetCheck] {
        var checks: [TargetCheck] = []
        for row in results.links {
            guard let kernel = row.kernelDropped else { continue }
            checks.append(
                TargetCheck(
                    target: "located loss equals the kernel's drop counter, exactly", run: "\(row.from) -> \(row.to)",
                    measured: "located \(row.located), kernel \(kernel)", pass: row.located == kernel, note: nil))
        }
        for path in results.paths {
            checks.append(
                TargetCheck(
                    target: "the receiver's loss on a path is the sum along it", run: "path \(path.path)",
                    measured: "lost \(path.sent - path.received), located \(path.located), \(path.unchained) unchained",
                    pass: path.located == path.sent - path.received && path.unchained == 0, note: nil))
        }
        let duplicates = results.captures.map(\.duplicates).reduce(0, +)
        checks.append(
            TargetCheck(
                target: "no mirrored copy on a production link (libpcap on every production port)", run: "\(results.captures.count) ports",
                measured: "\(duplicates) packets seen twice", pass: duplicates == 0 && !results.captures.isEmpty, note: nil))
        let missed = results.monis.map { ($0.droppedByKernel ?? 1) + ($0.mirrorLinkDrops ?? 1) }.reduce(0, +)
        checks.append(
            TargetCheck(
                target: "the Monis kept every copy (exact location needs them all)", run: "\(results.monis.count) Monis",
                measured: "\(missed) copies dropped", pass: missed == 0, note: nil))
        let finals = results.collector?.finals ?? []
        checks.append(
            TargetCheck(
                target: "every Moni's last summary reached the collector over the monitoring VNet", run: "collector",
                measured: "\(finals.count) of \(results.monis.count)", pass: finals.count == results.monis.count, note: nil))
        return checks
    }

    /// report.md and links.csv; returns the files written.
    public func write(folder: String, plotsCopy: String?) throws -> [String] {
        var csv = "vnet,path,from,to,entered,located,kernel_dropped,loss_drops,queue_drops\n"
        for row in results.links {
            csv += "\(row.vnet),\(row.path ?? ""),\(row.from),\(row.to),\(row.entered),\(row.located),\(cell(row.kernelDropped)),\(cell(row.lossDrops)),\(cell(row.queueDrops))\n"
        }
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("links.csv", csv.replacingOccurrences(of: "–", with: ""))] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"), options: .atomic)
            written.append("\(folder)/\(name)")
        }
        return written
    }
}
