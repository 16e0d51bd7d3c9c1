import Accounting
import Foundation
import Lab

/// `results.json` of a multicast experiment: per member of the group, its loss table, its
/// branch of the tree, and what the kernel dropped on each link of that branch.
public struct MulticastResults: Codable, Sendable, ResultsDocument {
    public var kind = MulticastExperiment.kind
    public var schemaVersion = ResultsSchema.version
    public var experiment: String
    public var description: String?
    public var provenance: Provenance
    public var group: String
    public var vnet: String
    public var cbr: String
    /// Packets the sender put into the VNet's tun: one per packet of the stream (the copies are
    /// made in the VNet, never by the sender).
    public var senderPackets: Int
    public var members: [Member]

    enum CodingKeys: String, CodingKey {
        case kind, experiment, description, provenance, group, vnet, cbr, members
        case schemaVersion = "schema_version"
        case senderPackets = "sender_packets"
    }

    public struct Member: Codable, Sendable, Equatable {
        public var node: String
        /// Its host, in a lab over hosts.
        public var host: String?
        /// The link directions from the sender to it, in order.
        public var branch: [BranchLink]
        public var sent: Int
        public var received: Int
        public var lost: Int
        public var duplicates: Int
        /// Its receiver's loss table, interval by interval.
        public var intervals: [LossReport.Interval]

        /// The kernel's drops on the links of its branch it counts (not the VNet's access links:
        /// they are never shaped, so they drop nothing of the stream's).
        public var branchDropped: Int { branch.compactMap(\.dropped).reduce(0, +) }
    }

    /// One direction of a link on a branch: media packets that entered it and that it dropped,
    /// as the kernel counts them (nil on a VNet's access links, counted at one end only).
    public struct BranchLink: Codable, Sendable, Equatable {
        public var from: String
        public var to: String
        public var entered: Int?
        public var dropped: Int?
    }

    public static func load(_ path: String) throws -> MulticastResults { try loadDocument(path, kind: "multicast results") }
}

public struct MulticastReport: ExperimentReporting {
    public let results: MulticastResults
    public let folder: String

    public init(results: MulticastResults, folder: String) {
        self.results = results
        self.folder = folder
    }

    public var markdown: String {
        var out = "# \(results.experiment)\n\n"
        if let description = results.description { out += description + "\n\n" }
        out += "CBR \(results.cbr) to \(results.group) in \(results.vnet); the sender put \(results.senderPackets) packets into its tun, once each.\n\n"
        out += "## Loss per member\n\n| member | host | interval (s) | sent | received | lost | loss % |\n|---|---|---|---:|---:|---:|---:|\n"
        for member in results.members {
            for interval in member.intervals {
                out += "| \(member.node) | \(member.host ?? "–") | \(decimal(interval.startS))-\(decimal(interval.endS)) | \(interval.sent) | \(interval.received) | \(interval.lost) | \(decimal(interval.lossPct, 2)) |\n"
            }
            out += "| \(member.node) | \(member.host ?? "–") | total | \(member.sent) | \(member.received) | \(member.lost) | \(decimal(member.sent > 0 ? 100 * Double(member.lost) / Double(member.sent) : 0, 2)) |\n"
        }
        out += "\n## Each member's branch of the tree\n\n| member | links from the sender (entered / kernel dropped) | kernel dropped on the branch | member lost |\n|---|---|---:|---:|\n"
        for member in results.members {
            let links = member.branch.map { "\($0.from) -> \($0.to) (\($0.entered.map(String.init) ?? "–") / \($0.dropped.map(String.init) ?? "–"))" }.joined(separator: ", ")
            out += "| \(member.node) | \(links) | \(member.branchDropped) | \(member.lost) |\n"
        }
        return out
    }

    public var targets: [TargetCheck] {
        var checks: [TargetCheck] = []
        for member in results.members {
            checks.append(
                TargetCheck(
                    target: "a member accounts every packet of the stream, each once (received + lost = sent, no duplicate)", run: member.node,
                    measured: "\(member.received) + \(member.lost) of \(member.sent), \(member.duplicates) twice (the sender sent \(results.senderPackets))",
                    pass: member.received + member.lost == member.sent && member.sent == results.senderPackets && member.duplicates == 0, note: nil))
            checks.append(
                TargetCheck(
                    target: "a member's loss is exactly what the kernel dropped on its branch of the tree", run: member.node,
                    measured: "lost \(member.lost), the branch dropped \(member.branchDropped)"
                        + (member.branch.allSatisfy { $0.dropped == nil } ? " (only access links, which are never shaped)" : ""),
                    pass: member.branchDropped == member.lost, note: nil))
        }
        return checks
    }

    public func write(folder: String, plotsCopy: String?) throws -> [String] {
        var csv = "member,host,start_s,end_s,sent,received,lost,loss_pct\n"
        for member in results.members {
            for interval in member.intervals {
                csv += "\(member.node),\(member.host ?? ""),\(decimal(interval.startS)),\(decimal(interval.endS)),\(interval.sent),\(interval.received),\(interval.lost),\(decimal(interval.lossPct, 3))\n"
            }
        }
        var written: [String] = []
        for (name, text) in [("report.md", markdown + "\n" + targetsMarkdown), ("members.csv", csv)] {
            try Data(text.utf8).write(to: URL(fileURLWithPath: "\(folder)/\(name)"), options: .atomic)
            written.append("\(folder)/\(name)")
        }
        return written
    }
}
