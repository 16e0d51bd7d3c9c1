import ArgumentParser
import Devices
import Foundation
import Pacing
import Packets
import Voice

struct VoiceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "voice",
        abstract: "A G.711 voice call over RTP: send one, or receive one and score it with the E-model.",
        discussion: """
            RTP as RFC 3550 has it (payload type 0, 160-byte payloads every 20 ms, real sequence \
            numbers and timestamps), so that tcpdump (-T rtp) and Wireshark decode it. The payload \
            is µ-law silence carrying the send time in its first 8 bytes. The receiver counts loss, \
            RFC 3550 jitter, one-way delay and packets too late for a fixed playout buffer, and \
            gives R and MOS (ITU-T G.107) per --bin.
            """,
        subcommands: [Send.self, Receive.self])

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a G.711 call over RTP for --duration, then stop.")

        @Option(help: ArgumentHelp("The receiver.", valueName: "address:port"), transform: endpoint)
        var to: UDPEndpoint

        @Option(help: ArgumentHelp("The UDP source port (0: any).", valueName: "port"))
        var port: UInt16 = 0

        @Option(help: ArgumentHelp("How long the call lasts.", valueName: "time"), transform: timeSeconds)
        var duration: Double = 30

        @Option(help: ArgumentHelp("The TT mark: a DSCP name (EF) or the TOS byte.", valueName: "mark"))
        var tt: String = "EF"

        @Option(help: ArgumentHelp("The RTP SSRC (default: random).", valueName: "n"))
        var ssrc: UInt32?

        @Option(help: ArgumentHelp("Send the first packet at this CLOCK_MONOTONIC time, ns (an experiment's time zero; default: now).", valueName: "ns"))
        var startAt: UInt64?

        @OptionGroup(title: "Output (what was sent)") var output: OutputOptions

        struct Sent: Encodable {
            var packets: Int
            var unsent: Int
            var ssrc: UInt32
            enum CodingKeys: String, CodingKey { case packets, unsent, ssrc }
        }

        func validate() throws {
            if !(duration > 0) || duration > 86400 { throw ValidationError("--duration must be above 0 and at most 86400 seconds.") }
        }

        func run() throws {
            let mark: TrafficMark
            do { mark = try TrafficMark(parsing: tt) } catch { throw ValidationError("--tt \(tt): \(error)") }
            let socket = try UDPSocket(bind: UDPEndpoint(address: IPv4Address(0), port: port))
            try socket.setTypeOfService(mark.tos)
            let ssrc = self.ssrc ?? UInt32.random(in: 1...UInt32.max)
            let firstSequence = UInt16.random(in: 0...UInt16.max)
            let firstTimestamp = UInt32.random(in: 0...UInt32.max)
            let count = Int((duration * 1000 / G711Voice.packetMs).rounded())
            let start = startAt ?? MonotonicClock.now() + 5_000_000
            let stop = StopRequest()
            var unsent = 0
            var sent = 0
            for index in 0..<count where !stop.isRequested {
                Pacer.wait(until: start + UInt64(index) * UInt64(G711Voice.packetMs * 1e6))
                let packet = G711Voice.packet(index: index, ssrc: ssrc, firstSequence: firstSequence, firstTimestamp: firstTimestamp, sendNanoseconds: MonotonicClock.now())
                if try !socket.send(packet, to: to) { unsent += 1 }
                sent += 1
            }
            if sent > 0 && unsent == sent {
                throw RuntimeError("voice: the socket took none of the \(sent) packets to \(to): is there a route to it from this host (or namespace)?")
            }
            try output.emit(Sent(packets: sent, unsent: unsent, ssrc: ssrc))
            output.say("voice: \(sent) RTP packets (G.711, 20 ms) to \(to), SSRC \(ssrc)" + (unsent > 0 ? ", \(unsent) not taken by the socket" : ""))
        }
    }

    struct Receive: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "recv",
            abstract: "Receive a G.711 call over RTP and score it: loss, jitter, delay, late packets, R and MOS per bin.",
            discussion: "Stops after --idle-timeout without a packet once the call began, after --duration, or on SIGINT/SIGTERM.")

        @Option(help: ArgumentHelp("The address and port to listen on.", valueName: "address:port"), transform: endpoint)
        var listen: UDPEndpoint

        @Option(help: ArgumentHelp("The fixed playout buffer.", valueName: "time"), transform: timeSeconds)
        var playout: Double = 0.06

        @Flag(help: "An adaptive playout buffer instead (d + 4v of the one-way delay, adjusted once a second, 10-500 ms).")
        var adaptive = false

        @Option(help: ArgumentHelp("The bins of the report.", valueName: "time"), transform: timeSeconds)
        var bin: Double = 10

        @Option(help: ArgumentHelp("Stop when nothing arrived for this long after the call began.", valueName: "time"), transform: timeSeconds)
        var idleTimeout: Double = 2

        @Option(help: ArgumentHelp("Stop after this long in any case.", valueName: "time"), transform: timeSeconds)
        var duration: Double = 3600

        @Option(help: ArgumentHelp("Write every RTP packet that arrived (CSV: ssrc, seq, RTP timestamp, send and arrival ns).", valueName: "file"))
        var packetLog: String?

        @OptionGroup(title: "Output (the call's report)") var output: OutputOptions

        func validate() throws {
            if !(playout >= 0) || playout > 10 { throw ValidationError("--playout must be 0 to 10 s.") }
            if !(bin >= 0.02) { throw ValidationError("--bin must be at least 20ms (one packet).") }
        }

        func run() throws {
            let socket = try UDPSocket(bind: listen)
            let stop = StopRequest()
            var accounting = VoiceAccounting()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 2048, alignment: 8)
            defer { buffer.deallocate() }
            let start = MonotonicClock.now()
            var lastArrival: UInt64?
            var foreign = 0
            var log: [String] = []
            while !stop.isRequested {
                let now = MonotonicClock.now()
                if now - start > UInt64(duration * 1e9) { break }
                if let lastArrival, now - lastArrival > UInt64(idleTimeout * 1e9) { break }
                _ = try waitForReadable([socket.fileDescriptor], timeoutNanoseconds: 50_000_000)
                while let arrival = try socket.receive(into: buffer) {
                    let at = MonotonicClock.now()
                    guard let packet = VoicePacket(datagram: Array(UnsafeRawBufferPointer(rebasing: buffer[0..<arrival.count])), arrivalNanoseconds: at) else {
                        foreign += 1
                        continue
                    }
                    accounting.arrived(packet)
                    if packetLog != nil { log.append(packet.csvRow) }
                    lastArrival = at
                }
            }
            if let packetLog {
                do { try Data(([VoicePacket.csvHeader] + log).joined(separator: "\n").utf8 + [10]).write(to: URL(fileURLWithPath: packetLog)) } catch {
                    throw RuntimeError("voice: cannot write the packet log \(packetLog): \(error.localizedDescription)")
                }
            }
            let model: VoiceAccounting.Playout = adaptive ? .adaptiveDefault : .fixed(ms: playout * 1000)
            let report = accounting.report(binS: bin, playout: model)
            try output.emit(report)
            if let whole = report.whole {
                func two(_ value: Double) -> String { String(format: "%.2f", value) }
                output.say(
                    "voice: \(report.received) of \(report.expected) packets, \(report.lost) lost, \(report.late) late for \(adaptive ? "an adaptive buffer (mean \(two(report.playoutMs)) ms from send to playout)" : "a \(two(playout * 1000)) ms buffer"), "
                        + "\(report.duplicates) duplicated; jitter \(two(report.jitterMs)) ms, delay \(whole.meanDelayMs.map(two) ?? "?") ms, "
                        + "mouth to ear \(whole.mouthToEarMs.map(two) ?? "?") ms; R \(two(whole.r)), MOS \(two(whole.mos))"
                        + (foreign > 0 ? " (\(foreign) datagrams not G.711 RTP)" : ""))
            } else {
                output.say("voice: no RTP packet arrived on \(listen)")
            }
        }
    }
}
