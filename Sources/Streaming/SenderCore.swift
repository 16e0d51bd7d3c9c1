import Control
import Packets
import Recovery
import Shedding
import Splitting

/// The sender with no I/O and no clock of its own: frames in, packets with a VNet out; what
/// was written and what reports came back in, the controller's changes out. The stages run in
/// order: packetizer and marker, split and controller, the extra stages, then the driver's
/// device writer, which tells the core what the tun took.
public struct SenderCore {
    public let streamID: UInt32
    public let mark: TrafficMark
    let packetizer: Packetizer
    private(set) var controller: any SplitController
    public private(set) var splitter: TieredSplitter
    /// The controller's weights, tiers and budgets the splitter last took.
    private var applied: (weights: [Double], tiers: [[Int]]?, budgets: [Double]?) = ([], nil, nil)
    public var stages: [any SenderStage]
    /// Source adaptation: asked before each frame whether it goes (nil: every frame goes).
    public var shedder: FrameShedder?
    /// Whether the trace sends B frames after both their references (the header says so, for
    /// the receiver's count of decodable frames).
    public var referencesFirst = false
    /// Frames shed since the last frame that went out.
    private var shedRun = 0
    /// Pacing onto each VNet at its capacity estimate (when the controller gives rates).
    public private(set) var pacing: VNetPacing
    private var pacingRates: [Double?]?
    /// Packets taken off a VNet that died while they waited, placed again by the split.
    private var moved: [OutgoingPacket] = []
    /// Retransmission (nil: `--recovery none`): what NACKs ask for, resent on the VNet it picks.
    public private(set) var retransmitter: Retransmitter?
    /// FEC (nil: no parity): the parity of what was written, on the VNet it picks.
    public private(set) var parityEncoder: ParityEncoder?
    /// Resends and parity waiting for `due` (they go through their VNet's pacing like any packet).
    private var resends: [OutgoingPacket] = []
    /// The latest time the driver gave.
    private var lastNow: UInt64 = 0
    /// The next packet's stream sequence (also: packets of the stream so far).
    public private(set) var streamSequence: UInt32 = 0
    public private(set) var vnets: [VNetTally]

    /// What the core keeps per VNet: the next path sequence and what went out.
    public struct VNetTally: Sendable, Equatable {
        public var pathSequence: UInt32 = 0
        public var packets = 0
        /// UDP payload bytes.
        public var bytes = 0
        public var copies = 0
        public var copyBytes = 0
        public var localDrops = 0
        public var reportsReceived = 0
        /// Retransmissions written on this VNet (also in `packets` and `bytes`).
        public var resent = 0
        public var resentBytes = 0
        /// Parity packets written on this VNet (also in `packets` and `bytes`).
        public var parity = 0
        public var parityBytes = 0
        /// Since the driver last took them (`takeInterval`).
        public var intervalPackets = 0
        public var intervalBytes = 0
        public var intervalReports = 0
    }

    /// `ceilings`: each VNet's reservation, bits per second (nil: none), which caps the
    /// adaptive controller's capacity estimate.
    public init(
        streamID: UInt32, mark: TrafficMark, mtu: Int, vnets: Int, mode: SendMode, adaptive: AdaptiveController.Parameters,
        stages: [any SenderStage] = [], ceilings: [Double?] = [], recovery: RecoveryMode = .none, latencySeconds: Double = 0.2,
        fec: FECShape = .default
    ) {
        self.streamID = streamID
        self.mark = mark
        // A retransmission carries its origin after the header, a parity its fixed part before
        // the longest payload it covers: room for them in every packet.
        packetizer = Packetizer(mtu: mtu, reserve: Self.reserve(for: recovery))
        retransmitter = recovery.resends ? Retransmitter(mode: recovery, vnets: vnets, latencySeconds: latencySeconds) : nil
        parityEncoder = recovery.parity ? ParityEncoder(shape: fec, streamID: streamID, vnets: vnets, latencySeconds: latencySeconds) : nil
        controller = mode.controller(vnets: vnets, adaptive: adaptive, ceilings: ceilings)
        splitter = TieredSplitter(weights: mode.initialWeights(vnets: vnets))
        self.stages = stages
        self.vnets = Array(repeating: VNetTally(), count: vnets)
        pacing = VNetPacing(vnets: vnets, holdNanoseconds: controller.pacingHoldNanoseconds, burstSeconds: adaptive.pacingBurstMs / 1000)
        followWeights()
    }

    /// Bytes each packet leaves free for what recovery adds to it.
    public static func reserve(for recovery: RecoveryMode) -> Int {
        max(recovery.resends ? MediaHeader.originSize : 0, recovery.parity ? Parity.fixedSize - MediaHeader.size : 0)
    }

