import Control
import Devices
import Foundation
import Pacing
import Packets
import Splitting
import Traces

/// One VNet as the sender reaches it: a tun interface, and the sender's own address in that
/// VNet (the source of its packets there, and where that VNet delivers the receiver's reports).
public struct VNetRoute: Sendable, Equatable {
    public var tun: String
    public var source: IPv4Address

    public init(tun: String, source: IPv4Address) {
        self.tun = tun
        self.source = source
    }
}

public struct SenderConfiguration {
    public var trace: FrameTrace
    public var routes: [VNetRoute]
    public var destination: UDPEndpoint
    /// The UDP source port of media packets, where reports come back to.
    public var sourcePort: UInt16 = 5005
    public var mark: TrafficMark = .bestEffort
    public var split: [Double]
    /// The largest IPv4 packet to send; nil takes the smallest MTU of the tuns.
    public var mtu: Int?
    public var streamID: UInt32 = 1
    /// How often a line per VNet goes to the log, seconds.
    public var logInterval: Double = 1
    /// How long to keep listening for reports after the last packet, seconds.
    public var linger: Double = 0.5
    /// Where JSON lines go (one call per line); nil logs nothing.
    public var log: ((String) -> Void)?
    /// Where one CSV line per packet sent goes (header line first); nil logs none.
    public var packetLog: ((String) -> Void)?
    /// When the first frame is due, on the monotonic clock (CLOCK_MONOTONIC, nanoseconds),
    /// so that another process (the lab's schedule) can share the stream's time zero; nil
    /// starts 20 ms after `run()` is called.
    public var startAt: UInt64?
    /// Unpaced mode: hand the kernel up to 64 packets per write and let it cut them apart (UDP
    /// segmentation offload through the tun's virtio-net header), where the kernel can; falls
    /// back to a write per packet where it cannot.
    public var segmentationOffload = false

    public init(trace: FrameTrace, routes: [VNetRoute], destination: UDPEndpoint, split: [Double]) {
        self.trace = trace
        self.routes = routes
        self.destination = destination
        self.split = split
    }
}

/// What a sender did: the summary `vnetstream send` prints and writes as JSON.
public struct SenderSummary: Codable, Sendable {
    public struct VNet: Codable, Sendable {
        public var vnet: Int
        public var tun: String
        public var source: String
        public var packets: Int
        public var bytes: Int
        /// Of those, copies: probe-train padding and probes of a dead VNet (duplicate mode's
        /// packets are not copies: each VNet carries the whole stream).
        public var copies: Int
        public var copyBytes: Int
        /// Packets the tun would not take (kernel queue full): never sent.
        public var localDrops: Int
        /// Receiver reports that arrived over this VNet.
        public var reportsReceived: Int

        enum CodingKeys: String, CodingKey {
            case vnet, tun, source, packets, bytes, copies
            case copyBytes = "copy_bytes"
            case localDrops = "local_drops"
            case reportsReceived = "reports_received"
        }
    }

    public var streamID: UInt32
    public var frames: Int
    public var packets: Int
    public var durationS: Double
    public var mark: Int
    public var mtu: Int
    public var vnets: [VNet]
    public var pacing: PacingErrors
    /// What the controller did (adaptive mode): dead and alive events, capacity estimates.
    public var controlEvents: Int
    /// Datagrams read from the tuns that were not reports for this stream, by reason.
    public var ignored: [String: Int]
    public var lastReport: [PathReport]?
    /// CPU time this process used (user + system), seconds.
    public var cpuS: Double?
    /// How packets went into the tuns in unpaced mode: `udp-segmentation` (up to 64 per write)
    /// or `packet-per-write` (and why).
    public var offload: String?

    enum CodingKeys: String, CodingKey {
        case frames, packets, mtu, mark, vnets, pacing, ignored, offload
        case cpuS = "cpu_s"
        case controlEvents = "control_events"
        case streamID = "stream_id"
        case durationS = "duration_s"
        case lastReport = "last_report"
    }
}

