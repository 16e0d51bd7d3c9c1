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
            Prints each stream's loss table as Markdown; --json writes every stream's, --csv the \
            first stream's.
            """)

    @Option(help: "Address and port to receive on (0.0.0.0 for any address).")
    var listen: UDPEndpoint = UDPEndpoint(address: IPv4Address(0), port: 5004)

    @Option(help: "Length of the accounting intervals in seconds (binned by send time).", transform: timeSeconds)
    var interval: Double = 30

    @Option(help: "Milliseconds between reports to the sender.")
    var reportMs: Int = 100

    @Option(help: "The stream to account (default: every stream that arrives).")
    var streamID: UInt32?

    @Option(help: "The trace the sender streams: names the type of frames of which nothing arrived.")
    var trace: String?

    @OptionGroup var input: TraceInputOptions

    @Option(help: "Stop when nothing arrives for this many seconds after the stream started.", transform: timeSeconds)
    var idleTimeout: Double = 5

    @Option(help: "Stop when no stream starts within this many seconds.", transform: timeSeconds)
    var startTimeout: Double = 60

    @Option(help: "Seconds to wait for stragglers after the sender's end-of-stream message.", transform: timeSeconds)
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

    @Option(
        help: "Every this long (e.g. 1s), print per stream and path what arrived and was lost since the previous line, with delay p50/p99 (like iperf3 -i).",
        transform: timeSeconds)
    var progress: Double?

    func validate() throws {
        if !(interval > 0) { throw ValidationError("--interval must be a positive number of seconds.") }
        if reportMs <= 0 { throw ValidationError("--report-ms must be positive.") }
        if !captureInterfaces.isEmpty && pcapDir == nil { throw ValidationError("--capture needs --pcap-dir DIR.") }
        if let progress, !(progress > 0) { throw ValidationError("--progress must be a positive time, like 1s.") }
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
        if let progress {
            configuration.progressInterval = progress
            // Written through at once (print would hold the lines back when stdout is a pipe).
            configuration.progress = { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        }
        let receiver = try Receiver(configuration)
        let result = try receiver.run()
        packetFile?.close()
        if let json { try writeText(try encodeJSON(result) + "\n", to: json) }
        guard let report = result.report else {
            throw RuntimeError("no stream arrived on \(listen) within \(decimal(startTimeout, 0)) s")
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
