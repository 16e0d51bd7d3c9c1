import ArgumentParser
import Control
import Devices
import Foundation
import RunRecords
import Pacing
import Packets
import Splitting
import Streaming
import Traces
import Units

/// `--vnet tun0` or `--vnet tun0=198.18.1.2`: a tun interface and the sender's address behind it.
struct VNetArgument: ExpressibleByArgument {
    var tun: String
    var source: IPv4Address?

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
        guard let name = parts.first, !name.isEmpty else { return nil }
        tun = name
        if parts.count == 2 {
            guard let address = IPv4Address(parts[1]) else { return nil }
            source = address
        }
    }
}

extension UDPEndpoint: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stream a trace in real time, marked and split across one tun interface per VNet.",
        discussion: """
            Writes whole IPv4/UDP packets (TOS byte = the TT mark) into each VNet's tun interface, \
            which policy routing carries into that VNet. Reports from the receiver come back over \
            every VNet into the same tuns. Needs root (CAP_NET_ADMIN) and existing tun interfaces \
            with addresses (`vnetstream lab up` makes them).
            """)

    @Argument(help: "The frame trace to stream (any format `trace stats` reads); or use --cbr.")
    var trace: String?

    @OptionGroup var input: TraceInputOptions

    @Option(
        help: ArgumentHelp(
            "Stream constant bit rate instead of a trace (e.g. 320kbit), at --fps (default 25) for --duration; or max.",
            discussion: """
                max: no pacing; packets of --payload-bytes back to back, as fast as the tuns take \
                them, for --duration (a throughput test: see scripts/bench throughput).
                """),
        transform: { $0 == "max" ? .max : .rate(try bitRate($0)) })
    var cbr: CBRChoice?

    @Option(help: "UDP payload bytes of every packet with --cbr max (the 36-byte VNetStream header included).")
    var payloadBytes: Int = 1200

    @Flag(help: "With --cbr max: one write per packet, without UDP segmentation offload through the tun.")
    var noSegmentation = false

    @Option(help: "Seconds of CBR to stream (with --cbr).")
    var duration: Double = 150

    @Option(name: .customLong("vnet"), help: "A VNet's tun interface, optionally =SOURCE address (default: the tun's peer, or the next address in its prefix). Repeat for each VNet.")
    var vnets: [VNetArgument] = []

    @Option(help: "The receiver's address and port (e.g. 198.18.100.1:5004).")
    var to: UDPEndpoint

    @Option(help: "The UDP source port of media packets; reports come back to it.")
    var port: UInt16 = 5005

    @Option(help: "The TT mark: a DSCP name (EF, AF41, CS5, ...) or the TOS byte as a number (184, 0xb8).")
    var tt: String = "BE"

    @Option(
        help: ArgumentHelp(
            "How to spread packets over the VNets: adaptive, static, uni or duplicate.",
            discussion: """
                adaptive: the controller splits by each VNet's measured capacity and leaves a dead \
                VNet (Docs/controller.md). static: a fixed --split. uni: everything on VNet \
                --uni. duplicate: every packet on every VNet. Default: static when --split is \
                given, else adaptive.
                """))
    var mode: SendMode.Kind?

    @Option(help: "Fixed split between the VNets for --mode static, one weight each (1:1, 3:1).")
    var split: String?

    @Option(help: "The VNet (1-based, in --vnet order) that carries everything in --mode uni.")
    var uni: Int = 1

    @Option(help: "Seconds between each live VNet's probe trains in --mode adaptive.")
    var probeInterval: Double = 1

    @Option(help: "The largest IPv4 packet to send (default: the smallest tun MTU).")
    var mtu: Int?

    @Option(help: "The stream's id, carried in every packet.")
    var streamID: UInt32 = 1

    @Option(help: "Write JSON lines to this file: per VNet and second what was sent, and every report.")
    var log: String?

    @Option(help: "Write the summary as JSON to this file.")
    var json: String?

    @Option(help: "Write one CSV line per packet sent to this file (time, stream and path sequence, VNet, bytes, copy).")
    var packetLog: String?

    @Option(help: "Send the first frame at this CLOCK_MONOTONIC time, in nanoseconds (to share time zero with a lab schedule).")
    var startAt: UInt64?

    var resolvedMode: SendMode.Kind { mode ?? (split != nil ? .static : .adaptive) }

    /// The one send mode these options name.
    var sendMode: SendMode {
        switch resolvedMode {
        case .adaptive: .adaptive
        case .static: .fixed(split.flatMap(SplitRatio.init) ?? SplitRatio(weights: Array(repeating: 1, count: vnets.count)))
        case .uni: .uni(uni)
        case .duplicate: .duplicate
        }
    }

    func validate() throws {
        if trace == nil && cbr == nil { throw ValidationError("Give a trace file or --cbr RATE.") }
        if trace != nil && cbr != nil { throw ValidationError("Give a trace file or --cbr, not both.") }
        if vnets.isEmpty { throw ValidationError("Name at least one VNet with --vnet TUN.") }
        if let split {
            guard let ratio = SplitRatio(split) else {
                throw ValidationError("--split takes one non-negative weight per VNet, like 1:1 or 3:1, not '\(split)'.")
            }
            if ratio.weights.count != vnets.count {
                throw ValidationError("--split \(split) has \(ratio.weights.count) weights for \(vnets.count) VNets.")
            }
        }
        if !(duration > 0) { throw ValidationError("--duration must be positive.") }
        if split != nil && resolvedMode != .static { throw ValidationError("--split goes with --mode static, not --mode \(resolvedMode.rawValue).") }
        if resolvedMode == .uni && !(1...max(1, vnets.count)).contains(uni) {
            throw ValidationError("--uni \(uni) names no VNet: give 1 to \(vnets.count).")
        }
        if !(probeInterval > 0) { throw ValidationError("--probe-interval must be positive.") }
        if let startAt, startAt < MonotonicClock.now() {
            throw ValidationError("--start-at \(startAt) has passed (the monotonic clock reads \(MonotonicClock.now())).")
        }
        _ = try mark()
    }

    func mark() throws -> TrafficMark {
        do { return try TrafficMark(parsing: tt) } catch let error as TrafficMark.ParseError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let frames: FrameTrace =
            switch cbr {
            case .rate(let rate): try CBRSource.trace(rate: rate, framesPerSecond: input.fps ?? 25, duration: duration)
            case .max: FrameTrace(frames: [], framesPerSecond: 25)
            case nil: try input.read(trace!)
            }
        let routes = try vnets.map { vnet -> VNetRoute in
            if let source = vnet.source { return VNetRoute(tun: vnet.tun, source: source) }
            guard let address = InterfaceAddress.of(vnet.tun) else {
                throw SenderError("\(vnet.tun) has no IPv4 address: give the sender's address with --vnet \(vnet.tun)=ADDRESS")
            }
            guard let far = address.farEnd else {
                throw SenderError("cannot tell the sender's address behind \(vnet.tun) (\(address.local)/\(address.prefixLength)): give it with --vnet \(vnet.tun)=ADDRESS")
            }
            return VNetRoute(tun: vnet.tun, source: far)
        }
        var configuration = SenderConfiguration(trace: frames, routes: routes, destination: to, mode: sendMode)
        configuration.adaptive.probeInterval = probeInterval
        configuration.startAt = startAt
        configuration.sourcePort = port
        configuration.mark = try mark()
        configuration.mtu = mtu
        configuration.streamID = streamID
        configuration.segmentationOffload = cbr == .max && !noSegmentation
        let logFile = try log.map { try LineFile(path: $0) }
        if let logFile { configuration.log = { logFile.write($0) } }
        let packetFile = try packetLog.map { try LineFile(path: $0) }
        if let packetFile { configuration.packetLog = { packetFile.write($0) } }
        let sender = try Sender(configuration)
        let summary = cbr == .max ? try sender.runUnpaced(payloadBytes: payloadBytes, duration: duration) : try sender.run()
        logFile?.close()
        packetFile?.close()
        if let json { try writeText(try encodeJSON(summary) + "\n", to: json) }
        var lines = [
            "sent \(summary.frames) frames, \(summary.packets) packets in \(decimal(summary.durationS, 3)) s, marked \(try mark()), mode \(resolvedMode.rawValue)"
        ]
        for vnet in summary.vnets {
            lines.append(
                "  VNet \(vnet.vnet) (\(vnet.tun), from \(vnet.source)): \(vnet.packets) packets, \(vnet.bytes) bytes, "
                    + "\(vnet.reportsReceived) reports received" + (vnet.copies > 0 ? ", \(vnet.copies) of the packets copies" : "")
                    + (vnet.localDrops > 0 ? ", \(vnet.localDrops) not taken by the tun" : ""))
        }
        if let offload = summary.offload { lines.append("  into the tuns: \(offload)") }
        lines.append(
            "  pacing: p50 \(decimal(summary.pacing.p50Microseconds, 1)) us, p99 \(decimal(summary.pacing.p99Microseconds, 1)) us, "
                + "max \(decimal(summary.pacing.maxMicroseconds, 1)) us late")
        print(lines.joined(separator: "\n"))
    }
}

