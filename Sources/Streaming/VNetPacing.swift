import Packets

/// Pacing after the split: each VNet's packets go out no faster than its capacity estimate, so
/// that a large frame (a VBR I frame) does not overflow a short queue at a low rate. A token
/// bucket per VNet, filled at the rate, `burst` deep; a packet that finds too few tokens waits
/// in the VNet's queue, in order, at most `hold` (the playout deadline's room; then it goes
/// anyway). Copies are never held. A probe train (its packets are marked `train`) is held as a
/// whole: it waits, behind what waits before it, until the bucket is full (the VNet's queue has
/// drained as far as the rate tells), then leaves back to back, as it must to measure the
/// bottleneck, and its whole size is owed to the bucket, so that the stream after it waits
/// until the bottleneck has drained it. A train that met a standing queue overflowed it: three
/// 1229-byte packets are 256 ms at 115 kbit/s, more than a 100 ms queue holds beside one
/// packet of the stream. A VNet without a rate (none known yet, or dead) is not paced. No I/O,
/// no clock of its own.
public struct VNetPacing: Sendable {
    public var holdNanoseconds: UInt64
    public var burstSeconds: Double
    /// The smallest burst: one full-size packet. (Two back to back at 100 kbit/s already queue a
    /// tenth of a second, which the controller would read as saturation.)
    public var minimumBurstBits: Double

    struct Held: Sendable {
        var packet: OutgoingPacket
        var since: UInt64
    }

    private(set) var rates: [Double?]
    private var tokens: [Double]
    private var filled: [UInt64]
    private var queues: [[Held]]
    private var heads: [Int]
    /// Packets that waited, and the longest wait, nanoseconds.
    public private(set) var heldPackets = 0
    public private(set) var longestHold: UInt64 = 0
    /// Probe-train copies dropped because stream packets waiting behind the train took their
    /// place.
    public private(set) var droppedCopies = 0

    public init(vnets: Int, holdNanoseconds: UInt64, burstSeconds: Double = 0.02, minimumBurstBits: Double = 1514 * 8) {
        self.holdNanoseconds = holdNanoseconds
        self.burstSeconds = burstSeconds
        self.minimumBurstBits = minimumBurstBits
        rates = Array(repeating: nil, count: vnets)
        tokens = Array(repeating: 0, count: vnets)
        filled = Array(repeating: 0, count: vnets)
        queues = Array(repeating: [], count: vnets)
        heads = Array(repeating: 0, count: vnets)
    }

    /// Bits a packet takes on a VNet's link (IPv4 and the Ethernet header).
    static func bits(_ packet: OutgoingPacket) -> Double { Double(packet.ipv4Bytes + 14) * 8 }

    func depth(_ vnet: Int) -> Double { max(minimumBurstBits, (rates[vnet] ?? 0) * burstSeconds) }

    /// Packets waiting on `vnet`.
    public func waiting(_ vnet: Int) -> Int { queues[vnet].count - heads[vnet] }

    /// New rates, bits per second (nil: that VNet is not paced).
    public mutating func set(rates newRates: [Double?], now: UInt64) {
        for vnet in rates.indices {
            refill(vnet, now: now)
            let rate = vnet < newRates.count ? newRates[vnet].flatMap { $0 > 0 ? $0 : nil } : nil
            if rates[vnet] == nil, rate != nil { tokens[vnet] = max(minimumBurstBits, rate! * burstSeconds) }
            rates[vnet] = rate
            tokens[vnet] = min(tokens[vnet], depth(vnet))
        }
    }

    private mutating func refill(_ vnet: Int, now: UInt64) {
        defer { filled[vnet] = max(filled[vnet], now) }
        guard let rate = rates[vnet], now > filled[vnet] else { return }
        tokens[vnet] = min(depth(vnet), tokens[vnet] + rate * Double(now - filled[vnet]) / 1e9)
    }

    /// Whether a train may leave on `vnet` now: nothing waits before it and the bucket is full.
    func trainMayGo(_ vnet: Int) -> Bool { waiting(vnet) == 0 && tokens[vnet] >= depth(vnet) }

    /// Takes the packets of a frame (or bundle): what may go now is appended to `out` in order,
    /// the rest waits. `exempt[i]` marks packets that are never held (copies); train packets
    /// wait for a full bucket, together.
    public mutating func admit(_ packets: [OutgoingPacket], exempt: (OutgoingPacket) -> Bool, now: UInt64, into out: inout [OutgoingPacket]) {
        var trainGoes: [Int: Bool] = [:]
        for packet in packets {
            let vnet = packet.vnet
            refill(vnet, now: now)
            let bits = Self.bits(packet)
            if packet.train, rates[vnet] != nil {
                // The whole train goes now or waits; the first of its packets decides.
                let goes = trainGoes[vnet] ?? trainMayGo(vnet)
                trainGoes[vnet] = goes
                if goes {
                    tokens[vnet] -= bits
                    out.append(packet)
                } else {
                    queues[vnet].append(Held(packet: packet, since: now))
                    heldPackets += 1
                }
            } else if rates[vnet] == nil || exempt(packet) {
                if rates[vnet] != nil { tokens[vnet] = max(-depth(vnet), tokens[vnet] - bits) }
                out.append(packet)
            } else if waiting(vnet) == 0 && tokens[vnet] >= bits {
                tokens[vnet] -= bits
                out.append(packet)
            } else {
                queues[vnet].append(Held(packet: packet, since: now))
                heldPackets += 1
            }
        }
    }

