import Devices
import Foundation
import Pacing
import Packets
import RunRecords
import Units

public struct MarkedSenderConfiguration: Sendable {
    public var destination: UDPEndpoint
    /// One stream per mark (stream ids 1, 2, ... in this order), each on its own socket.
    public var marks: [TrafficMark]
    public var packetsPerSecond: Double = 450
    /// IPv4 bytes of every packet: IPv4 and UDP headers, the VNetStream header, padding.
    public var packetBytes: Int = 256
    /// Packets per stream.
    public var count: Int = 10_000
    public var arrivals: Arrivals = .constant
    public var seed: UInt64 = 1
    /// When the first packets are due (CLOCK_MONOTONIC nanoseconds); nil: 20 ms after `run()`.
    public var startAt: UInt64?
    /// When the sender falls this far behind its schedule (a stalled or slow machine), the rest
    /// of the schedule moves later instead of the missed packets going out in a burst: a burst
    /// would load the network in a way the rate does not say. Nanoseconds.
    public var maximumLatenessNanoseconds: UInt64 = 50_000_000
    /// Where one CSV line per packet goes (header first): `mono_ns,stream,seq,bytes,tos`.
    public var packetLog: (@Sendable (String) -> Void)?

    public init(destination: UDPEndpoint, marks: [TrafficMark]) {
        self.destination = destination
        self.marks = marks
    }
}

/// Sends streams of equal packets, each marked with its own TT field, from plain UDP sockets
/// with `IP_TOS` set: exactly what any application can do. Which VNet carries them is up to
/// the network (the classifying edge), not to this sender.
public final class MarkedSender {
    public let configuration: MarkedSenderConfiguration
    private let sockets: [UDPSocket]

    public init(_ configuration: MarkedSenderConfiguration) throws {
        guard !configuration.marks.isEmpty, configuration.marks.count <= 64 else { throw SenderError("give 1 to 64 marks") }
        guard configuration.packetsPerSecond > 0, configuration.packetsPerSecond <= 1_000_000 else {
            throw SenderError("the rate must be above 0 and at most 1,000,000 packets/s")
        }
        let smallest = IPv4UDP.headerSize + MediaHeader.size
        guard (smallest...1500).contains(configuration.packetBytes) else {
            throw SenderError("packets must have \(smallest) to 1500 bytes (IPv4, UDP and the \(MediaHeader.size)-byte VNetStream header)")
        }
        guard configuration.count > 0 else { throw SenderError("send at least one packet per stream") }
        self.configuration = configuration
        sockets = try configuration.marks.map { mark in
            let socket = try UDPSocket(bind: UDPEndpoint(address: IPv4Address(0), port: 0))
            try socket.setTypeOfService(mark.tos)
            return socket
        }
    }

    /// When each stream's packets are due, nanoseconds after the start.
    public static func schedule(count: Int, packetsPerSecond: Double, arrivals: Arrivals, seed: UInt64) -> [UInt64] {
        let gap = 1e9 / packetsPerSecond
        switch arrivals {
        case .constant:
            return (0..<count).map { UInt64((Double($0) * gap).rounded()) }
        case .poisson:
            var random = SplitMix64(seed: seed)
            var t = 0.0
            return (0..<count).map { _ in
                defer { t += -log(1 - random.nextUnit()) * gap }
                return UInt64(t.rounded())
            }
        }
    }

    public func run() throws -> MarkedSenderSummary {
        let c = configuration
        let schedules = c.marks.indices.map {
            Self.schedule(count: c.count, packetsPerSecond: c.packetsPerSecond, arrivals: c.arrivals, seed: c.seed &+ UInt64($0))
        }
        c.packetLog?(MarkedPacket.csvHeader)
        let start = c.startAt ?? (MonotonicClock.now() + 20_000_000)
        var next = [Int](repeating: 0, count: c.marks.count)
        var drops = [Int](repeating: 0, count: c.marks.count)
        var lateness = [[Int64]](repeating: [], count: c.marks.count)
        var packet = [UInt8](repeating: 0, count: c.packetBytes - IPv4UDP.headerSize)
        var shift: UInt64 = 0
        var shifts = 0
        for index in lateness.indices { lateness[index].reserveCapacity(c.count) }
        while true {
            // The stream whose next packet is due first.
            var stream = -1
            for s in next.indices where next[s] < c.count && (stream < 0 || schedules[s][next[s]] < schedules[stream][next[stream]]) {
                stream = s
            }
            guard stream >= 0 else { break }
            let sequence = next[stream]
            let due = start + shift + schedules[stream][sequence]
            Pacer.wait(until: due)
            let now = MonotonicClock.now()
            lateness[stream].append(Int64(now) - Int64(due))
            if now > due + c.maximumLatenessNanoseconds {
                shift += now - due
                shifts += 1
            }
            let header = MediaHeader(
                streamID: UInt32(stream + 1), streamSequence: UInt32(sequence), pathSequence: UInt32(sequence),
                frameNumber: UInt32(sequence), sendTimeNanoseconds: now - start, fragmentIndex: 0, fragmentCount: 1, pathID: 0,
                frameType: UInt8(ascii: "-"), mark: c.marks[stream].tos)
            packet.withUnsafeMutableBytes { header.write(into: $0, at: 0) }
            let taken = try sockets[stream].send(packet, to: c.destination)
            if !taken { drops[stream] += 1 }
            c.packetLog?(
                MarkedPacket(
                    monotonicNanoseconds: now, stream: UInt32(stream + 1), sequence: UInt32(sequence), bytes: c.packetBytes,
                    tos: c.marks[stream].tos, localDrop: !taken
                ).csvRow)
            next[stream] += 1
        }
        let last = MonotonicClock.now()
        // The end of every stream, a few times (it may be lost like any packet).
        for _ in 0..<3 {
            for (index, socket) in sockets.enumerated() {
                let end = StreamEnd(
                    streamID: UInt32(index + 1), streamPackets: UInt32(c.count), frameCount: UInt32(c.count),
                    lastSendTimeNanoseconds: last - start, paths: [.init(pathID: 0, packetsSent: UInt32(c.count - drops[index]))])
                _ = try socket.send(end.encoded, to: c.destination)
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return MarkedSenderSummary(
            destination: c.destination.description, packetBytes: c.packetBytes, packetsPerSecond: c.packetsPerSecond,
            arrivals: c.arrivals, durationS: Double(last - min(last, start)) / 1e9, scheduleShifts: shifts,
            scheduleShiftS: Double(shift) / 1e9,
            streams: c.marks.indices.map {
                .init(
                    streamID: UInt32($0 + 1), mark: c.marks[$0].description, tos: Int(c.marks[$0].tos), packets: c.count,
                    localDrops: drops[$0], pacing: PacingErrors(lateness: lateness[$0]))
            })
    }
}
