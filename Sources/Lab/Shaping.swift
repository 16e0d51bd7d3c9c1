import Foundation
import Units

/// What a link does to packets in one direction.
public struct LinkConditions: Codable, Sendable, Equatable {
    /// nil: not rate-limited.
    public var rate: BitRate?
    public var delayMs: Double = 0
    public var jitterMs: Double = 0
    public var lossPct: Double = 0
    /// The queue, as time at the link's rate: the limit is set from it (never left at netem's
    /// 1000 packets, which at these rates is a delay line of many seconds).
    public var queueMs: Double = 100
    /// Blackholed: 100 % loss in both directions, link left up, so routing finds out by missed hellos.
    public var down = false
    /// Strict priority for packets whose DSCP is this TOS byte's (nil: none): they leave before
    /// anything else the link has queued.
    public var priorityTOS: UInt8?
    /// The link's queue is two bands under its rate, the first served first. Set once priority
    /// was on: tc cannot change a qdisc's kind in place, so ending priority leaves the bands and
    /// classifies nothing into the first.
    public var priorityBands = false

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rate = try c.decodeIfPresent(BitRate.self, forKey: .rate)
        delayMs = try c.decodeIfPresent(Double.self, forKey: .delayMs) ?? 0
        jitterMs = try c.decodeIfPresent(Double.self, forKey: .jitterMs) ?? 0
        lossPct = try c.decodeIfPresent(Double.self, forKey: .lossPct) ?? 0
        queueMs = try c.decodeIfPresent(Double.self, forKey: .queueMs) ?? 100
        down = try c.decodeIfPresent(Bool.self, forKey: .down) ?? false
        priorityTOS = try c.decodeIfPresent(UInt8.self, forKey: .priorityTOS)
        priorityBands = try c.decodeIfPresent(Bool.self, forKey: .priorityBands) ?? false
    }

    enum CodingKeys: String, CodingKey {
        case rate, down
        case priorityTOS = "priority_tos"
        case priorityBands = "priority_bands"
        case delayMs = "delay_ms"
        case jitterMs = "jitter_ms"
        case lossPct = "loss_pct"
        case queueMs = "queue_ms"
    }
}

/// How links are shaped: netem where the kernel has it; TBF (rate, queue) plus nftables (random
/// loss) where it does not. Always named in logs and results.
public enum Shaper: String, Codable, Sendable, CaseIterable {
    case netem
    case tbf

    /// What this shaper cannot do with these conditions, said rather than dropped silently.
    public func limitations(_ conditions: LinkConditions) -> [String] {
        guard self == .tbf else { return [] }
        var notes: [String] = []
        if conditions.delayMs > 0 { notes.append("delay \(conditions.delayMs) ms not emulated: this kernel has no sch_netem (run inside `vnetstream lab vm`)") }
        if conditions.jitterMs > 0 { notes.append("jitter \(conditions.jitterMs) ms not emulated: this kernel has no sch_netem") }
        return notes
    }
}

/// The tc and nft lines that put conditions on one interface's egress.
///
/// Every shaped interface has a root qdisc with handle 1: from lab up on, and changes are made
/// with `qdisc replace` of the same kind on that handle, i.e. in place: the device never sits on
/// a noop qdisc mid-run. Random loss with TBF, and blackholes with either shaper, are rules in
/// per-interface nftables chains that are flushed and refilled in one atomic `nft -f`.
public struct InterfaceShaping: Equatable, Sendable {
    public var interface: String
    public var shaper: Shaper
    public var conditions: LinkConditions
    /// The VNet's queue management (nil: the shaper's own queue, from `queueMs`).
    public var queue: Topology.QueuePolicy?
    /// Whether the kernel has `sch_red`; without it the queue policy is a tail-drop limit.
    public var red: Bool

