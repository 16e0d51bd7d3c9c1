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

struct Recv: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Receive streams on one UDP socket, account every packet per stream, path and interval, and report back over every VNet.",
        discussion: """
            Stops by itself: after the sender's end-of-stream message (plus --linger), or when \
            nothing arrives for --idle-timeout, or when no stream starts within --start-timeout. \
            Prints each stream's loss table as Markdown; --json prints the results of every stream \
            (loss tables, paths, frames, captures) as JSON instead, --csv writes the first \
            stream's table.
            """)

    @Option(help: ArgumentHelp("Address and port to receive on (0.0.0.0 for any address).", valueName: "address:port"))
    var listen: UDPEndpoint = UDPEndpoint(address: IPv4Address(0), port: 5004)

    @Option(
        help: ArgumentHelp(
            "A multicast group to join on every interface with an IPv4 address: the stream sent to it in a VNet that carries it ([[vnet.group]]).",
            valueName: "address"))
    var join: String?

    @Option(help: ArgumentHelp("Length of the accounting intervals (binned by send time) (default: 30s).", valueName: "time"), transform: timeSeconds)
    var interval: Double = 30

    @Option(help: ArgumentHelp("Milliseconds between reports to the sender.", valueName: "ms"))
    var reportMs: Int = 100

    @Option(help: ArgumentHelp("The stream to account (default: every stream that arrives).", valueName: "id"))
    var streamID: UInt32?

    @Option(help: ArgumentHelp("The trace the sender streams: names the type of frames of which nothing arrived.", valueName: "file"), completion: .file())
    var trace: String?

    @OptionGroup var input: TraceInputOptions

    @Option(help: ArgumentHelp("Stop when nothing arrives for this long after the stream started (default: 5s).", valueName: "time"), transform: timeSeconds)
    var idleTimeout: Double = 5

    @Option(
        help: ArgumentHelp(
            "The playout deadline after each frame's time (default: 200ms): what arrives later is late, and NACKs ask only for what can still make it.",
            valueName: "time"),
        transform: timeSeconds)
    var latency: Double = 0.2

    @Option(help: ArgumentHelp("Stop when no stream starts within this time (default: 60s).", valueName: "time"), transform: timeSeconds)
    var startTimeout: Double = 60

    @Option(help: ArgumentHelp("How long to wait for stragglers after the sender's end-of-stream message (default: 1s).", valueName: "time"), transform: timeSeconds)
    var linger: Double = 1

    @OptionGroup(title: "Output (the results)") var output: OutputOptions

    @Option(help: ArgumentHelp("Write the loss table as CSV to this file.", valueName: "file"), completion: .file(extensions: ["csv"]))
    var csv: String?

    @Option(help: ArgumentHelp("Capture what arrives into DIR/INTERFACE.pcap with libpcap (needs root).", valueName: "dir"), completion: .directory)
    var pcapDir: String?

    @Option(
        name: .customLong("capture"),
        help: ArgumentHelp("An interface to capture on (repeat; default with --pcap-dir: every interface but lo).", valueName: "interface"))
    var captureInterfaces: [String] = []

    @Option(
        help: ArgumentHelp(
            "Write one CSV line per packet received to this file (CLOCK_MONOTONIC arrival, stream and path sequence, VNet, bytes, TOS, stream id).",
            valueName: "file"),
        completion: .file(extensions: ["csv"]))
    var packetLog: String?

    @Option(
        help: ArgumentHelp(
            "Every this long (e.g. 1s), print per stream and path what arrived and was lost since the previous line, with delay p50/p99 (like iperf3 -i).",
            valueName: "time"),
        transform: timeSeconds)
    var progress: Double?

    func validate() throws {
        if !(interval > 0) { throw ValidationError("--interval must be a positive number of seconds.") }
        if reportMs <= 0 { throw ValidationError("--report-ms must be positive.") }
        if let join {
            guard IPv4Address(join)?.isRoutableMulticast == true else {
                throw ValidationError("--join: '\(join)' is not a routable IPv4 multicast address (224.0.1.0-239.255.255.255).")
            }
        }
        if !(latency > 0 && latency <= 60) { throw ValidationError("--latency must be above 0 and at most 60s.") }
        if !captureInterfaces.isEmpty && pcapDir == nil { throw ValidationError("--capture needs --pcap-dir DIR.") }
        if let progress, !(progress > 0) { throw ValidationError("--progress must be a positive time, like 1s.") }
    }

    func run() throws {
        var configuration = ReceiverConfiguration(listen: listen)
        configuration.group = join.flatMap(IPv4Address.init)
        configuration.interval = interval
        configuration.latency = latency
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
        if let progress {
            configuration.progressInterval = progress
            let output = output
            configuration.progress = { line in output.say(line) }
        }
        let receiver = try Receiver(configuration)
        let result = try receiver.run()
        packetFile?.close()
        try output.emit(result)
        guard let report = result.report else {
            throw RuntimeError("no stream arrived on \(listen) within \(decimal(startTimeout, 0)) s")
        }
        if let csv { try writeText(report.csv, to: csv) }
        for stream in result.streams {
            if result.streams.count > 1 {
                let marks = Set(stream.paths.flatMap { $0.tosSeen.keys }).sorted().compactMap { UInt8($0).map { TrafficMark(tos: $0).description } }
                output.say("stream \(stream.streamID) (\(marks.joined(separator: ", "))):")
            }
            output.say(String(stream.markdown.dropLast(stream.markdown.hasSuffix("\n") ? 1 : 0)))
        }
        for capture in result.captures {
            output.say("captured \(capture.packets) packets on \(capture.interface) into \(capture.file)")
        }
    }
}