    /// The packets of one frame, split (with a probe train or copies when the controller asks
    /// for them), then through the stages and the pacing; those that may go now are appended to
    /// `out`, the others wait for `due`.
    public mutating func packets(
        ofFrame frameBytes: Int, type: UInt8, number: UInt32, sendTime: UInt64, now: UInt64, into out: inout [OutgoingPacket]
    ) {
        if shedder != nil, !shedder!.decide(Int(number), deliverableBitsPerSecond: controller.deliverableRate) {
            shedRun += 1
            return
        }
        let fragments = packetizer.fragments(ofFrame: frameBytes)
        guard !fragments.isEmpty else { return }
        lastNow = max(lastNow, now)
        let start = out.count
        let plan = controller.plan(
            fragmentBytes: fragments.map { $0 + MediaHeader.size + IPv4UDP.headerSize }, keyFrame: type == UInt8(ascii: "I"), now: now)
        var header = MediaHeader(
            streamID: streamID, streamSequence: streamSequence, pathSequence: 0, frameNumber: number, sendTimeNanoseconds: sendTime,
            fragmentIndex: 0, fragmentCount: UInt16(fragments.count), pathID: 0, frameType: type, mark: mark.tos,
            shedBefore: UInt8(min(shedRun, Int(MediaHeader.maximumShedRun))), referencesFirst: referencesFirst)
        header.resends = retransmitter != nil
        shedRun = 0
        let firstSequence = streamSequence
        var carried = Set<Int>()
        for (index, size) in fragments.enumerated() {
            header.streamSequence = streamSequence
            header.fragmentIndex = UInt16(index)
            let payload = MediaHeader.size + size
            if plan.everywhere {
                for vnet in vnets.indices { out.append(OutgoingPacket(header: header, payloadBytes: payload, vnet: vnet, copy: false)) }
            } else if let train = plan.train, !plan.trainOfCopies, index < plan.trainPackets {
                // The train: the frame's first packets back to back on the probed VNet (the
                // rest of a large frame is split as usual, so a probe never moves a whole
                // I frame onto one VNet).
                splitter.take(train, bytes: IPv4UDP.headerSize + payload)
                out.append(OutgoingPacket(header: header, payloadBytes: payload, vnet: train, copy: false, train: true))
                carried.insert(train)
            } else {
                let vnet = splitter.next(bytes: IPv4UDP.headerSize + payload, now: now)
                // A later fragment the split puts on the probed VNet rides the train (it leaves
                // with it, back to back, and lengthens it), so that the train stays whole.
                out.append(OutgoingPacket(header: header, payloadBytes: payload, vnet: vnet, copy: false, train: plan.train == vnet && !plan.trainOfCopies))
                carried.insert(vnet)
            }
            streamSequence &+= 1
        }
        // Probe-train padding: copies of the frame's largest packet until the train is long
        // enough (a train of copies only: all of it).
        if let train = plan.train, plan.trainOfCopies || plan.trainPackets > fragments.count {
            let largest = fragments.indices.max { fragments[$0] < fragments[$1] }!
            header.streamSequence = firstSequence &+ UInt32(largest)
            header.fragmentIndex = UInt16(largest)
            for _ in (plan.trainOfCopies ? 0 : fragments.count)..<plan.trainPackets {
                out.append(OutgoingPacket(header: header, payloadBytes: MediaHeader.size + fragments[largest], vnet: train, copy: true, train: true))
            }
        }
        // Probes of dead VNets: a copy of the frame's first packet each.
        header.streamSequence = firstSequence
        header.fragmentIndex = 0
        for vnet in plan.copiesOn where !carried.contains(vnet) && vnets.indices.contains(vnet) {
            out.append(OutgoingPacket(header: header, payloadBytes: MediaHeader.size + fragments[0], vnet: vnet, copy: true))
        }
        if parityEncoder != nil { parityEncoder!.offered(ipv4Bytes: out[start...].reduce(0) { $0 + $1.ipv4Bytes }, now: now) }
        runStages(&out, from: start, now: now)
    }

    /// Each frame's size on the wire: the IPv4 bytes of the packets the packetizer cuts it into.
    public func wireBytes(ofFrame frameBytes: Int) -> Int {
        packetizer.fragments(ofFrame: frameBytes).reduce(0) { $0 + $1 + MediaHeader.size + IPv4UDP.headerSize }
    }