    public init(interface: String, shaper: Shaper, conditions: LinkConditions, queue: Topology.QueuePolicy? = nil, red: Bool = false) {
        self.interface = interface
        self.shaper = shaper
        self.conditions = conditions
        self.queue = queue
        self.red = red
    }

    static let ethernetHeaderBytes = 14

    /// Packets of about this size are assumed when a queue time becomes a netem packet limit.
    static let typicalPacketBytes = 1000.0

    /// `tc -batch` lines (without the leading `tc`).
    public var tcLines: [String] {
        if let queue { return queueLines(queue) }
        if conditions.priorityBands { return priorityLines() }
        let c = conditions
        switch shaper {
        case .netem:
            // netem's limit counts packets in its delay line too.
            var limit = 1000
            if let rate = c.rate {
                let seconds = (c.queueMs + c.delayMs + c.jitterMs) / 1000
                limit = max(4, Int((rate.bitsPerSecond * seconds / 8 / Self.typicalPacketBytes).rounded(.up)))
            }
            var line = "qdisc replace dev \(interface) root handle 1: netem limit \(limit)"
            if c.delayMs > 0 || c.jitterMs > 0 {
                line += " delay \(number(c.delayMs))ms"
                if c.jitterMs > 0 { line += " \(number(c.jitterMs))ms" }
            }
            if c.lossPct > 0 { line += " loss random \(number(c.lossPct))%" }
            if let rate = c.rate { line += " rate \(Int(rate.bitsPerSecond.rounded()))bit" }
            return [line]
        case .tbf:
            // No rate: a bucket so large it never limits, so the qdisc's kind never changes.
            let bits = c.rate?.bitsPerSecond ?? 10e9
            let burst = Self.tbfBurstBytes(bits)
            let limit = Int(bits * c.queueMs / 1000 / 8) + burst
            return ["qdisc replace dev \(interface) root handle 1: tbf rate \(Int(bits.rounded()))bit burst \(burst) limit \(limit)"]
        }
    }

    /// The qdiscs that set the link's rate for a queue below them: a TBF (its `limit` in bytes)
    /// at the root, or under the netem shaper a netem root (delay, jitter, loss; handle 1:) with
    /// the TBF below it (handle 2:). Returns the lines and the TBF's handle.
    func rateLines(limit: Int) -> (lines: [String], handle: Int) {
        let c = conditions
        let bits = c.rate?.bitsPerSecond ?? 10e9
        var lines: [String] = []
        var parent = "root"
        var handle = 1
        if shaper == .netem {
            var line = "qdisc replace dev \(interface) root handle 1: netem limit 10000"
            if c.delayMs > 0 || c.jitterMs > 0 {
                line += " delay \(number(c.delayMs))ms"
                if c.jitterMs > 0 { line += " \(number(c.jitterMs))ms" }
            }
            if c.lossPct > 0 { line += " loss random \(number(c.lossPct))%" }
            lines.append(line)
            parent = "parent 1:1"
            handle = 2
        }
        lines.append("qdisc replace dev \(interface) \(parent) handle \(handle): tbf rate \(Int(bits.rounded()))bit burst \(Self.tbfBurstBytes(bits)) limit \(limit)")
        return (lines, handle)
    }