/// CPU time of this process so far (user + system), from getrusage.
public enum ProcessCPU {
    public static func seconds() -> Double {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}

/// Streams a trace in real time into one tun per VNet.
public final class Sender {
    public let configuration: SenderConfiguration
    private let tuns: [TunDevice]
    private let packetizer: Packetizer
    private let mtu: Int
    private var splitter: WeightedSplitter
    /// Moves the split and plans probes; a fixed split (`--split`) by default.
    public var controller: any SplitController

    private var buffer: [UInt8]
    private var readBuffer = [UInt8](repeating: 0, count: 65536)
    private var identification: UInt16 = 0
    private var streamSequence: UInt32 = 0
    private var pathSequence: [UInt32]
    private var vnetPackets: [Int]
    private var vnetBytes: [Int]
    private var vnetCopies: [Int]
    private var vnetCopyBytes: [Int]
    private var controlEvents = 0
    private var intervalPackets: [Int]
    private var intervalBytes: [Int]
    private var intervalReports: [Int]
    private var localDrops: [Int]
    private var reportsReceived: [Int]
    private var ignored: [String: Int] = [:]
    private var lastReport: ReceiverReport?
    private var start: UInt64 = 0
    private var nextLog: UInt64 = 0

    /// Attaches to every tun; fails at once (with what to do) when one cannot be had.
    public init(_ configuration: SenderConfiguration) throws {
        precondition(configuration.routes.count == configuration.split.count)
        guard !configuration.routes.isEmpty, configuration.routes.count <= ReceiverReport.maximumPaths else {
            throw SenderError("give between 1 and \(ReceiverReport.maximumPaths) VNets")
        }
        self.configuration = configuration
        tuns = try configuration.routes.map { try TunDevice.attach($0.tun, virtioHeader: configuration.segmentationOffload) }
        let mtu = try configuration.mtu ?? tuns.map { try $0.mtu() }.min()!
        guard mtu >= IPv4UDP.headerSize + MediaHeader.size + 1, mtu <= 65535 else {
            throw SenderError("an MTU of \(mtu) bytes leaves no room for media (at least \(IPv4UDP.headerSize + MediaHeader.size + 1))")
        }
        self.mtu = mtu
        packetizer = Packetizer(mtu: mtu)
        splitter = WeightedSplitter(weights: configuration.split)
        controller = StaticSplit(weights: configuration.split)
        buffer = [UInt8](repeating: 0, count: mtu)
        let count = configuration.routes.count
        pathSequence = Array(repeating: 0, count: count)
        vnetPackets = Array(repeating: 0, count: count)
        vnetBytes = vnetPackets
        vnetCopies = vnetPackets
        vnetCopyBytes = vnetPackets
        intervalPackets = vnetPackets
        intervalBytes = vnetPackets
        intervalReports = vnetPackets
        localDrops = vnetPackets
        reportsReceived = vnetPackets
    }

