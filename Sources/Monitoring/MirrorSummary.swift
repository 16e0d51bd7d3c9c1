import Foundation

/// What one monitoring node saw in one interval, as it sends it to the collector (JSON, one
/// datagram per part). A large interval (many gaps in the sequence numbers) goes in several
/// parts, each self-contained; `flows` and the drop counts ride part 0.
public struct MirrorSummary: Codable, Sendable, Equatable {
    public var node: String
    public var router: String
    public var vnet: String
    /// 0-based, from the node's start; the node's last summary (on stop) is `final`.
    public var interval: Int
    /// CLOCK_MONOTONIC seconds.
    public var startS: Double
    public var endS: Double
    public var part: Int
    public var parts: Int
    /// Per flow and router port: packets and bytes (part 0 only).
    public var flows: [FlowCount]
    /// The media packets seen, per router port, hook, stream and path: their path sequence
    /// numbers as closed ranges.
    public var seen: [SeenRanges]
    /// Copies taken off the mirror port in the interval, and those of them that were not IPv4
    /// or came through no port this node knows.
    public var copies: Int
    public var unattributed: Int
    /// Copies the kernel dropped before libpcap read them, since the node started: a Moni that
    /// falls behind loses its own copies, never the router's packets.
    public var droppedByKernel: Int
    public var final: Bool

    enum CodingKeys: String, CodingKey {
        case node, router, vnet, interval, part, parts, flows, seen, copies, unattributed, final
        case startS = "start_s"
        case endS = "end_s"
        case droppedByKernel = "dropped_by_kernel"
    }

    public init(
        node: String, router: String, vnet: String, interval: Int, startS: Double, endS: Double, part: Int = 0, parts: Int = 1,
        flows: [FlowCount] = [], seen: [SeenRanges] = [], copies: Int = 0, unattributed: Int = 0, droppedByKernel: Int = 0, final: Bool = false
    ) {
        self.node = node
        self.router = router
        self.vnet = vnet
        self.interval = interval
        self.startS = startS
        self.endS = endS
        self.part = part
        self.parts = parts
        self.flows = flows
        self.seen = seen
        self.copies = copies
        self.unattributed = unattributed
        self.droppedByKernel = droppedByKernel
        self.final = final
    }

    /// The parts to send: at most `maximumRanges` ranges in each (a part stays well inside a datagram).
    public func split(maximumRanges: Int = 1500) -> [MirrorSummary] {
        var parts: [[SeenRanges]] = [[]]
        var inPart = 0
        for entry in seen {
            var rest = entry.ranges[...]
            while !rest.isEmpty {
                if inPart >= maximumRanges {
                    parts.append([])
                    inPart = 0
                }
                let take = min(rest.count, maximumRanges - inPart)
                var piece = entry
                piece.ranges = Array(rest.prefix(take))
                parts[parts.count - 1].append(piece)
                rest = rest.dropFirst(take)
                inPart += take
            }
        }
        return parts.enumerated().map { index, seen in
            var part = self
            part.part = index
            part.parts = parts.count
            part.seen = seen
            if index > 0 { part.flows = [] }
            return part
        }
    }
}

/// One flow through one port of the watched router, in one interval.
public struct FlowCount: Codable, Sendable, Equatable, Hashable {
    /// The router's port and whether the copy was taken as it came in or went out.
    public var port: String
    public var hook: String
    /// `ADDRESS:PORT` (ports 0 for protocols without them).
    public var source: String
    public var destination: String
    public var proto: UInt8
    public var dscp: UInt8
    public var packets: Int
    /// IPv4 bytes.
    public var bytes: Int
}

/// The path sequence numbers of one stream's packets on one path, seen at one port and hook.
public struct SeenRanges: Codable, Sendable, Equatable {
    public var port: String
    public var hook: String
    public var stream: UInt32
    /// 0-based, as on the wire.
    public var path: UInt8
    /// Closed ranges `[first, last]`, ascending, disjoint.
    public var ranges: [[UInt32]]

    public init(port: String, hook: String, stream: UInt32, path: UInt8, ranges: [[UInt32]]) {
        self.port = port
        self.hook = hook
        self.stream = stream
        self.path = path
        self.ranges = ranges
    }

    /// The closed ranges covering `numbers` (any order, repeats allowed).
    public static func ranges(of numbers: [UInt32]) -> [[UInt32]] {
        var ranges: [[UInt32]] = []
        for n in numbers.sorted() {
            // Sorted: n is at or above the last range's end.
            if let last = ranges.last?[1], n - last <= 1 {
                ranges[ranges.count - 1][1] = n
            } else {
                ranges.append([n, n])
            }
        }
        return ranges
    }

    /// Every number in the ranges.
    public var numbers: [UInt32] { ranges.flatMap { $0[0] <= $0[1] ? Array($0[0]...$0[1]) : [] } }
}