    /// With a queue policy the queue sits under a TBF that sets the rate: RED as its child
    /// (handle 2:), or TBF's own tail-drop queue cut at RED's max threshold. Under the netem
    /// shaper a netem root (delay, jitter, loss; handle 1:) comes first, and TBF and RED hang
    /// below it (handles 2: and 3:). The child's line always follows the TBF's (on this
    /// kernel a TBF change keeps its child; the lines do not depend on it), so the lines are
    /// the same whatever changed.
    func queueLines(_ queue: Topology.QueuePolicy) -> [String] {
        let c = conditions
        let bits = c.rate?.bitsPerSecond ?? 10e9
        // tc counts a packet's bytes on the link: its IPv4 bytes and the 14 B Ethernet header.
        let packet = Double(queue.packetBytes + Self.ethernetHeaderBytes)
        let tailDrop = Int((queue.redMaxPackets * packet).rounded())
        var (lines, handle) = rateLines(limit: tailDrop)
        if red {
            let minBytes = Int((queue.redMinPackets * packet).rounded())
            let maxBytes = Int((queue.redMaxPackets * packet).rounded())
            // tc-red(8): burst = (2 min + max) / (3 avpkt), in packets; it sets the averaging weight.
            let redBurst = max(1, Int(((2 * queue.redMinPackets + queue.redMaxPackets) / 3).rounded(.up)))
            lines.append(
                "qdisc replace dev \(interface) parent \(handle):1 handle \(handle + 1): red limit \(Int(Double(queue.limitPackets) * packet)) "
                    + "min \(minBytes) max \(maxBytes) avpkt \(Int(packet)) burst \(redBurst) probability \(number(queue.redProbability)) "
                    + "bandwidth \(Int(bits.rounded()))bit")
        }
        return lines
    }

    /// Strict priority (DESIGN.md section 9: no `prio` qdisc here, so HTB's class priority):
    /// the TBF that sets the rate has an HTB child with two classes that never limit, the first
    /// at priority 0 (a u32 filter puts the DSCP there) and the second, the default, at 1; each
    /// has its own byte FIFO as long as the link's queue. Under netem (delay, jitter, loss;
    /// handle 1:) the TBF and its bands hang below (handles 2: and 3:), since netem's own rate
    /// would queue before the bands. The filter has a fixed handle, so it is replaced in place.
    func priorityLines() -> [String] {
        let c = conditions
        let bits = c.rate?.bitsPerSecond ?? 10e9
        let burst = Self.tbfBurstBytes(bits)
        let limit = Int(bits * c.queueMs / 1000 / 8) + burst
        var (lines, handle) = rateLines(limit: limit)
        let bands = handle + 1
        lines.append("qdisc replace dev \(interface) parent \(handle):1 handle \(bands): htb default 2")
        for band in 1...2 {
            lines.append("class replace dev \(interface) parent \(bands): classid \(bands):\(band) htb rate 10gbit quantum 1514 prio \(band - 1)")
            lines.append("qdisc replace dev \(interface) parent \(bands):\(band) handle \(bands)\(band): bfifo limit \(limit)")
        }
        let tos = c.priorityTOS ?? 0
        lines.append(
            "filter replace dev \(interface) parent \(bands): protocol ip prio 1 handle 800::800 u32 match ip dsfield 0x\(String(tos, radix: 16)) 0xfc "
                + "flowid \(bands):\(c.priorityTOS == nil ? 2 : 1)")
        return lines
    }

    /// The bytes this link's queue holds as configured (the TBF limit that sets its rate, or
    /// under netem alone the queue time at its rate), for the fluid bound: nil when it is not
    /// rate-limited. netem's limit counts packets, sized for 1000 B ones; the bound takes the
    /// queue time it was sized from.
    public var queueBytes: Double? {
        guard let rate = conditions.rate else { return nil }
        let bits = rate.bitsPerSecond
        if let queue {
            let packet = Double(queue.packetBytes + Self.ethernetHeaderBytes)
            return (queue.redMaxPackets * packet).rounded()
        }
        switch shaper {
        case .netem: return bits * conditions.queueMs / 1000 / 8
        case .tbf: return Double(Int(bits * conditions.queueMs / 1000 / 8) + Self.tbfBurstBytes(bits))
        }
    }

    /// What queue a link with this policy gets here, for results.
    public static func queueSummary(_ queue: Topology.QueuePolicy?, red: Bool, shaper: Shaper) -> String {
        guard let queue else { return "\(shaper.rawValue) FIFO (queue_ms of the link's rate)" }
        if red { return queue.summary }
        return "tail drop at \(queue.redMaxPackets.plainText) packets of \(queue.packetBytes) B (RED's max threshold; this kernel has no sch_red)"
    }