enum CBRChoice: Equatable {
    case rate(BitRate)
    case max
}

extension SendMode.Kind: ExpressibleByArgument {}

struct Recv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive streams on one UDP socket, account every packet per stream, path and interval, and report back over every VNet.",
        discussion: """
            Stops by itself: after the sender's end-of-stream message (plus --linger), or when \
            nothing arrives for --idle-timeout, or when no stream starts within --start-timeout. \
            Prints each stream's loss table as Markdown; --json writes every stream's, --csv the \
            first stream's.
            """)

    @Option(help: "Address and port to receive on (0.0.0.0 for any address).")
    var listen: UDPEndpoint = UDPEndpoint(address: IPv4Address(0), port: 5004)

    @Option(help: "Length of the accounting intervals in seconds (binned by send time).")
    var interval: Double = 30

    @Option(help: "Milliseconds between reports to the sender.")
    var reportMs: Int = 100

    @Option(help: "The stream to account (default: every stream that arrives).")
    var streamID: UInt32?

    @Option(help: "The trace the sender streams: names the type of frames of which nothing arrived.")
    var trace: String?

    @OptionGroup var input: TraceInputOptions

    @Option(help: "Stop when nothing arrives for this many seconds after the stream started.")
    var idleTimeout: Double = 5

    @Option(help: "Stop when no stream starts within this many seconds.")
    var startTimeout: Double = 60

    @Option(help: "Seconds to wait for stragglers after the sender's end-of-stream message.")
    var linger: Double = 1

    @Option(help: "Write the results (loss table, paths, frames, captures) as JSON to this file.")
    var json: String?

    @Option(help: "Write the loss table as CSV to this file.")
    var csv: String?

    @Option(help: "Capture what arrives into DIR/INTERFACE.pcap with libpcap (needs root).")
    var pcapDir: String?

    @Option(name: .customLong("capture"), help: "An interface to capture on (repeat; default with --pcap-dir: every interface but lo).")
    var captureInterfaces: [String] = []

    @Option(help: "Write one CSV line per packet received to this file (CLOCK_MONOTONIC arrival, stream and path sequence, VNet, bytes, TOS, stream id).")
    var packetLog: String?

    func validate() throws {
        if !(interval > 0) { throw ValidationError("--interval must be a positive number of seconds.") }
        if reportMs <= 0 { throw ValidationError("--report-ms must be positive.") }
        if !captureInterfaces.isEmpty && pcapDir == nil { throw ValidationError("--capture needs --pcap-dir DIR.") }
    }

    func run() throws {
        var configuration = ReceiverConfiguration(listen: listen)
        configuration.interval = interval
        configuration.reportMilliseconds = reportMs
        configuration.streamID = streamID
        configuration.idleTimeout = idleTimeout
        configuration.startTimeout = startTimeout
        configuration.linger = linger
        if let trace {
            configuration.frameTypes = try input.read(trace).frames.map { UInt8(ascii: $0.type.rawValue.unicodeScalars.first!) }
        }
        if let pcapDir {
            configuration.captureDirectory = pcapDir
            configuration.captureInterfaces =
                captureInterfaces.isEmpty
                ? ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/class/net")) ?? []).filter { $0 != "lo" }.sorted()
                : captureInterfaces
        }
        let packetFile = try packetLog.map { try LineFile(path: $0) }
        if let packetFile { configuration.packetLog = { packetFile.write($0) } }
        let receiver = try Receiver(configuration)
        let result = try receiver.run()
        packetFile?.close()
        if let json { try writeText(try encodeJSON(result) + "\n", to: json) }
        guard let report = result.report else {
            throw ValidationError("no stream arrived on \(listen) within \(decimal(startTimeout, 0)) s")
        }
        if let csv { try writeText(report.csv, to: csv) }
        for stream in result.streams {
            if result.streams.count > 1 {
                let marks = Set(stream.paths.flatMap { $0.tosSeen.keys }).sorted().compactMap { UInt8($0).map { TrafficMark(tos: $0).description } }
                print("stream \(stream.streamID) (\(marks.joined(separator: ", "))):")
            }
            print(stream.markdown, terminator: "")
        }
        for capture in result.captures {
            print("captured \(capture.packets) packets on \(capture.interface) into \(capture.file)")
        }
    }
}