    /// Streams the whole trace, then sends the end-of-stream message on every VNet and listens
    /// for reports a little longer. Bounded: it ends with the trace.
    public func run() throws -> SenderSummary {
        let trace = configuration.trace
        let schedule = FrameSchedule(sendTimesSeconds: trace.sendTimes).offsets
        var lateness: [Int64] = []
        lateness.reserveCapacity(trace.frames.count)
        start = configuration.startAt ?? MonotonicClock.now() + 20_000_000
        nextLog = start + UInt64(configuration.logInterval * 1e9)
        splitter.setWeights(controller.weights)
        configuration.packetLog?("t_s,stream_seq,vnet,path_seq,frame,bytes,copy")
        var lastSendTime: UInt64 = 0
        for (number, frame) in trace.frames.enumerated() {
            let due = start + schedule[number]
            try serve(until: due)
            let now = MonotonicClock.now()
            lateness.append(Int64(bitPattern: now &- due))
            lastSendTime = now &- start
            let fragments = packetizer.fragments(ofFrame: frame.bytes)
            guard !fragments.isEmpty else { continue }
            let plan = controller.plan(fragmentBytes: fragments.map { $0 + MediaHeader.size + IPv4UDP.headerSize }, now: now)
            var header = MediaHeader(
                streamID: configuration.streamID, streamSequence: streamSequence, pathSequence: 0,
                frameNumber: UInt32(number), sendTimeNanoseconds: lastSendTime, fragmentIndex: 0,
                fragmentCount: UInt16(fragments.count), pathID: 0,
                frameType: UInt8(ascii: frame.type.rawValue.unicodeScalars.first!), mark: configuration.mark.tos)
            let firstSequence = streamSequence
            var carried = Set<Int>()
            for (index, size) in fragments.enumerated() {
                header.streamSequence = streamSequence
                header.fragmentIndex = UInt16(index)
                if plan.everywhere {
                    for vnet in tuns.indices { try send(header, payload: size, on: vnet, copy: false) }
                } else if let train = plan.train, index < plan.trainPackets {
                    // The train: the frame's first packets back to back on the probed VNet (the
                    // rest of a large frame is split as usual, so a probe never moves a whole
                    // I frame onto one VNet).
                    splitter.take(train, bytes: IPv4UDP.headerSize + MediaHeader.size + size)
                    try send(header, payload: size, on: train, copy: false)
                    carried.insert(train)
                } else {
                    let vnet = splitter.next(bytes: IPv4UDP.headerSize + MediaHeader.size + size)
                    try send(header, payload: size, on: vnet, copy: false)
                    carried.insert(vnet)
                }
                streamSequence &+= 1
            }
            // Probe-train padding: copies of the frame's largest packet until the train is long enough.
            // (The copies follow the frame's other packets; those that went elsewhere leave a gap
            // in this VNet's sequence only if the frame had more packets than the train.)
            if let train = plan.train, plan.trainPackets > fragments.count {
                let largest = fragments.indices.max { fragments[$0] < fragments[$1] }!
                header.streamSequence = firstSequence &+ UInt32(largest)
                header.fragmentIndex = UInt16(largest)
                for _ in fragments.count..<plan.trainPackets { try send(header, payload: fragments[largest], on: train, copy: true) }
            }
            // Probes of dead VNets: a copy of the frame's first packet each.
            header.streamSequence = firstSequence
            header.fragmentIndex = 0
            for vnet in plan.copiesOn where !carried.contains(vnet) && tuns.indices.contains(vnet) {
                try send(header, payload: fragments[0], on: vnet, copy: true)
            }
            logControlEvents(at: now)
        }
        let end = StreamEnd(
            streamID: configuration.streamID, streamPackets: streamSequence, frameCount: UInt32(trace.frames.count),
            lastSendTimeNanoseconds: lastSendTime,
            paths: pathSequence.enumerated().map { StreamEnd.Path(pathID: UInt8($0.offset), packetsSent: $0.element) })
        // The end message travels over every VNet, three times 100 ms apart, so that neither
        // one dead VNet nor a shaped queue still full of the stream's tail (which drops
        // whatever arrives while it is full) hides the end from the receiver.
        for _ in 0..<3 {
            for vnet in tuns.indices { try sendControl(end.encoded, on: vnet) }
            try serve(until: MonotonicClock.now() + 100_000_000)
        }
        try serve(until: MonotonicClock.now() + UInt64(configuration.linger * 1e9))
        logIntervals(at: MonotonicClock.now())
        return summary(frames: trace.frames.count, lastSendTime: lastSendTime, lateness: lateness)
    }