    /// At least one MTU and at least rate/HZ (HZ 250 on Debian kernels), or TBF under-delivers.
    public static func tbfBurstBytes(_ bitsPerSecond: Double) -> Int {
        max(1600, Int((bitsPerSecond / 8 / 250).rounded(.up)))
    }

    /// nft lines that take this interface's random loss (TBF shaper) from `old` conditions to
    /// these: the interface's loss chain, flushed and refilled.
    public func nftLines(from old: LinkConditions?) -> [String] {
        var lines: [String] = []
        let loss = shaper == .tbf ? conditions.lossPct : 0
        let oldLoss = shaper == .tbf ? (old?.lossPct ?? 0) : 0
        if loss != oldLoss {
            lines.append("flush chain inet vnetlab loss_\(interface)")
            if loss > 0 {
                let threshold = Int((loss / 100 * 1_000_000).rounded())
                lines.append("add rule inet vnetlab loss_\(interface) numgen random mod 1000000 < \(threshold) counter jump lossdrop_\(interface)")
            }
        }
        return lines
    }

    /// Blackholing a link is membership of one end's interface in that node's `down` set:
    /// dropping what enters from the link and what leaves into it cuts both directions. An
    /// element is added or deleted; rules are never rewritten for it (a commit that removes
    /// rules waits for a kernel grace period, tens of milliseconds).
    public static func blackholeLine(interface: String, down: Bool) -> String {
        "\(down ? "add" : "delete") element inet vnetlab down { \"\(interface)\" }"
    }

    /// The table, set and hooks a router needs: a loss chain per transit interface (`shaped`),
    /// and the media counters (`MediaCounters`) on every interface (`counted`). Order in the
    /// chains: prerouting counts the media a blackholed link brings, drops all it brings, then
    /// counts the media that got in; postrouting counts the media routed out, then counts and
    /// drops what goes into a blackholed link, then applies the link's random loss (which
    /// counts the media it drops in `lossdrop_IF`).
    public static func nftSetup(shaped interfaces: [String], counted: [String]) -> [String] {
        var lines = [
            "table inet vnetlab {",
            "  set down { type ifname; }",
        ]
        for interface in counted {
            for name in MediaCounters.names(interface, shaped: interfaces.contains(interface)) { lines.append("  counter \(name) { }") }
        }
        lines += [
            "  chain pre { type filter hook prerouting priority -150; }",
            "  chain post { type filter hook postrouting priority 150; }",
        ]
        for interface in interfaces {
            lines.append("  chain loss_\(interface) { }")
            lines.append(#"  chain lossdrop_\#(interface) { \#(MediaCounters.match) counter name "\#(MediaCounters.lossName(interface))"; drop; }"#)
        }
        lines.append("}")
        func rule(_ chain: String, _ text: String) { lines.append("add rule inet vnetlab \(chain) \(text)") }
        let media = MediaCounters.match
        for interface in counted {
            rule("pre", #"iifname "\#(interface)" iifname @down \#(media) counter name "\#(MediaCounters.blackholeInName(interface))""#)
        }
        rule("pre", "iifname @down counter drop")
        for interface in counted {
            rule("pre", #"iifname "\#(interface)" \#(media) counter name "\#(MediaCounters.inName(interface))""#)
            rule("post", #"oifname "\#(interface)" \#(media) counter name "\#(MediaCounters.outName(interface))""#)
            rule("post", #"oifname "\#(interface)" oifname @down \#(media) counter name "\#(MediaCounters.blackholeOutName(interface))""#)
        }
        rule("post", "oifname @down counter drop")
        for interface in interfaces { rule("post", #"oifname "\#(interface)" jump loss_\#(interface)"#) }
        return lines
    }
}

func number(_ value: Double) -> String { value.plainText }
