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
            the missed packets in a burst; the summary counts it. Prints a JSON summary.
            """)

    @Option(help: "Where to send (the receiver's address and port).")
    var to: UDPEndpoint

    @Option(name: .customLong("tt"), help: "A stream's TT mark: a DSCP name (EF, AF11) or the TOS byte (0xb8). Repeat for more streams.")
    var marks: [String]

    @Option(name: .customLong("pps"), help: "Packets per second of each stream (the mean, with Poisson arrivals).")
    var packetsPerSecond: Double = 450

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
        throw RuntimeError("cannot write \(path): \(error.localizedDescription)")
    }
}

/// A failure while a command runs (not bad usage): one line that names what failed, exit
/// status 1, no usage text. Bad usage is argument-parser's `ValidationError` (exit 64).
struct RuntimeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