struct SendMarked: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send-marked",
        abstract: "Send streams of equal packets from plain UDP sockets, each marked with its own TT field (IP_TOS).",
        discussion: """
            What any application can do: no tun, no split. The network picks each packet's VNet \
            (a lab whose topology declares [[class]]es classifies by the mark at its edge). One \
            stream per --tt, stream ids 1, 2, ... in that order, all interleaved on their \
            schedules; `vnetstream recv` accounts each. A sender that falls more than 50 ms \
            behind (a stalled machine) moves the rest of its schedule later rather than sending \
            the missed packets in a burst; the summary counts it. Prints a JSON summary.
            """)

    @Option(help: "Where to send (the receiver's address and port).")
    var to: UDPEndpoint

    @Option(name: .customLong("tt"), help: "A stream's TT mark: a DSCP name (EF, AF11) or the TOS byte (0xb8). Repeat for more streams.")
    var marks: [String]

    @Option(help: "Packets per second of each stream (the mean, with Poisson arrivals).")
    var rate: Double = 450

    @Option(help: "IPv4 bytes of every packet (headers included).")
    var packetBytes: Int = 256

    @Option(help: "Packets per stream.")
    var count: Int = 10_000

    @Option(help: "How packets are spaced: constant, or poisson (exponential gaps).")
    var arrivals: Arrivals = .constant

    @Option(help: "Seed of the Poisson arrivals (stream N uses seed + N - 1).")
    var seed: UInt64 = 1

    @Option(help: "CLOCK_MONOTONIC nanoseconds at which the first packets are due (default: at once).")
    var startAt: UInt64?

    @Option(help: "Write one CSV line per packet sent to this file (CLOCK_MONOTONIC send time, stream, sequence, bytes, TOS).")
    var packetLog: String?

    @Option(help: "Write the summary as JSON to this file too.")
    var json: String?

    func validate() throws {
        if marks.isEmpty { throw ValidationError("give at least one --tt.") }
        for mark in marks { _ = try parseMark(mark) }
    }

    func run() throws {
        var configuration = MarkedSenderConfiguration(destination: to, marks: try marks.map(parseMark))
        configuration.packetsPerSecond = rate
        configuration.packetBytes = packetBytes
        configuration.count = count
        configuration.arrivals = arrivals
        configuration.seed = seed
        configuration.startAt = startAt
        let packetFile = try packetLog.map { try LineFile(path: $0) }
        if let packetFile { configuration.packetLog = { packetFile.write($0) } }
        let summary = try MarkedSender(configuration).run()
        packetFile?.close()
        let text = try encodeJSON(summary)
        if let json { try writeText(text + "\n", to: json) }
        print(text)
    }

    private func parseMark(_ text: String) throws -> TrafficMark {
        do { return try TrafficMark(parsing: text) } catch { throw ValidationError("--tt \(text): \(error)") }
    }
}

extension Arrivals: ExpressibleByArgument {}

func writeText(_ text: String, to path: String) throws {
    do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw ValidationError("cannot write \(path): \(error.localizedDescription)")
    }
}
