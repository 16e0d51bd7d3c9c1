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
            the missed packets in a burst; the summary counts it. Prints a summary per stream \
            (--json: the summary as JSON).
            """)

    @Option(help: ArgumentHelp("Where to send (the receiver's address and port).", valueName: "address:port"))
    var to: UDPEndpoint

    @Option(
        name: .customLong("tt"),
        help: ArgumentHelp("A stream's TT mark: a DSCP name (EF, AF11) or the TOS byte (0xb8). Repeat for more streams.", valueName: "mark"))
    var marks: [String]

    @Option(name: .customLong("pps"), help: ArgumentHelp("Packets per second of each stream (the mean, with Poisson arrivals).", valueName: "pps"))
    var packetsPerSecond: Double = 450

    @Option(help: ArgumentHelp("IPv4 bytes of every packet (headers included).", valueName: "bytes"))
    var packetBytes: Int = 256

    @Option(help: ArgumentHelp("Packets per stream.", valueName: "n"))
    var count: Int = 10_000

    @Option(help: "How packets are spaced: constant, or poisson (exponential gaps).")
    var arrivals: Arrivals = .constant

    @Option(help: ArgumentHelp("Seed of the Poisson arrivals (stream N uses seed + N - 1).", valueName: "n"))
    var seed: UInt64 = 1

    @Option(help: ArgumentHelp("CLOCK_MONOTONIC nanoseconds at which the first packets are due (default: at once).", valueName: "ns"))
    var startAt: UInt64?

    @Option(
        help: ArgumentHelp(
            "Write one CSV line per packet sent to this file (CLOCK_MONOTONIC send time, stream, sequence, bytes, TOS).", valueName: "file"),
        completion: .file(extensions: ["csv"]))
    var packetLog: String?

    @OptionGroup(title: "Output (the summary)") var output: OutputOptions

    func validate() throws {
        if marks.isEmpty { throw ValidationError("give at least one --tt.") }
        for mark in marks { _ = try parseMark(mark) }
    }

    func run() throws {
        var configuration = MarkedSenderConfiguration(destination: to, marks: try marks.map(parseMark))
        configuration.packetsPerSecond = packetsPerSecond
        configuration.packetBytes = packetBytes
        configuration.count = count
        configuration.arrivals = arrivals
        configuration.seed = seed
        configuration.startAt = startAt
        let packetFile = try packetLog.map { try LineFile(path: $0) }
        if let packetFile { configuration.packetLog = { packetFile.write($0) } }
        let summary = try MarkedSender(configuration).run()
        packetFile?.close()
        try output.emit(summary)
        var lines = [
            "sent to \(summary.destination) in \(decimal(summary.durationS, 3)) s, \(summary.packetBytes)-byte packets, "
                + "\(number(summary.packetsPerSecond)) packets/s per stream (\(summary.arrivals.rawValue))"
                + (summary.scheduleShifts > 0 ? "; fell behind \(summary.scheduleShifts) times, \(decimal(summary.scheduleShiftS, 3)) s in all" : "")
        ]
        for stream in summary.streams {
            lines.append(
                "  stream \(stream.streamID) \(stream.mark): \(stream.packets) packets"
                    + (stream.localDrops > 0 ? ", \(stream.localDrops) not taken by the kernel" : "")
                    + ", pacing p99 \(decimal(stream.pacing.p99Microseconds, 1)) us late")
        }
        output.say(lines.joined(separator: "\n"))
    }

    private func parseMark(_ text: String) throws -> TrafficMark {
        do { return try TrafficMark(parsing: text) } catch { throw ValidationError("--tt \(text): \(error)") }
    }
}

extension Arrivals: ExpressibleByArgument {}

func writeText(_ text: String, to path: String) throws {
    do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
        throw RuntimeError("cannot write \(path): \(error.localizedDescription)")
    }
}

/// A failure while a command runs (not bad usage): one line that names what failed, exit
/// status 1, no usage text. Bad usage is argument-parser's `ValidationError` (exit 64).
struct RuntimeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
