import Accounting
import Capture
import Devices
import Foundation
import Pacing
import Packets
import RunRecords

public struct ReceiverConfiguration: Sendable {
    public var listen: UDPEndpoint
    /// A multicast group to join on every interface (the stream is sent to it).
    public var group: IPv4Address?
    /// The stream to account; nil accounts every stream that arrives (the first is the one
    /// `report` gives; `streams` has them all).
    public var streamID: UInt32?
    /// Length of the accounting intervals (binned by send time), seconds.
    public var interval: Double = 30
    /// How often reports go back to the sender, over every VNet, milliseconds.
    public var reportMilliseconds: Int = 100
    /// Stop when no packet has come for this long after the first one, seconds.
    public var idleTimeout: Double = 5
    /// Stop when no packet at all has come for this long, seconds.
    public var startTimeout: Double = 60
    /// After the sender's end-of-stream message, wait this long for stragglers, seconds.
    public var linger: Double = 1
    /// Never run longer than this, seconds.
    public var maximumDuration: Double = 4 * 3600
    /// The playout deadline after each frame's time, seconds: what arrives later is late, and
    /// a stream whose sender resends is NACKed only for what can still make it.
    public var latency: Double = 0.2
    /// Frame types in coding order, from the trace the sender streams (optional).
    public var frameTypes: [UInt8]?
    /// Interfaces to capture on, and where the pcap files go (one per interface).
    public var captureInterfaces: [String] = []
    public var captureDirectory: String?
    /// Where one CSV line per media packet of the stream goes (header line first); nil: none.
    public var packetLog: (@Sendable (String) -> Void)?
    /// Every this many seconds, a line per stream and path of what arrived and was lost since
    /// the previous one, with delay percentiles (`recv --progress`); nil: none.
    public var progressInterval: Double?
    public var progress: (@Sendable (String) -> Void)?

    public init(listen: UDPEndpoint) { self.listen = listen }
}

/// Receives streams on one UDP socket and accounts every packet per stream and per path.
public final class Receiver {
    public let configuration: ReceiverConfiguration
    private let socket: UDPSocket
    private var captures: [InterfaceCapture] = []
    /// Every stream's accounting, in the order they first arrived (`order` holds their ids at
    /// the same index): found by a short scan, starting with the last one used.
    private var accountings: [StreamAccounting] = []
    private var order: [UInt32] = []
    private var lastIndex = 0
    /// Drops before any stream is known are kept here and merged into the first.
    private var earlyDrops: [Wire.DropReason: Int] = [:]
    /// Where each stream's reports go, per path id: the source of that path's latest packet
    /// (same index as `accountings`).
    private var returnAddresses: [[UDPEndpoint?]] = []
    private var reportSequence: UInt32 = 0
    /// recvmmsg slots: 32 datagrams of up to 64 KiB (coalesced ones are that large).
    private static let slotBytes = 65536
    private static let batchSize = 32
    private var buffer = [UInt8](repeating: 0, count: Receiver.slotBytes * Receiver.batchSize)
    private var batch = [UDPSocket.Arrival](
        repeating: UDPSocket.Arrival(count: 0, source: UDPEndpoint(address: IPv4Address(0), port: 0), tos: nil, kernelTimeNanoseconds: nil),
        count: Receiver.batchSize)

    /// Binds the socket and starts the captures; fails at once when either cannot be had.
    public init(_ configuration: ReceiverConfiguration) throws {
        guard configuration.interval > 0, configuration.reportMilliseconds > 0 else {
            throw SenderError("the interval and the report period must be positive")
        }
        self.configuration = configuration
        // Captures first: once the socket is bound (which a sender can see), capture is on.
        if let directory = configuration.captureDirectory {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            do {
                for interface in configuration.captureInterfaces {
                    captures.append(
                        try InterfaceCapture(
                            interface: interface, file: "\(directory)/\(interface).pcap",
                            filter: "udp dst port \(configuration.listen.port)"))
                }
            } catch {
                for capture in captures { _ = capture.stop() }
                throw error
            }
        }
        do { socket = try UDPSocket(bind: configuration.listen, receiveBufferBytes: 16 << 20) } catch {
            for capture in captures { _ = capture.stop() }
            throw error
        }
        if let group = configuration.group {
            do { try socket.join(group: group) } catch {
                for capture in captures { _ = capture.stop() }
                throw error
            }
        }
        // Datagrams of one flow may come merged (UDP GRO), cut apart again in `run`.
        socket.enableCoalescing()
    }

