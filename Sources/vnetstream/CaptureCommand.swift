import ArgumentParser
import Capture
import Foundation
import Pacing

struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture what arrives on an interface into a pcap file with libpcap, for a bounded time.",
        discussion: """
            Inbound packets only, through a BPF filter. Stops after --seconds, after --packets, or \
            on SIGINT/SIGTERM, and always flushes the file; prints what it captured (--json: as JSON). Run it inside a \
            lab namespace with `vnetstream lab exec` or `ip netns exec`. Needs root (CAP_NET_RAW).
            """)

    @Option(help: ArgumentHelp("The interface to capture on.", valueName: "interface"))
    var interface: String

    @Option(help: ArgumentHelp("The pcap file to write.", valueName: "file"), completion: .file(extensions: ["pcap"]))
    var pcap: String

    @Option(help: ArgumentHelp("A BPF filter (tcpdump syntax).", valueName: "expression"))
    var filter: String = "ip"

    @Option(help: ArgumentHelp("Stop after this long (default: 60s).", valueName: "time"), transform: timeSeconds)
    var seconds: Double = 60

    @Option(help: ArgumentHelp("Stop after this many packets (0: no limit).", valueName: "n"))
    var packets: Int = 0

    @Option(help: ArgumentHelp("Bytes kept of each packet (its length is always recorded).", valueName: "bytes"))
    var snaplen: Int = 65535

    @Flag(help: "Take packets from the kernel in blocks (every 50 ms at most) instead of one by one: far less CPU at high packet rates.")
    var buffered = false

    @Flag(help: "Timestamps on CLOCK_MONOTONIC (seconds since boot), not the wall clock: for measurements on a machine whose wall clock is stepped.")
    var monotonicTimestamps = false

    @OptionGroup(title: "Output (the summary)") var output: OutputOptions

    func validate() throws {
        if !(seconds > 0) || seconds > 86400 { throw ValidationError("--seconds must be above 0 and at most 86400.") }
        if packets < 0 { throw ValidationError("--packets must not be negative.") }
        if !(34...65535).contains(snaplen) { throw ValidationError("--snaplen must be 34-65535 (an Ethernet and an IPv4 header at least).") }
    }

    func run() throws {
        let capture = try InterfaceCapture(interface: interface, file: pcap, filter: filter, snaplen: snaplen, immediate: !buffered, monotonic: monotonicTimestamps)
        let stop = DispatchSemaphore(value: 0)
        let guards = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        let deadline = MonotonicClock.now() + UInt64(seconds * 1e9)
        while MonotonicClock.now() < deadline {
            if stop.wait(timeout: .now() + .milliseconds(100)) == .success { break }
            if packets > 0 && capture.packetsSoFar >= packets { break }
        }
        _ = guards
        let summary = capture.stop()
        try output.emit(summary)
        output.say(
            "captured \(summary.packets) packets on \(summary.interface) into \(summary.file)"
                + (summary.droppedByKernel > 0 ? " (\(summary.droppedByKernel) dropped by the kernel before libpcap read them)" : ""))
    }
}
