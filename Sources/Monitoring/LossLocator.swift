import Foundation

/// Where along its path each lost packet was lost, from what the monitoring nodes saw: a
/// packet seen arriving at hop k and not at hop k+1 was lost on the link between them; one seen
/// at the VNet's egress and not by the receiver was lost on the egress link; one the sender
/// sent and no hop saw, on the link into the ingress. Copies taken as routers received
/// packets (the `in` hook) place them. Pure: summaries, the lab's links and the end points'
/// records in, a table out.
public enum LossLocator {
    /// The lab's links as the locator needs them.
    public struct HopMap: Sendable {
        /// A link direction: what a packet crosses to arrive at a router's port.
        public struct Arrival: Sendable, Hashable {
            /// The link's name (`in1:p11-p11:in1`).
            public var link: String
            /// The end it leaves from and the end it arrives at (`node:interface`).
            public var from: String
            public var to: String
            public var fromNode: String { String(from.split(separator: ":").first ?? "") }
            public var toNode: String { String(to.split(separator: ":").first ?? "") }

            public init(link: String, from: String, to: String) {
                self.link = link
                self.from = from
                self.to = to
            }
        }

        /// Every watched router port, `router:port`, and the link direction into it.
        public var arrivals: [String: Arrival]
        /// Per path (0-based): the link from the sender into the VNet's ingress, and the link
        /// from its egress to the receiver.
        public var ingress: [UInt8: Arrival]
        public var egress: [UInt8: Arrival]

        public init(arrivals: [String: Arrival], ingress: [UInt8: Arrival], egress: [UInt8: Arrival]) {
            self.arrivals = arrivals
            self.ingress = ingress
            self.egress = egress
        }
    }

    /// Per link direction: the packets that entered it and those lost on it.
    public struct LinkLoss: Codable, Sendable, Equatable {
        public var link: String
        public var from: String
        public var to: String
        /// 1-based, as the receiver numbers paths.
        public var path: Int
        public var packets: Int
        public var lost: Int
    }

    /// Per path: what was sent and received, and how much of the difference was placed.
    public struct PathLoss: Codable, Sendable, Equatable {
        public var path: Int
        public var sent: Int
        public var received: Int
        /// Lost packets placed on a link (the sum of the path's links' `lost`).
        public var located: Int
        /// Packets whose hops do not chain (a hop that did not see one it must have carried:
        /// its copy was dropped, or a router on the way is not watched).
        public var unchained: Int

        public init(path: Int, sent: Int, received: Int, located: Int, unchained: Int) {
            self.path = path
            self.sent = sent
            self.received = received
            self.located = located
            self.unchained = unchained
        }
    }

    public struct Result: Codable, Sendable, Equatable {
        public var links: [LinkLoss]
        public var paths: [PathLoss]
    }

    /// One path's packets: `sent` (nil: what any hop or the receiver saw), `received`, and per
    /// path sequence number the watched ports (`router:port`) that saw it arrive.
    public static func locate(
        path: UInt8, sent: [UInt32]?, received: Set<UInt32>, seenAt: [UInt32: [String]], map: HopMap
    ) -> ([LinkLoss], PathLoss) {
        let universe = sent.map { Set($0) } ?? Set(seenAt.keys).union(received)
        var packets: [Arrival: Int] = [:]
        var lost: [Arrival: Int] = [:]
        typealias Arrival = HopMap.Arrival
        // Which link packets took out of each router, by sequence number: where one that
        // vanished after a router most likely went.
        var outOf: [String: [(UInt32, Arrival)]] = [:]
        var walks: [UInt32: (last: String, ended: Bool, broken: Bool)] = [:]
        var unchained = 0
        let sender = map.ingress[path]?.fromNode ?? ""
        for seq in universe.sorted() {
            var current = sender
            var remaining = (seenAt[seq] ?? []).compactMap { map.arrivals[$0] }
            var broken = false
            while !remaining.isEmpty {
                if let index = remaining.firstIndex(where: { $0.fromNode == current }) {
                    let arrival = remaining.remove(at: index)
                    packets[arrival, default: 0] += 1
                    outOf[current, default: []].append((seq, arrival))
                    current = arrival.toNode
                } else {
                    // A hop saw it that the one before did not: go on from there.
                    broken = true
                    current = remaining.removeFirst().toNode
                }
            }
            walks[seq] = (current, received.contains(seq), broken)
        }
        var located = 0
        for (seq, walk) in walks.sorted(by: { $0.key < $1.key }) {
            if walk.broken { unchained += 1 }
            if let egress = map.egress[path], walk.last == egress.fromNode {
                packets[egress, default: 0] += 1
                if !walk.ended {
                    lost[egress, default: 0] += 1
                    located += 1
                }
            } else if walk.ended {
                // Delivered, but its hops do not reach the egress: a copy missed, or a router not watched.
                if !walk.broken { unchained += 1 }
            } else {
                let taken = walk.last == sender ? map.ingress[path] : nearest(seq, in: outOf[walk.last] ?? [])
                let link = taken ?? Arrival(link: "after \(walk.last)", from: walk.last, to: "?")
                packets[link, default: 0] += 1
                lost[link, default: 0] += 1
                located += 1
            }
        }
        let links = packets.keys.map { arrival in
            LinkLoss(link: arrival.link, from: arrival.from, to: arrival.to, path: Int(path) + 1, packets: packets[arrival]!, lost: lost[arrival] ?? 0)
        }.sorted { ($0.path, $0.from, $0.to) < ($1.path, $1.from, $1.to) }
        let pathLoss = PathLoss(
            path: Int(path) + 1, sent: universe.count, received: universe.intersection(received).count, located: located, unchained: unchained)
        return (links, pathLoss)
    }

    /// The link the packet numbered closest to `seq` took.
    static func nearest(_ seq: UInt32, in taken: [(UInt32, HopMap.Arrival)]) -> HopMap.Arrival? {
        guard !taken.isEmpty else { return nil }
        var low = 0
        var high = taken.count
        while low < high {
            let mid = (low + high) / 2
            if taken[mid].0 < seq { low = mid + 1 } else { high = mid }
        }
        let candidates = [low - 1, low].filter { taken.indices.contains($0) }
        return candidates.min { abs(Int64(taken[$0].0) - Int64(seq)) < abs(Int64(taken[$1].0) - Int64(seq)) }.map { taken[$0].1 }
    }
}

extension LossLocator {
    /// Every path the summaries saw, located: `sent` and `received` by path (0-based; `sent` nil:
    /// what was seen). Only copies taken as routers received packets (`in`) place them.
    public static func locate(summaries: [MirrorSummary], sent: [UInt8: [UInt32]]?, received: [UInt8: Set<UInt32>], map: HopMap) -> Result {
        var seen: [UInt8: [UInt32: [String]]] = [:]
        for summary in summaries {
            for entry in summary.seen where entry.hook == "in" {
                let port = "\(summary.router):\(entry.port)"
                for number in entry.numbers { seen[entry.path, default: [:]][number, default: []].append(port) }
            }
        }
        var result = Result(links: [], paths: [])
        for path in seen.keys.sorted() {
            let (links, pathLoss) = locate(path: path, sent: sent?[path], received: received[path] ?? [], seenAt: seen[path]!, map: map)
            result.links += links
            result.paths.append(pathLoss)
        }
        return result
    }
}
