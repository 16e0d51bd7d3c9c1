import Control
import Devices
import Foundation
import Pacing
import Packets
import Recovery
import RunRecords
import Shedding
import Splitting
import Traces

/// Streams a trace in real time (or packets back to back, unpaced) into one tun per VNet:
/// the I/O driver around `SenderCore`. It keeps the clock, waits for each frame's time, writes
/// what the core hands it into the tuns, reads reports from them, and logs.
public final class Sender {
    public let configuration: SenderConfiguration
    let tuns: [TunDevice]
    private let mtu: Int
    var core: SenderCore
    private var outgoing: [OutgoingPacket] = []
    var buffer: [UInt8]
    var segmentBuffer: [UInt8] = []
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    var identification: UInt16 = 0
    private var controlEvents = 0
    private var ignored: [String: Int] = [:]
    private var lastReport: ReceiverReport?
    var start: UInt64 = 0
    private var nextLog: UInt64 = 0

    /// Attaches to every tun; fails at once (with what to do) when one cannot be had.
    public init(_ configuration: SenderConfiguration) throws {
        guard !configuration.routes.isEmpty, configuration.routes.count <= ReceiverReport.maximumPaths else {
            throw SenderError("give between 1 and \(ReceiverReport.maximumPaths) VNets")
        }
        if case .fixed(let ratio) = configuration.mode, ratio.weights.count != configuration.routes.count {
            throw SenderError("the split \(ratio) has \(ratio.weights.count) weights for \(configuration.routes.count) VNets")
        }
        guard configuration.latency > 0, configuration.latency <= 60 else {
            throw SenderError("the playout latency must be above 0 and at most 60 s (it was \(configuration.latency) s)")
        }
        self.configuration = configuration
        tuns = try configuration.routes.map { try TunDevice.attach($0.tun, virtioHeader: configuration.segmentationOffload) }
        let mtu = try configuration.mtu ?? tuns.map { try $0.mtu() }.min()!
        let least = IPv4UDP.headerSize + MediaHeader.size + SenderCore.reserve(for: configuration.recovery) + 1
        guard mtu >= least, mtu <= 65535 else {
            throw SenderError("an MTU of \(mtu) bytes leaves no room for media (at least \(least) with --recovery \(configuration.recovery))")
        }
        self.mtu = mtu
        core = SenderCore(
            streamID: configuration.streamID, mark: configuration.mark, mtu: mtu, vnets: configuration.routes.count,
            mode: configuration.mode, adaptive: configuration.adaptive, stages: configuration.stages,
            ceilings: configuration.routes.map(\.ceiling), recovery: configuration.recovery, latencySeconds: configuration.latency,
            fec: configuration.fec)
        let trace = configuration.trace
        core.referencesFirst = trace.isReordered
        if configuration.shedding {
            guard trace.hasFrameTypes else {
                throw SenderError("shedding needs frame types, and this trace has none: give its GoP pattern (--gop IBBPBBPBBPBB)")
            }
            core.shedder = FrameShedder(
                types: trace.frames.map(\.type), wireBytes: trace.frames.map { [core] in core.wireBytes(ofFrame: $0.bytes) },
                framesPerSecond: trace.framesPerSecond, referencesFirst: trace.isReordered)
        }
        buffer = [UInt8](repeating: 0, count: mtu)
    }

    /// What one turn of the loop sends.
    private enum Work {
        /// Frame `number` of the trace, due at `due`.
        case frame(number: Int, due: UInt64)
        /// Packets back to back, now.
        case bundle(count: Int)
    }

    /// Streams the whole trace, then sends the end-of-stream message on every VNet and listens
    /// for reports a little longer. Bounded: it ends with the trace.
    public func run() throws -> SenderSummary {
        let trace = configuration.trace
        let schedule = FrameSchedule(sendTimesSeconds: trace.sendTimes).offsets
        start = configuration.startAt ?? MonotonicClock.now() + 20_000_000
        if configuration.segmentationOffload {
            segmenting = true
            offload = "udp-segmentation (runs of a frame's packets on one VNet, up to 64 per write)"
            segmentBuffer = [UInt8](repeating: 0, count: 65535)
        }
        var number = 0
        let result = try stream(pacing: true) { [start] _ in
            guard number < trace.frames.count else { return nil }
            defer { number += 1 }
            return .frame(number: number, due: start + schedule[number])
        }
        var summary = summary(frames: trace.frames.count, lastSendTime: result.lastSendTime, lateness: result.lateness)
        if configuration.segmentationOffload { summary.offload = offload }
        return summary
    }

