import ArgumentParser
import Devices
import Foundation
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

    @Option(help: "Stream constant bit rate instead of a trace (e.g. 320kbit), at --fps (default 25) for --duration.", transform: bitRate)
    var cbr: BitRate?

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

    @Option(help: "Fixed split between the VNets, one weight each (1:1, 1:0, 3:1).")
    var split: String?

    @Option(help: "The largest IPv4 packet to send (default: the smallest tun MTU).")
    var mtu: Int?

    @Option(help: "The stream's id, carried in every packet.")
    var streamID: UInt32 = 1

    @Option(help: "Write JSON lines to this file: per VNet and second what was sent, and every report.")
    var log: String?

    @Option(help: "Write the summary as JSON to this file.")
    var json: String?

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
        _ = try mark()
    }

    func mark() throws -> TrafficMark {
        do { return try TrafficMark(parsing: tt) } catch let error as TrafficMark.ParseError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let frames: FrameTrace =
            if let cbr { try CBRSource.trace(rate: cbr, framesPerSecond: input.fps ?? 25, duration: duration) } else {
                try input.read(trace!)
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
        let weights = split.flatMap(SplitRatio.init)?.weights ?? Array(repeating: 1, count: routes.count)
        var configuration = SenderConfiguration(trace: frames, routes: routes, destination: to, split: weights)
        configuration.sourcePort = port
        configuration.mark = try mark()
        configuration.mtu = mtu
        configuration.streamID = streamID
        let logFile = try log.map { try LineWriter(path: $0) }
        if let logFile { configuration.log = { logFile.write($0) } }
        let sender = try Sender(configuration)
        let summary = try sender.run()
        logFile?.close()
        if let json { try writeText(try encodeJSON(summary) + "\n", to: json) }
        var lines = ["sent \(summary.frames) frames, \(summary.packets) packets in \(decimal(summary.durationS, 3)) s, marked \(try mark())"]
        for vnet in summary.vnets {
            lines.append(
                "  VNet \(vnet.vnet) (\(vnet.tun), from \(vnet.source)): \(vnet.packets) packets, \(vnet.bytes) bytes, "
                    + "\(vnet.reportsReceived) reports received" + (vnet.localDrops > 0 ? ", \(vnet.localDrops) not taken by the tun" : ""))
        }
        lines.append(
            "  pacing: p50 \(decimal(summary.pacing.p50Microseconds, 1)) us, p99 \(decimal(summary.pacing.p99Microseconds, 1)) us, "
                + "max \(decimal(summary.pacing.maxMicroseconds, 1)) us late")
        print(lines.joined(separator: "\n"))
    }
}

struct Recv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive a stream on one UDP socket, account every packet per path and interval, and report back over every VNet.",
        discussion: """
            Stops by itself: after the sender's end-of-stream message (plus --linger), or when \
            nothing arrives for --idle-timeout, or when no stream starts within --start-timeout. \
            Prints the loss table as Markdown; --json and --csv write it to files.
            """)

    @Option(help: "Address and port to receive on (0.0.0.0 for any address).")
    var listen: UDPEndpoint = UDPEndpoint(address: IPv4Address(0), port: 5004)

    @Option(help: "Length of the accounting intervals in seconds (binned by send time).")
    var interval: Double = 30

    @Option(help: "Milliseconds between reports to the sender.")
    var reportMs: Int = 100

    @Option(help: "The stream to account (default: the first that arrives).")
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
        let receiver = try Receiver(configuration)
        let result = try receiver.run()
        if let json { try writeText(try encodeJSON(result) + "\n", to: json) }
        guard let report = result.report else {
            throw ValidationError("no stream arrived on \(listen) within \(decimal(startTimeout, 0)) s")
        }
        if let csv { try writeText(report.csv, to: csv) }
        print(report.markdown, terminator: "")
        for capture in result.captures {
            print("captured \(capture.packets) packets on \(capture.interface) into \(capture.file)")
        }
    }
}

/// Writes lines to a file as they come (the log of a long run survives an interruption).
final class LineWriter {
    private let handle: FileHandle

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw ValidationError("cannot create \(path)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    func write(_ line: String) { handle.write(Data((line + "\n").utf8)) }
    func close() { try? handle.close() }
}

func writeText(_ text: String, to path: String) throws {
    do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw ValidationError("cannot write \(path): \(error.localizedDescription)")
    }
}