    /// Receives until the stream ends (or a timeout); returns the results. Captures stop too.
    public func run() throws -> ReceiverResult {
        configuration.packetLog?(ReceivedPacket.csvHeader)
        let begin = MonotonicClock.now()
        let reportPeriod = UInt64(configuration.reportMilliseconds) * 1_000_000
        var nextReport = begin + reportPeriod
        var reportsSent = 0
        var stoppedBy = "time_limit"
        var endSeen: UInt64?
        let progressPeriod = configuration.progressInterval.map { seconds($0) }
        var nextProgress = progressPeriod.map { begin + $0 } ?? .max
        defer { if !captures.isEmpty { _ = stopCaptures() } }
        loop: while true {
            let now = MonotonicClock.now()
            if now >= nextReport {
                reportsSent += try sendReports(now: now)
                nextReport = now + reportPeriod
            }
            try sendNacks(now: now)
            if now >= nextProgress, let progressPeriod {
                printProgress(elapsed: Double(now - begin) / 1e9)
                nextProgress += progressPeriod
            }
            if let endSeen, now >= endSeen + seconds(configuration.linger) {
                stoppedBy = "end"
                break loop
            }
            if let last = accountings.map(\.lastArrival).max(), now >= last + seconds(configuration.idleTimeout) {
                stoppedBy = "idle"
                break loop
            }
            if accountings.isEmpty, now >= begin + seconds(configuration.startTimeout) {
                stoppedBy = "no_stream"
                break loop
            }
            if now >= begin + seconds(configuration.maximumDuration) { break loop }
            let wake = min(nextReport, accountings.lazy.compactMap(\.nextNackDue).min() ?? .max)
            let readable = try waitForReadable([socket.fileDescriptor], timeoutNanoseconds: Int64(wake - min(now, wake)))
            guard readable[0] else { continue }
            // At most 64 batches before the clock, reports and timeouts are looked at again:
            // a sender faster than this loop must not silence the reports.
            for _ in 0..<64 {
                let count = try buffer.withUnsafeMutableBytes { try socket.receiveBatch(into: $0, slotBytes: Self.slotBytes, arrivals: &batch) }
                guard count > 0 else { break }
                let at = MonotonicClock.now()
                for index in 0..<count {
                    let arrival = batch[index]
                    let slot = index * Self.slotBytes
                    let step = arrival.segmentBytes ?? arrival.count
                    var offset = 0
                    while offset < arrival.count {
                        let length = min(step, arrival.count - offset)
                        var single = arrival
                        single.count = length
                        single.segmentBytes = nil
                        if handle(single, at: slot + offset, now: at), endSeen == nil { endSeen = at }
                        offset += max(1, step)
                    }
                }
            }
        }
        reportsSent += try sendReports(now: MonotonicClock.now())
        let summaries = stopCaptures()
        return ReceiverResult(
            report: lossReport(), streams: order.indices.map { streamReport($0) }, reportsSent: reportsSent, captures: summaries,
            stoppedBy: stoppedBy, cpuS: ProcessCPU.seconds())
    }

    private func seconds(_ value: Double) -> UInt64 { UInt64(value * 1e9) }

    /// `   3.0 s  stream 1  VNet 1: 120 received, 2 lost, delay p50 1.2 ms p99 8.4 ms` per path.
    private func printProgress(elapsed: Double) {
        guard let progress = configuration.progress else { return }
        func ms(_ value: Double?) -> String { value.map { String(format: "%.1f ms", $0) } ?? "–" }
        for index in accountings.indices {
            for path in accountings[index].takeProgress() {
                progress(
                    String(format: "%7.1f s", elapsed)
                        + "  stream \(order[index])  VNet \(Int(path.path) + 1): \(path.received) received, \(path.lost) lost, delay p50 \(ms(path.delayMsP50)) p99 \(ms(path.delayMsP99))")
            }
        }
    }

    private var stopped = false
    private func stopCaptures() -> [InterfaceCapture.Summary] {
        guard !stopped else { return [] }
        stopped = true
        return captures.map { $0.stop() }
    }

    /// The first stream's loss report as it stands, with drops from before it was known.
    public func lossReport() -> LossReport? { accountings.isEmpty ? nil : streamReport(0) }

    private func streamReport(_ index: Int) -> LossReport {
        var accounting = accountings[index]
        if index == 0 {
            for (reason, count) in earlyDrops {
                for _ in 0..<count { accounting.drop(reason) }
            }
        }
        return accounting.lossReport()
    }