    /// Sends packets of `payloadBytes` (UDP payload, header included) back to back, as fast as
    /// the tuns take them, split by the controller's weights, for `duration` seconds; then the
    /// end-of-stream message. No pacing: this is the data path's throughput, not a media stream.
    public func runUnpaced(payloadBytes: Int, duration: Double) throws -> SenderSummary {
        guard payloadBytes >= MediaHeader.size, IPv4UDP.headerSize + payloadBytes <= mtu else {
            throw SenderError("--payload-bytes must be \(MediaHeader.size) to \(mtu - IPv4UDP.headerSize) (the VNetStream header, and the MTU)")
        }
        start = configuration.startAt ?? MonotonicClock.now() + 20_000_000
        Pacer.wait(until: start)
        nextLog = start + UInt64(configuration.logInterval * 1e9)
        let end = start + UInt64(duration * 1e9)
        splitter.setWeights(controller.weights)
        configuration.packetLog?("t_s,stream_seq,vnet,path_seq,frame,bytes,copy")
        let wire = IPv4UDP.headerSize + payloadBytes
        var header = MediaHeader(
            streamID: configuration.streamID, streamSequence: 0, pathSequence: 0, frameNumber: 0, sendTimeNanoseconds: 0,
            fragmentIndex: 0, fragmentCount: 1, pathID: 0, frameType: UInt8(ascii: "-"), mark: configuration.mark.tos)
        var now = start
        // Up to 64 packets per segmented write (the kernel's limit for UDP segmentation), all
        // within one IPv4 packet's 64 KiB.
        let batch = min(64, (65535 - IPv4UDP.headerSize) / payloadBytes)
        var segmenting = configuration.segmentationOffload && batch > 1
        var offload = segmenting ? "udp-segmentation (\(batch) packets per write)" : "packet-per-write"
        if segmenting { segmentBuffer = [UInt8](repeating: 0, count: IPv4UDP.headerSize + batch * payloadBytes) }
        var lastCheck: UInt32 = 0
        while true {
            if streamSequence &- lastCheck >= 256 || streamSequence == 0 {
                lastCheck = streamSequence
                // Now and then: the clock, the reports that came back, the log.
                now = MonotonicClock.now()
                if now >= end { break }
                for vnet in tuns.indices { try drain(vnet) }
                if now >= nextLog { logIntervals(at: now) }
                splitter.setWeights(controller.weights)
            }
            if segmenting {
                let vnet = splitter.next(bytes: wire * batch)
                if try sendSegmented(batch: batch, payloadBytes: payloadBytes, on: vnet, template: header) {
                    streamSequence &+= UInt32(batch)
                    continue
                }
                // This kernel takes no segmented writes: a packet per write from here on.
                segmenting = false
                offload = "packet-per-write (the kernel refused UDP segmentation through the tun: Linux 6.2 or later has it)"
            }
            header.streamSequence = streamSequence
            header.frameNumber = streamSequence
            header.sendTimeNanoseconds = MonotonicClock.now() &- start
            try send(header, payload: payloadBytes - MediaHeader.size, on: splitter.next(bytes: wire), copy: false)
            streamSequence &+= 1
        }
        let lastSendTime = now &- start
        let endMessage = StreamEnd(
            streamID: configuration.streamID, streamPackets: streamSequence, frameCount: streamSequence,
            lastSendTimeNanoseconds: lastSendTime,
            paths: pathSequence.enumerated().map { StreamEnd.Path(pathID: UInt8($0.offset), packetsSent: $0.element) })
        for _ in 0..<3 {
            for vnet in tuns.indices { try sendControl(endMessage.encoded, on: vnet) }
            try serve(until: MonotonicClock.now() + 100_000_000)
        }
        logIntervals(at: MonotonicClock.now())
        var result = summary(frames: Int(streamSequence), lastSendTime: lastSendTime, lateness: [])
        result.offload = offload
        return result
    }

    private func summary(frames: Int, lastSendTime: UInt64, lateness: [Int64]) -> SenderSummary {
        SenderSummary(
            streamID: configuration.streamID, frames: frames, packets: Int(streamSequence),
            durationS: Double(lastSendTime) / 1e9, mark: Int(configuration.mark.tos), mtu: mtu,
            vnets: configuration.routes.indices.map {
                SenderSummary.VNet(
                    vnet: $0 + 1, tun: configuration.routes[$0].tun, source: configuration.routes[$0].source.description,
                    packets: vnetPackets[$0], bytes: vnetBytes[$0], copies: vnetCopies[$0], copyBytes: vnetCopyBytes[$0],
                    localDrops: localDrops[$0],
                    reportsReceived: reportsReceived[$0])
            },
            pacing: PacingErrors(lateness: lateness), controlEvents: controlEvents, ignored: ignored,
            lastReport: lastReport?.paths, cpuS: ProcessCPU.seconds())
    }

