import Accounting
import Capture
import Devices
import Foundation
import Pacing
import Packets

public struct ReceiverConfiguration: Sendable {
    public var listen: UDPEndpoint
    /// The stream to account; nil takes the first one that arrives.
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
    /// Frame types in coding order, from the trace the sender streams (optional).
    public var frameTypes: [UInt8]?
    /// Interfaces to capture on, and where the pcap files go (one per interface).
    public var captureInterfaces: [String] = []
    public var captureDirectory: String?
    /// Where one CSV line per media packet of the stream goes (header line first); nil: none.
    public var packetLog: (@Sendable (String) -> Void)?

    public init(listen: UDPEndpoint) { self.listen = listen }
}

/// What the receiver measured: the loss report, and what its captures and reports did.
public struct ReceiverResult: Codable, Sendable {
    public var report: LossReport?
    public var reportsSent: Int
    public var captures: [InterfaceCapture.Summary]
    /// Why the receiver stopped: `end` (the sender's message, then the linger), `idle`,
    /// `no_stream` (nothing came), `time_limit`.
    public var stoppedBy: String

    enum CodingKeys: String, CodingKey {
        case report, captures
        case reportsSent = "reports_sent"
        case stoppedBy = "stopped_by"
    }
}

/// Receives one stream on one UDP socket and accounts every packet per path.
public final class Receiver {
    public let configuration: ReceiverConfiguration
    private let socket: UDPSocket
    private var captures: [InterfaceCapture] = []
    private var accounting: StreamAccounting?
    /// Drops before the stream is known are kept here and merged in.
    private var earlyDrops: [Wire.DropReason: Int] = [:]
    /// Where each path's reports go: the source of that path's latest packet.
    private var returnAddresses: [UInt8: UDPEndpoint] = [:]
    private var reportSequence: UInt32 = 0
    private var buffer = [UInt8](repeating: 0, count: 65536)

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
        do { socket = try UDPSocket(bind: configuration.listen) } catch {
            for capture in captures { _ = capture.stop() }
            throw error
        }
    }

    /// Receives until the stream ends (or a timeout); returns the results. Captures stop too.
    public func run() throws -> ReceiverResult {
        configuration.packetLog?("mono_ns,stream_seq,vnet,path_seq,frame,bytes,tos")
        let begin = MonotonicClock.now()
        let reportPeriod = UInt64(configuration.reportMilliseconds) * 1_000_000
        var nextReport = begin + reportPeriod
        var reportsSent = 0
        var stoppedBy = "time_limit"
        var endSeen: UInt64?
        defer { if !captures.isEmpty { _ = stopCaptures() } }
        loop: while true {
            let now = MonotonicClock.now()
            if now >= nextReport {
                reportsSent += try sendReports(now: now)
                nextReport = now + reportPeriod
            }
            if let endSeen, now >= endSeen + seconds(configuration.linger) {
                stoppedBy = "end"
                break loop
            }
            if let last = accounting?.lastArrival, accounting != nil, now >= last + seconds(configuration.idleTimeout) {
                stoppedBy = "idle"
                break loop
            }
            if accounting == nil, now >= begin + seconds(configuration.startTimeout) {
                stoppedBy = "no_stream"
                break loop
            }
            if now >= begin + seconds(configuration.maximumDuration) { break loop }
            let readable = try waitForReadable([socket.fileDescriptor], timeoutNanoseconds: Int64(nextReport - min(now, nextReport)))
            guard readable[0] else { continue }
            while let arrival = try buffer.withUnsafeMutableBytes({ try socket.receive(into: $0) }) {
                let at = MonotonicClock.now()
                if handle(arrival, at: at), endSeen == nil { endSeen = at }
            }
        }
        reportsSent += try sendReports(now: MonotonicClock.now())
        let summaries = stopCaptures()
        return ReceiverResult(report: lossReport(), reportsSent: reportsSent, captures: summaries, stoppedBy: stoppedBy)
    }

    private func seconds(_ value: Double) -> UInt64 { UInt64(value * 1e9) }

    private var stopped = false
    private func stopCaptures() -> [InterfaceCapture.Summary] {
        guard !stopped else { return [] }
        stopped = true
        return captures.map { $0.stop() }
    }

    /// The loss report as it stands, with drops from before the stream was known.
    public func lossReport() -> LossReport? {
        guard var accounting else { return nil }
        for (reason, count) in earlyDrops {
            for _ in 0..<count { accounting.drop(reason) }
        }
        return accounting.lossReport()
    }

    /// Accounts one datagram; returns true when it was the (first) end-of-stream message.
    private func handle(_ arrival: UDPSocket.Arrival, at now: UInt64) -> Bool {
        buffer.withUnsafeBytes { raw -> Bool in
            let datagram = UnsafeRawBufferPointer(rebasing: raw[0..<arrival.count])
            switch Wire.kind(of: datagram) {
            case .failure(let reason):
                drop(reason)
            case .success(.media):
                switch MediaHeader.decode(datagram) {
                case .success(let header):
                    if accounting == nil, configuration.streamID == nil || configuration.streamID == header.streamID {
                        accounting = StreamAccounting(
                            streamID: header.streamID, intervalSeconds: configuration.interval, frameTypes: configuration.frameTypes)
                    }
                    guard accounting != nil else { return false }
                    accounting!.record(header, bytes: arrival.count, tos: arrival.tos, arrival: now, kernelStamp: arrival.kernelTimeNanoseconds)
                    if header.streamID == accounting!.streamID, let packetLog = configuration.packetLog {
                        packetLog(
                            "\(now),\(header.streamSequence),\(Int(header.pathID) + 1),\(header.pathSequence),\(header.frameNumber),\(arrival.count + IPv4UDP.headerSize),\(arrival.tos.map(String.init) ?? "")")
                    }
                    if header.streamID == accounting!.streamID { returnAddresses[header.pathID] = arrival.source }
                case .failure(let reason): drop(reason)
                }
            case .success(.streamEnd):
                switch StreamEnd.decode(datagram) {
                case .success(let end):
                    guard accounting != nil else { return false }
                    let had = accounting!.end != nil
                    accounting!.record(end, arrival: now)
                    return !had && accounting!.end != nil
                case .failure(let reason): drop(reason)
                }
            case .success(.report):
                drop(.unknownKind)  // reports go the other way
            }
            return false
        }
    }

    private func drop(_ reason: Wire.DropReason) {
        if accounting != nil { accounting!.drop(reason) } else { earlyDrops[reason, default: 0] += 1 }
    }

    /// Sends the current report to every path's return address; returns how many went out.
    private func sendReports(now: UInt64) throws -> Int {
        guard let accounting, !returnAddresses.isEmpty else { return 0 }
        let bytes = accounting.report(sequence: reportSequence, now: now).encoded
        reportSequence &+= 1
        var sent = 0
        for endpoint in Set(returnAddresses.values) where try socket.send(bytes, to: endpoint) { sent += 1 }
        return sent
    }
}