    /// Accounts one datagram, found at `offset` in the batch buffer; returns true when it was
    /// the end-of-stream message that completed the last stream.
    private func handle(_ arrival: UDPSocket.Arrival, at offset: Int, now: UInt64) -> Bool {
        buffer.withUnsafeBytes { raw -> Bool in
            let datagram = UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + arrival.count)])
            switch Wire.kind(of: datagram) {
            case .failure(let reason):
                drop(reason)
            case .success(.media), .success(.retransmission):
                switch MediaHeader.decode(datagram) {
                case .success(let header):
                    let id = header.streamID
                    if let wanted = configuration.streamID, wanted != id {
                        // Another stream: counted against the one asked for, once it is known.
                        if !accountings.isEmpty { accountings[0].record(header, bytes: arrival.count, tos: arrival.tos, arrival: now) }
                        return false
                    }
                    let index = self.index(of: id) ?? {
                        var accounting = StreamAccounting(
                            streamID: id, intervalSeconds: configuration.interval, frameTypes: configuration.frameTypes, latencySeconds: configuration.latency)
                        accounting.keepsProgressWindows = configuration.progressInterval != nil
                        accountings.append(accounting)
                        order.append(id)
                        returnAddresses.append(Array(repeating: nil, count: 256))
                        return order.count - 1
                    }()
                    accountings[index].record(header, bytes: arrival.count, tos: arrival.tos, arrival: now, kernelStamp: arrival.kernelTimeNanoseconds)
                    if let packetLog = configuration.packetLog {
                        packetLog(
                            ReceivedPacket(
                                monotonicNanoseconds: now, streamSequence: header.streamSequence, vnet: Int(header.pathID) + 1,
                                pathSequence: header.pathSequence, frame: header.frameNumber, bytes: arrival.count + IPv4UDP.headerSize,
                                tos: arrival.tos, stream: id, resent: header.origin != nil
                            ).csvRow)
                    }
                    if returnAddresses[index][Int(header.pathID)] != arrival.source { returnAddresses[index][Int(header.pathID)] = arrival.source }
                case .failure(let reason): drop(reason)
                }
            case .success(.parity):
                switch Parity.decode(datagram) {
                case .success(let parity):
                    // Parity of a stream not seen yet waits for its media (it rebuilds nothing alone).
                    guard let index = index(of: parity.streamID) else { return false }
                    accountings[index].record(parity, bytes: arrival.count, tos: arrival.tos, arrival: now, kernelStamp: arrival.kernelTimeNanoseconds)
                    if let packetLog = configuration.packetLog {
                        packetLog(
                            ReceivedPacket(
                                monotonicNanoseconds: now, streamSequence: parity.firstStreamSequence, vnet: Int(parity.pathID) + 1,
                                pathSequence: parity.pathSequence, frame: 0, bytes: arrival.count + IPv4UDP.headerSize, tos: arrival.tos,
                                stream: parity.streamID, parity: true
                            ).csvRow)
                    }
                    if returnAddresses[index][Int(parity.pathID)] != arrival.source { returnAddresses[index][Int(parity.pathID)] = arrival.source }
                case .failure(let reason): drop(reason)
                }
            case .success(.streamEnd):
                switch StreamEnd.decode(datagram) {
                case .success(let end):
                    guard let index = index(of: end.streamID) else { return false }
                    let had = accountings.allSatisfy { $0.end != nil }
                    accountings[index].record(end, arrival: now)
                    return !had && accountings.allSatisfy { $0.end != nil }
                case .failure(let reason): drop(reason)
                }
            case .success(.report), .success(.nack):
                // Reports and NACKs go the other way.
                drop(.unknownKind)
            }
            return false
        }
    }

    private func drop(_ reason: Wire.DropReason) {
        if !accountings.isEmpty { accountings[0].drop(reason) } else { earlyDrops[reason, default: 0] += 1 }
    }

    /// Where stream `id` sits in `accountings`: the last one used is tried first.
    private func index(of id: UInt32) -> Int? {
        if lastIndex < order.count && order[lastIndex] == id { return lastIndex }
        guard let found = order.firstIndex(of: id) else { return nil }
        lastIndex = found
        return found
    }

    /// Sends each stream's NACK that is due, over every VNet at once (to each path's return
    /// address), so that one dead or queueing VNet does not hold it up.
    private func sendNacks(now: UInt64) throws {
        for index in accountings.indices {
            guard let due = accountings[index].nextNackDue, due <= now, let nack = accountings[index].nack(now: now) else { continue }
            let bytes = nack.encoded
            for endpoint in Set(returnAddresses[index].compactMap { $0 }) { _ = try socket.send(bytes, to: endpoint) }
        }
    }

    /// Sends each stream's current report to its paths' return addresses; returns how many went
    /// out (a stream from a plain socket, whose source has no route back, gets none).
    private func sendReports(now: UInt64) throws -> Int {
        var sent = 0
        for (index, accounting) in accountings.enumerated() {
            let addresses = returnAddresses[index].compactMap { $0 }
            guard !addresses.isEmpty else { continue }
            let bytes = accounting.report(sequence: reportSequence, now: now).encoded
            for endpoint in Set(addresses) where try socket.send(bytes, to: endpoint) { sent += 1 }
        }
        reportSequence &+= 1
        return sent
    }
}