    private var segmentBuffer: [UInt8] = []

    /// `batch` packets of the stream in one segmented write on `vnet`; false (and nothing
    /// counted) when the kernel refuses segmented writes.
    private func sendSegmented(batch: Int, payloadBytes: Int, on vnet: Int, template: MediaHeader) throws -> Bool {
        let route = configuration.routes[vnet]
        let now = MonotonicClock.now()
        var header = template
        header.pathID = UInt8(vnet)
        header.sendTimeNanoseconds = now &- start
        identification &+= 1
        let sent = try segmentBuffer.withUnsafeMutableBytes { raw -> Bool? in
            for k in 0..<batch {
                header.streamSequence = streamSequence &+ UInt32(k)
                header.frameNumber = header.streamSequence
                header.pathSequence = pathSequence[vnet] &+ UInt32(k)
                header.write(into: raw, at: IPv4UDP.headerSize + k * payloadBytes)
            }
            IPv4UDP.writeSegmentedHeaders(
                into: raw, payloadLength: batch * payloadBytes,
                source: UDPEndpoint(address: route.source, port: configuration.sourcePort),
                destination: configuration.destination, tos: configuration.mark.tos, identification: identification)
            do {
                return try tuns[vnet].writeSegmented(UnsafeRawBufferPointer(raw), segmentBytes: payloadBytes)
            } catch where tuns[vnet].segmentationWorks == false {
                return nil
            }
        }
        guard let sent else { return false }
        for k in 0..<batch {
            let sequence = streamSequence &+ UInt32(k)
            account(
                sent: sent, vnet: vnet, pathSequence: pathSequence[vnet] &+ UInt32(k), streamSequence: sequence, frame: sequence,
                udpPayload: payloadBytes, copy: false, now: now)
        }
        pathSequence[vnet] &+= UInt32(batch)
        return true
    }

    /// Counts one packet written into VNet `vnet`'s tun (or not taken: `sent` false), tells
    /// the controller, and logs it.
    private func account(
        sent: Bool, vnet: Int, pathSequence: UInt32, streamSequence: UInt32, frame: UInt32, udpPayload length: Int, copy: Bool,
        now: UInt64
    ) {
        if sent {
            vnetPackets[vnet] += 1
            vnetBytes[vnet] += length
            intervalPackets[vnet] += 1
            intervalBytes[vnet] += length
            if copy {
                vnetCopies[vnet] += 1
                vnetCopyBytes[vnet] += length
            }
        } else {
            localDrops[vnet] += 1
        }
        controller.sent(vnet: vnet, pathSequence: pathSequence, bytes: IPv4UDP.headerSize + length, now: now)
        if let packetLog = configuration.packetLog {
            packetLog(
                "\(rounded(Double(now &- start) / 1e9, 6)),\(streamSequence),\(vnet + 1),\(pathSequence),\(frame),\(IPv4UDP.headerSize + length),\(copy ? 1 : 0)\(sent ? "" : ",local_drop")")
        }
    }

    private func send(_ header: MediaHeader, payload: Int, on vnet: Int, copy: Bool) throws {
        var header = header
        header.pathID = UInt8(vnet)
        header.pathSequence = pathSequence[vnet]
        pathSequence[vnet] &+= 1
        let length = MediaHeader.size + payload
        let route = configuration.routes[vnet]
        identification &+= 1
        let sent = try buffer.withUnsafeMutableBytes { raw -> Bool in
            header.write(into: raw, at: IPv4UDP.headerSize)
            IPv4UDP.writeHeaders(
                into: raw, payloadLength: length,
                source: UDPEndpoint(address: route.source, port: configuration.sourcePort),
                destination: configuration.destination, tos: configuration.mark.tos, identification: identification)
            return try tuns[vnet].write(UnsafeRawBufferPointer(rebasing: raw[0..<(IPv4UDP.headerSize + length)]))
        }
        account(
            sent: sent, vnet: vnet, pathSequence: header.pathSequence, streamSequence: header.streamSequence, frame: header.frameNumber,
            udpPayload: length, copy: copy, now: MonotonicClock.now())
    }