    /// `count` packets of `payloadBytes` back to back (unpaced), each its own frame; on one
    /// VNet chosen for the whole bundle when `oneVNet` (a segmented write), else split one by one.
    public mutating func bundle(count: Int, payloadBytes: Int, oneVNet: Bool, sendTime: UInt64, now: UInt64, into out: inout [OutgoingPacket]) {
        let start = out.count
        var header = MediaHeader(
            streamID: streamID, streamSequence: 0, pathSequence: 0, frameNumber: 0, sendTimeNanoseconds: sendTime, fragmentIndex: 0,
            fragmentCount: 1, pathID: 0, frameType: UInt8(ascii: "-"), mark: mark.tos)
        let wire = IPv4UDP.headerSize + payloadBytes
        let shared = oneVNet ? splitter.next(bytes: wire * count, now: now) : nil
        for _ in 0..<count {
            header.streamSequence = streamSequence
            header.frameNumber = streamSequence
            out.append(OutgoingPacket(header: header, payloadBytes: payloadBytes, vnet: shared ?? splitter.next(bytes: wire, now: now), copy: false))
            streamSequence &+= 1
        }
        // Back to back as the tuns take them: the data path's throughput, never paced.
        runStages(&out, from: start, now: now, paced: false)
    }

    private mutating func runStages(_ out: inout [OutgoingPacket], from start: Int, now: UInt64, paced: Bool = true) {
        if !stages.isEmpty {
            var batch = Array(out[start...])
            for index in stages.indices { stages[index].process(&batch, now: now) }
            out.replaceSubrange(start..., with: batch)
        }
        guard paced else { return }
        let batch = Array(out[start...])
        out.removeSubrange(start...)
        pacing.admit(batch, exempt: { $0.copy }, now: now, into: &out)
    }

    /// Packets whose wait is over (the pacing's, or moved off a VNet that died), appended to `out`.
    public mutating func due(now: UInt64, into out: inout [OutgoingPacket]) {
        lastNow = max(lastNow, now)
        if let expiry = parityEncoder?.nextExpiry, expiry <= now {
            parityEncoder!.deliverable = controller.deliverableRate
            queue(parity: parityEncoder!.expire(outlook: controller.outlook(now: now), now: now))
        }
        if !resends.isEmpty {
            let again = resends
            resends.removeAll()
            pacing.admit(again, exempt: { $0.copy }, now: now, into: &out)
        }
        if !moved.isEmpty {
            let again = moved
            moved.removeAll()
            for var packet in again {
                packet.vnet = splitter.next(bytes: packet.ipv4Bytes, now: now)
                pacing.admit([packet], exempt: { $0.copy }, now: now, into: &out)
            }
        }
        pacing.due(now: now, into: &out)
    }

    /// When `due` has something next (nil: nothing waits).
    public var nextDue: UInt64? {
        guard moved.isEmpty && resends.isEmpty else { return 0 }
        switch (pacing.nextRelease(), parityEncoder?.nextExpiry) {
        case let (release?, expiry?): return min(release, expiry)
        case let (release, expiry): return release ?? expiry
        }
    }

    /// The stream's last frame went: the parity of every row and column still open waits for
    /// `due`, so that the stream's tail is protected too.
    public mutating func finishParity(now: UInt64) {
        guard parityEncoder != nil else { return }
        parityEncoder!.deliverable = controller.deliverableRate
        queue(parity: parityEncoder!.finish(outlook: controller.outlook(now: now), now: now))
    }

    /// The packet as it goes on the wire: its path id and the VNet's next path sequence.
    public mutating func stamp(_ packet: OutgoingPacket) -> MediaHeader {
        var header = packet.header
        header.copy = packet.copy
        header.pathID = UInt8(packet.vnet)
        header.pathSequence = vnets[packet.vnet].pathSequence
        vnets[packet.vnet].pathSequence &+= 1
        return header
    }

    /// The device writer wrote `header` (stamped) into its VNet's tun, or the tun did not take it
    /// (`parity`: a parity packet, of which `header` is its path's view).
    public mutating func written(_ header: MediaHeader, payloadBytes: Int, copy: Bool, taken: Bool, parity: Bool = false, now: UInt64) {
        lastNow = max(lastNow, now)
        let vnet = Int(header.pathID)
        if taken {
            vnets[vnet].packets += 1
            vnets[vnet].bytes += payloadBytes
            vnets[vnet].intervalPackets += 1
            vnets[vnet].intervalBytes += payloadBytes
            if copy {
                vnets[vnet].copies += 1
                vnets[vnet].copyBytes += payloadBytes
            }
            // A parity is not kept: what it protects is, and a lost parity is not worth resending.
            retransmitter?.written(header, payloadBytes: payloadBytes, copy: copy || parity, now: now)
            if header.origin != nil {
                vnets[vnet].resent += 1
                vnets[vnet].resentBytes += payloadBytes
            }
            if parity {
                vnets[vnet].parity += 1
                vnets[vnet].parityBytes += payloadBytes
            }
        } else {
            vnets[vnet].localDrops += 1
        }
        // Every original is protected, taken or not: the receiver can rebuild a local drop too.
        if parityEncoder != nil, !parity, !copy, header.origin == nil {
            parityEncoder!.deliverable = controller.deliverableRate
            let wait = UInt64(header.heldMicroseconds) * 1000
            queue(
                parity: parityEncoder!.written(
                    header, payloadBytes: payloadBytes, frameTime: now > wait ? now - wait : 0, outlook: controller.outlook(now: now), now: now))
        }
        controller.sent(vnet: vnet, pathSequence: header.pathSequence, bytes: IPv4UDP.headerSize + payloadBytes, now: now)
    }