    /// The waiting packets whose time has come (tokens, or `hold` passed), appended to `out`.
    public mutating func due(now: UInt64, into out: inout [OutgoingPacket]) {
        for vnet in queues.indices where waiting(vnet) > 0 {
            refill(vnet, now: now)
            while heads[vnet] < queues[vnet].count {
                let head = queues[vnet][heads[vnet]]
                let bits = Self.bits(head.packet)
                let overdue = now &- head.since >= holdNanoseconds
                if head.packet.train {
                    guard rates[vnet] == nil || tokens[vnet] >= depth(vnet) || overdue else { break }
                    releaseTrain(vnet, now: now, into: &out)
                    continue
                }
                guard rates[vnet] == nil || tokens[vnet] >= bits || overdue else { break }
                if rates[vnet] != nil { tokens[vnet] = max(-depth(vnet), tokens[vnet] - bits) }
                out.append(release(head, now: now))
                heads[vnet] += 1
            }
            compact(vnet)
        }
    }

    /// Releases the train at the head of `vnet`'s queue, whole and back to back, all of it owed
    /// to the bucket. Stream packets waiting right behind it go in place of its padding copies
    /// (a VNet on which packets wait is full, and a copy there displaces the stream: two
    /// 1229-byte copies a second are 17 % of 115 kbit/s); the copies they replace are dropped.
    /// Every packet released leaves with the same departure (send time plus held time, to the
    /// microsecond), which is what makes them one train at the receiver.
    private mutating func releaseTrain(_ vnet: Int, now: UInt64, into out: inout [OutgoingPacket]) {
        let queue = queues[vnet]
        var end = heads[vnet]
        while end < queue.count, queue[end].packet.train { end += 1 }
        let group = queue[heads[vnet]..<end]
        let padding = group.filter(\.packet.copy).count
        var followers: [Held] = []
        while followers.count < padding, end < queue.count, !queue[end].packet.train, !queue[end].packet.copy {
            followers.append(queue[end])
            end += 1
        }
        let released = group.filter { !$0.packet.copy } + followers + group.filter(\.packet.copy).dropFirst(followers.count)
        droppedCopies += followers.count
        // One departure for all: the latest any of them could claim.
        let departure = released.map { $0.packet.header.sendTimeNanoseconds &+ (now &- $0.since) }.max() ?? 0
        for held in released {
            longestHold = max(longestHold, now &- held.since)
            var packet = held.packet
            packet.train = true
            let wait = departure &- packet.header.sendTimeNanoseconds
            packet.header.heldMicroseconds = UInt32(min(UInt64(UInt32.max), (wait + 999) / 1000))
            if rates[vnet] != nil { tokens[vnet] -= Self.bits(packet) }
            out.append(packet)
        }
        heads[vnet] = end
    }

    /// A held packet as it leaves, with its wait in its header (`heldMicroseconds`), so that
    /// the receiver measures the network from when it left. Otherwise the wait reads as
    /// queueing in the network (the saturation test then takes the paced rate for the VNet's
    /// capacity, and cuts again), and a frame's fragments paced apart, which share a send time
    /// and run on in path sequence, read as a probe train at the pacing rate: after the
    /// shortfall's capacity came back, trains read 69 kbit/s on a 400 kbit/s VNet.
    private mutating func release(_ held: Held, now: UInt64) -> OutgoingPacket {
        let wait = now &- held.since
        longestHold = max(longestHold, wait)
        var packet = held.packet
        // Added to what it carries: a retransmission already counts from its frame's time.
        packet.header.heldMicroseconds = UInt32(min(UInt64(UInt32.max), UInt64(packet.header.heldMicroseconds) + wait / 1000))
        return packet
    }

    /// When the next waiting packet may go (nil: none waits).
    public func nextRelease() -> UInt64? {
        var next: UInt64?
        for vnet in queues.indices where waiting(vnet) > 0 {
            let head = queues[vnet][heads[vnet]]
            var at = head.since &+ holdNanoseconds
            if let rate = rates[vnet] {
                let missing = max(0, (head.packet.train ? depth(vnet) : Self.bits(head.packet)) - tokens[vnet])
                at = min(at, filled[vnet] &+ UInt64((missing / rate * 1e9).rounded(.up)))
            } else {
                at = 0
            }
            next = min(next ?? at, at)
        }
        return next
    }

    /// Takes every packet waiting on `vnet` away (its VNet died: the split places them again).
    public mutating func takeWaiting(_ vnet: Int) -> [OutgoingPacket] {
        let taken = queues[vnet][heads[vnet]...].map(\.packet)
        queues[vnet].removeAll(keepingCapacity: true)
        heads[vnet] = 0
        return taken
    }

    private mutating func compact(_ vnet: Int) {
        if heads[vnet] == queues[vnet].count {
            queues[vnet].removeAll(keepingCapacity: true)
            heads[vnet] = 0
        } else if heads[vnet] > 256 {
            queues[vnet].removeFirst(heads[vnet])
            heads[vnet] = 0
        }
    }
}