    private func logControlEvents(at now: UInt64) {
        let events = controller.takeEvents()
        guard !events.isEmpty else { return }
        controlEvents += events.count
        splitter.setWeights(controller.weights)
        let t = rounded(Double(now &- start) / 1e9)
        let weights = splitter.weights.map { rounded($0) }.joined(separator: ",")
        for event in events {
            let rate = event.bitsPerSecond.map { #","kbit_s":\#(rounded($0 / 1000))"# } ?? ""
            log(#"{"kind":"control","t_s":\#(t),"vnet":\#(event.vnet + 1),"event":"\#(event.kind.rawValue)"\#(rate),"detail":"\#(event.detail)","weights":[\#(weights)]}"#)
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
            // Poll in whole milliseconds, leaving the last one or two to the pacer.
            guard deadline > now + 2_000_000 else { break }
            let wake = min(deadline - 1_000_000, nextLog)
            let readable = try waitForReadable(descriptors, timeoutNanoseconds: Int64(wake > now ? wake - now : 0))
            for (vnet, ready) in readable.enumerated() where ready { try drain(vnet) }
        }
        Pacer.wait(until: deadline)
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
        switch ReceiverReport.decode(payload) {
        case .success(let report) where report.streamID == configuration.streamID:
            reportsReceived[vnet] += 1
            intervalReports[vnet] += 1
            let now = MonotonicClock.now()
            if lastReport == nil || report.reportSequence > lastReport!.reportSequence { lastReport = report }
            log(reportLine(report, over: vnet, at: now))
            controller.received(report, over: vnet, now: now)
            logControlEvents(at: now)
        case .success: ignored["other_stream", default: 0] += 1
        case .failure(let reason): ignored[reason.rawValue, default: 0] += 1
        }
    }

    private func logIntervals(at now: UInt64) {
        let t = Double(now &- start) / 1e9
        for vnet in tuns.indices {
            log(
                #"{"kind":"sent","t_s":\#(rounded(t)),"vnet":\#(vnet + 1),"tun":"\#(configuration.routes[vnet].tun)","packets":\#(intervalPackets[vnet]),"bytes":\#(intervalBytes[vnet]),"weight":\#(rounded(splitter.weights[vnet])),"reports":\#(intervalReports[vnet])}"#
            )
            intervalPackets[vnet] = 0
            intervalBytes[vnet] = 0
            intervalReports[vnet] = 0
        }
        nextLog = now + UInt64(configuration.logInterval * 1e9)
    }

    private func reportLine(_ report: ReceiverReport, over vnet: Int, at now: UInt64) -> String {
        let paths = report.paths.map {
            #"{"vnet":\#(Int($0.pathID) + 1),"highest":\#($0.highestSequencePlusOne),"received":\#($0.packetsReceived),"lost":\#($0.packetsLost),"delay_us":\#($0.delayMicroseconds),"jitter_us":\#($0.jitterMicroseconds)}"#
        }.joined(separator: ",")
        return #"{"kind":"report","t_s":\#(rounded(Double(now &- start) / 1e9)),"over_vnet":\#(vnet + 1),"report_seq":\#(report.reportSequence),"paths":[\#(paths)]}"#
    }

    private func log(_ line: @autoclosure () -> String) {
        configuration.log?(line())
    }
}

func rounded(_ value: Double, _ places: Int = 3) -> String {
    let scale = pow(10, Double(places))
    return String((value * scale).rounded() / scale)
}

public struct SenderError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