    /// A report for this stream came back over `vnet`.
    public mutating func received(_ report: ReceiverReport, over vnet: Int, now: UInt64) {
        lastNow = max(lastNow, now)
        vnets[vnet].reportsReceived += 1
        vnets[vnet].intervalReports += 1
        controller.received(report, over: vnet, now: now)
        retransmitter?.received(report)
        for index in stages.indices { stages[index].received(report, over: vnet, now: now) }
    }

    /// The receiver's NACK: what it asks for and can still arrive in time waits for `due`, on
    /// the VNet the retransmitter picks, charged to that VNet's share.
    public mutating func received(_ nack: Nack, now: UInt64) {
        lastNow = max(lastNow, now)
        guard retransmitter != nil else { return }
        queue(retransmitter!.received(nack, outlook: controller.outlook(now: now), now: now))
    }

    private mutating func queue(parity ready: [ParityEncoder.Ready]) {
        for item in ready {
            var header = item.parity.pathHeader
            header.mark = mark.tos
            splitter.take(item.vnet, bytes: IPv4UDP.headerSize + item.parity.payloadBytes)
            parityEncoder?.offered(ipv4Bytes: IPv4UDP.headerSize + item.parity.payloadBytes, now: lastNow)
            resends.append(OutgoingPacket(header: header, payloadBytes: item.parity.payloadBytes, vnet: item.vnet, copy: false, parity: item.parity))
        }
    }

    private mutating func queue(_ answers: [Retransmitter.Resend]) {
        for answer in answers {
            splitter.take(answer.vnet, bytes: IPv4UDP.headerSize + answer.payloadBytes)
            parityEncoder?.offered(ipv4Bytes: IPv4UDP.headerSize + answer.payloadBytes, now: lastNow)
            resends.append(OutgoingPacket(header: answer.header, payloadBytes: answer.payloadBytes, vnet: answer.vnet, copy: false))
        }
    }

    /// What the controller changed since the last call; the split follows it. A VNet that has
    /// just died has its packets no report covered resent elsewhere (with recovery on).
    public mutating func takeEvents() -> [ControlEvent] {
        let events = controller.takeEvents()
        followWeights()
        if retransmitter != nil { queue(retransmitter!.follow(controller.outlook(now: lastNow), now: lastNow)) }
        return events
    }

    /// Follows the controller's weights, tiers, budgets and pacing rates, when they changed. The
    /// packets waiting on a VNet that lost its rate (it died) are placed again.
    public mutating func followWeights() {
        let rates = controller.pacingRates
        if rates != pacingRates {
            pacing.set(rates: rates ?? Array(repeating: nil, count: vnets.count), now: lastNow)
            for vnet in vnets.indices where pacing.waiting(vnet) > 0 && (rates?[vnet] ?? nil) == nil && controller.weights[vnet] == 0 {
                moved += pacing.takeWaiting(vnet)
            }
            pacingRates = rates
        }
        let now = (controller.weights, controller.tiers, controller.budgets)
        guard now.0 != applied.weights || now.1 != applied.tiers || now.2 != applied.budgets else { return }
        splitter.set(weights: now.0, tiers: now.1, budgets: now.2)
        applied = now
    }

    /// Each VNet's tallies since the last call, which start again from zero.
    public mutating func takeInterval() -> [VNetTally] {
        let taken = vnets
        for index in vnets.indices {
            vnets[index].intervalPackets = 0
            vnets[index].intervalBytes = 0
            vnets[index].intervalReports = 0
        }
        return taken
    }

    /// The end-of-stream message: packets of the stream and of every path.
    public func end(frames: Int, lastSendTime: UInt64) -> StreamEnd {
        StreamEnd(
            streamID: streamID, streamPackets: streamSequence, frameCount: UInt32(frames), lastSendTimeNanoseconds: lastSendTime,
            paths: vnets.enumerated().map { StreamEnd.Path(pathID: UInt8($0.offset), packetsSent: $0.element.pathSequence) })
    }
}