    /// Sends packets of `payloadBytes` (UDP payload, header included) back to back, as fast as
    /// the tuns take them, split by the controller's weights, for `duration` seconds; then the
    /// end-of-stream message. No pacing: this is the data path's throughput, not a media stream.
    public func runUnpaced(payloadBytes: Int, duration: Double) throws -> SenderSummary {
        guard payloadBytes >= MediaHeader.size, IPv4UDP.headerSize + payloadBytes <= mtu else {
            throw SenderError("--payload-bytes must be \(MediaHeader.size) to \(mtu - IPv4UDP.headerSize) (the VNetStream header, and the MTU)")
        }
        guard configuration.recovery == .none else {
            throw SenderError("--recovery \(configuration.recovery) needs a paced stream (a trace or --cbr RATE), not --cbr max")
        }
        start = configuration.startAt ?? MonotonicClock.now() + 20_000_000
        Pacer.wait(until: start)
        let end = start + UInt64(duration * 1e9)
        // Up to 64 packets per segmented write (the kernel's limit for UDP segmentation), all
        // within one IPv4 packet's 64 KiB.
        let batch = min(64, (65535 - IPv4UDP.headerSize) / payloadBytes)
        segmenting = configuration.segmentationOffload && batch > 1
        offload = segmenting ? "udp-segmentation (\(batch) packets per write)" : "packet-per-write"
        if segmenting { segmentBuffer = [UInt8](repeating: 0, count: IPv4UDP.headerSize + batch * payloadBytes) }
        unpacedPayload = payloadBytes
        let result = try stream(pacing: false) { now in now < end ? .bundle(count: batch) : nil }
        var summary = summary(frames: Int(core.streamSequence), lastSendTime: result.lastSendTime, lateness: [])
        summary.offload = offload
        return summary
    }

    var segmenting = false
    var offload = ""
    private var unpacedPayload = 0

    /// The one loop of paced and unpaced streams: take the next work, wait for its time (or,
    /// unpaced, look at reports and the log every few bundles), let the core make its packets,
    /// write them; then the end of the stream.
    private func stream(pacing: Bool, next: (UInt64) -> Work?) throws -> (lastSendTime: UInt64, lateness: [Int64]) {
        nextLog = start + UInt64(configuration.logInterval * 1e9)
        configuration.packetLog?(SentPacket.csvHeader)
        var lateness: [Int64] = []
        if pacing { lateness.reserveCapacity(configuration.trace.frames.count) }
        var lastSendTime: UInt64 = 0
        var now = MonotonicClock.now()
        var turns = 0
        while let work = next(now) {
            outgoing.removeAll(keepingCapacity: true)
            switch work {
            case .frame(let number, let due):
                try serve(until: due)
                now = MonotonicClock.now()
                lateness.append(Int64(bitPattern: now &- due))
                lastSendTime = now &- start
                let frame = configuration.trace.frames[number]
                core.packets(
                    ofFrame: frame.bytes, type: UInt8(ascii: frame.type.rawValue.unicodeScalars.first!), number: UInt32(number),
                    sendTime: lastSendTime, now: now, into: &outgoing)
            case .bundle(let count):
                if turns % 4 == 0 {
                    // Now and then: the reports that came back, the log, the controller's weights.
                    for vnet in tuns.indices { try drain(vnet) }
                    if now >= nextLog { logIntervals(at: now) }
                    core.followWeights()
                }
                lastSendTime = now &- start
                core.bundle(count: count, payloadBytes: unpacedPayload, oneVNet: segmenting, sendTime: lastSendTime, now: now, into: &outgoing)
            }
            try write(outgoing)
            logControlEvents(at: now)
            turns += 1
            if !pacing { now = MonotonicClock.now() }
        }
        // The parity of the last rows and columns, and packets still waiting for their VNet's
        // pace, go before the end message counts them.
        core.finishParity(now: MonotonicClock.now())
        while let next = core.nextDue {
            try serve(until: max(next, MonotonicClock.now() + 1_000_000))
            try releaseDue()
        }
        let end = core.end(frames: pacing ? configuration.trace.frames.count : Int(core.streamSequence), lastSendTime: lastSendTime)
        // The end message travels over every VNet, three times 100 ms apart, so that neither
        // one dead VNet nor a shaped queue still full of the stream's tail (which drops
        // whatever arrives while it is full) hides the end from the receiver.
        for _ in 0..<3 {
            for vnet in tuns.indices { try sendControl(end.encoded, on: vnet) }
            try serve(until: MonotonicClock.now() + 100_000_000)
        }
        if pacing { try serve(until: MonotonicClock.now() + UInt64(configuration.linger * 1e9)) }
        logIntervals(at: MonotonicClock.now())
        return (lastSendTime, lateness)
    }

    private func summary(frames: Int, lastSendTime: UInt64, lateness: [Int64]) -> SenderSummary {
        var summary = SenderSummary(
            streamID: configuration.streamID, frames: frames, packets: Int(core.streamSequence),
            durationS: Double(lastSendTime) / 1e9, mark: Int(configuration.mark.tos), mtu: mtu,
            vnets: configuration.routes.indices.map {
                let tally = core.vnets[$0]
                return SenderSummary.VNet(
                    vnet: $0 + 1, tun: configuration.routes[$0].tun, source: configuration.routes[$0].source.description,
                    packets: tally.packets, bytes: tally.bytes, copies: tally.copies, copyBytes: tally.copyBytes,
                    localDrops: tally.localDrops, reportsReceived: tally.reportsReceived)
            },
            pacing: PacingErrors(lateness: lateness), controlEvents: controlEvents, ignored: ignored,
            lastReport: lastReport?.paths, cpuS: ProcessCPU.seconds(),
            shed: core.shedder.map { shedder in
                SenderSummary.Shed(
                    frames: shedder.shedFrames.values.reduce(0, +), bytes: shedder.shedBytes,
                    byType: Dictionary(uniqueKeysWithValues: shedder.shedFrames.map { ($0.key.rawValue, $0.value) }))
            })
        if configuration.recovery != .none {
            let tally = core.retransmitter?.tally ?? Retransmitter.Tally()
            summary.recovery = SenderSummary.Recovery(
                mode: configuration.recovery.rawValue, latencyMs: rounded(configuration.latency * 1000), nacks: tally.nacks,
                requested: tally.requested, resent: tally.resent, resentBytes: tally.resentBytes, resentElsewhere: tally.resentElsewhere,
                deadTail: tally.deadTail, tooLate: tally.tooLate, notHeld: tally.notHeld, recent: tally.recent,
                bufferBytes: core.retransmitter?.buffer.bytes ?? 0)
            if let encoder = core.parityEncoder {
                summary.recovery?.fec = encoder.shape.description
                summary.recovery?.parities = encoder.tally.parities
                summary.recovery?.parityBytes = encoder.tally.parityBytes
                summary.recovery?.partialParities = encoder.tally.partial
                summary.recovery?.skippedParities = encoder.tally.skipped
            }
        }
        if configuration.mode == .adaptive {
            summary.pacedPackets = core.pacing.heldPackets
            summary.pacedLongestMs = rounded(Double(core.pacing.longestHold) / 1e6)
            summary.trainCopiesSaved = core.pacing.droppedCopies
        }
        return summary
    }

    private func logControlEvents(at now: UInt64) {
        let events = core.takeEvents()
        guard !events.isEmpty else { return }
        controlEvents += events.count
        let t = rounded(Double(now &- start) / 1e9)
        let weights = core.splitter.weights.map { rounded($0) }
        for event in events {
            log(
                .control(
                    .init(
                        tS: t, vnet: event.vnet + 1, event: SenderLogEvent.Control.Event(rawValue: event.kind.rawValue)!,
                        kbitS: event.bitsPerSecond.map { rounded($0 / 1000) }, detail: event.detail, weights: weights)))
        }
    }

    private func sendControl(_ message: [UInt8], on vnet: Int) throws {
        let route = configuration.routes[vnet]
        var packet = [UInt8](repeating: 0, count: IPv4UDP.headerSize + message.count)
        packet.replaceSubrange(IPv4UDP.headerSize..., with: message)
        identification &+= 1
        try packet.withUnsafeMutableBytes { raw in
            IPv4UDP.writeHeaders(
                into: raw, payloadLength: message.count,
                source: UDPEndpoint(address: route.source, port: configuration.sourcePort),
                destination: configuration.destination, tos: configuration.mark.tos, identification: identification)
            try tuns[vnet].write(UnsafeRawBufferPointer(raw))
        }
    }

    /// Until `deadline`: reads reports from every tun as they come, writes the log, then waits
    /// out the last stretch precisely.
    private func serve(until deadline: UInt64) throws {
        let descriptors = tuns.map(\.fileDescriptor)
        while true {
            let now = MonotonicClock.now()
            if now >= nextLog { logIntervals(at: now) }
            if let due = core.nextDue, due <= now { try releaseDue() }
            // Poll in whole milliseconds, leaving the last one or two to the pacer.
            guard deadline > now + 2_000_000 else { break }
            let wake = min(deadline - 1_000_000, nextLog, core.nextDue ?? .max)
            let readable = try waitForReadable(descriptors, timeoutNanoseconds: Int64(wake > now ? wake - now : 0))
            for (vnet, ready) in readable.enumerated() where ready { try drain(vnet) }
        }
        Pacer.wait(until: deadline)
    }

    /// Writes the packets whose pacing wait is over.
    private func releaseDue() throws {
        var due: [OutgoingPacket] = []
        core.due(now: MonotonicClock.now(), into: &due)
        guard !due.isEmpty else { return }
        try write(due)
    }

    private func drain(_ vnet: Int) throws {
        while let count = try readBuffer.withUnsafeMutableBytes({ try tuns[vnet].read(into: $0) }) {
            readBuffer.withUnsafeBytes { raw in handle(UnsafeRawBufferPointer(rebasing: raw[0..<count]), over: vnet) }
        }
    }

    private func handle(_ packet: UnsafeRawBufferPointer, over vnet: Int) {
        let datagram: IPv4UDP.Datagram
        switch IPv4UDP.parse(packet) {
        case .success(let parsed): datagram = parsed
        case .failure(let reason):
            ignored[reason.rawValue, default: 0] += 1
            return
        }
        guard datagram.destination.port == configuration.sourcePort else {
            ignored["other_port", default: 0] += 1
            return
        }
        let payload = UnsafeRawBufferPointer(rebasing: packet[datagram.payload])
        if case .success(.nack) = Wire.kind(of: payload) {
            switch Nack.decode(payload) {
            case .success(let nack) where nack.streamID == configuration.streamID && core.retransmitter != nil:
                core.received(nack, now: MonotonicClock.now())
            case .success(let nack) where nack.streamID == configuration.streamID: ignored["nack_without_recovery", default: 0] += 1
            case .success: ignored["other_stream", default: 0] += 1
            case .failure(let reason): ignored[reason.rawValue, default: 0] += 1
            }
            return
        }
        switch ReceiverReport.decode(payload) {
        case .success(let report) where report.streamID == configuration.streamID:
            let now = MonotonicClock.now()
            if lastReport == nil || report.reportSequence > lastReport!.reportSequence { lastReport = report }
            log(reportEvent(report, over: vnet, at: now))
            core.received(report, over: vnet, now: now)
            logControlEvents(at: now)
        case .success: ignored["other_stream", default: 0] += 1
        case .failure(let reason): ignored[reason.rawValue, default: 0] += 1
        }
    }

    private func logIntervals(at now: UInt64) {
        let t = rounded(Double(now &- start) / 1e9)
        let weights = core.splitter.weights
        for (vnet, tally) in core.takeInterval().enumerated() {
            log(
                .sent(
                    .init(
                        tS: t, vnet: vnet + 1, tun: configuration.routes[vnet].tun, packets: tally.intervalPackets,
                        bytes: tally.intervalBytes, weight: rounded(weights[vnet]), reports: tally.intervalReports)))
        }
        nextLog = now + UInt64(configuration.logInterval * 1e9)
    }

    private func reportEvent(_ report: ReceiverReport, over vnet: Int, at now: UInt64) -> SenderLogEvent {
        .report(
            .init(
                tS: rounded(Double(now &- start) / 1e9), overVNet: vnet + 1, reportSequence: report.reportSequence,
                paths: report.paths.map {
                    .init(
                        vnet: Int($0.pathID) + 1, highest: $0.highestSequencePlusOne, received: $0.packetsReceived, lost: $0.packetsLost,
                        delayUs: $0.delayMicroseconds, jitterUs: $0.jitterMicroseconds,
                        idleUs: $0.idleMicroseconds == PathReport.neverArrived ? nil : $0.idleMicroseconds, packetTimeUs: $0.packetTimeMicroseconds)
                }))
    }

    private func log(_ event: @autoclosure () -> SenderLogEvent) {
        guard let log = configuration.log else { return }
        log(event().line)
    }
}

/// `value` rounded to `places` decimals.
func rounded(_ value: Double, _ places: Int = 3) -> Double {
    let scale = pow(10, Double(places))
    return (value * scale).rounded() / scale
}
