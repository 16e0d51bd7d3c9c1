import ArgumentParser
import Capture
import Dispatch
import Experiment
import Foundation
import Lab
import Monitoring
import Packets
import Pacing
import RunRecords

/// SIGINT and SIGTERM as a flag a loop polls: the loop ends cleanly and says what it did.
final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    private var sources: [DispatchSourceSignal] = []

    init() {
        sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                lock.lock()
                requested = true
                lock.unlock()
            }
            source.resume()
            return source
        }
    }

    var isRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return requested
    }
}

struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Monitoring VNets: a monitoring node's capture, the collector, and where loss happened.",
        discussion: """
            A topology's [[monitor]] puts a monitoring node beside each watched router, fed by \
            copies of what crosses it (Docs/lab.md, "Monitoring VNets"). `watch` runs in a \
            monitoring node, `collect` in the collector; `locate` joins what they kept with the \
            sender's and receiver's packet logs. `vnetstream run` starts them itself.
            """,
        subcommands: [Watch.self, Collect.self, Locate.self, Counters.self])

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Capture a monitoring node's mirror port and send per-interval summaries to the collector.",
            discussion: """
                Counts packets and bytes per flow and router port, decodes the project's media \
                header (stream, path, sequence numbers) and sends a summary every --interval to \
                --collector over UDP. Copies the kernel drops before libpcap reads them are \
                counted, never waited for. Stops after --duration or on SIGINT/SIGTERM, after a \
                last summary. Needs root (CAP_NET_RAW).
                """)

        @Option(help: ArgumentHelp("The mirror port to capture on.", valueName: "interface"))
        var interface: String = MonitorPlan.moniMirrorInterface

        @Option(help: ArgumentHelp("This monitoring node's name.", valueName: "name"))
        var node: String

        @Option(help: ArgumentHelp("The router it watches.", valueName: "name"))
        var router: String

        @Option(help: ArgumentHelp("The VNet it watches.", valueName: "name"))
        var vnet: String

        @Option(
            name: .customLong("port"), help: ArgumentHelp("A port of the router and its MAC address (repeat for each port).", valueName: "name=mac"),
            transform: { text in
                guard let port = MirrorObserver.Port(parsing: text) else { throw ValidationError("--port wants NAME=aa:bb:cc:dd:ee:ff, not '\(text)'") }
                return port
            })
        var ports: [MirrorObserver.Port]

        @Option(help: ArgumentHelp("A BPF filter for the copies (tcpdump syntax).", valueName: "expression"))
        var filter: String = "ip"

        @Option(help: ArgumentHelp("Where summaries go.", valueName: "address:port"), transform: endpoint)
        var collector: UDPEndpoint

        @Option(help: ArgumentHelp("Seconds per summary.", valueName: "time"), transform: timeSeconds)
        var interval: Double = 1

        @Option(help: ArgumentHelp("Stop after this long.", valueName: "time"), transform: timeSeconds)
        var duration: Double = 3600

        @Option(help: ArgumentHelp("Keep a rolling pcap of the copies: files BASE.N.pcap.", valueName: "base"))
        var pcap: String?

        @Option(help: ArgumentHelp("Megabytes per rolling pcap file (0.1: 100 kB).", valueName: "mb"))
        var pcapMB: Double = 16

        @Option(help: ArgumentHelp("Rolling pcap files kept.", valueName: "n"))
        var pcapFiles: Int = 4

        @Flag(help: "The rolling pcap's timestamps on CLOCK_MONOTONIC (seconds since boot), not the wall clock (which this machine steps).")
        var monotonic = false

        @OptionGroup(title: "Output (the node's totals)") var output: OutputOptions

        func validate() throws {
            if !(interval >= 0.05) || interval > 3600 { throw ValidationError("--interval must be 50ms to 1h.") }
            if !(duration > 0) { throw ValidationError("--duration must be positive.") }
            if ports.isEmpty { throw ValidationError("--port: name at least one port of the router.") }
            if !(pcapMB >= 0.01) || pcapFiles < 1 { throw ValidationError("--pcap-mb must be at least 0.01 and --pcap-files at least 1.") }
        }

        func run() throws {
            let stop = StopRequest()
            let totals = try MonitorNode.run(
                .init(
                    node: node, router: router, vnet: vnet, interface: interface, ports: ports, filter: filter, collector: collector,
                    intervalS: interval, durationS: duration,
                    ring: pcap.map { InterfaceCapture.PcapRing(base: $0, fileBytes: Int64(pcapMB * 1_048_576), files: pcapFiles) }, snaplen: 256,
                    monotonic: monotonic),
                stop: { stop.isRequested })
            try output.emit(totals)
            output.say(
                "\(node): \(totals.copies) copies in \(totals.intervals) summaries (\(totals.datagrams) datagrams, \(totals.unsent) unsent), "
                    + "\(totals.droppedByKernel) dropped by the kernel, \(number(totals.cpuS)) s of CPU")
        }
    }

    struct Collect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take the monitoring nodes' summaries and keep them, one JSON line each.",
            discussion: "Stops after --duration or on SIGINT/SIGTERM, after --linger for what is still on its way.")

        @Option(help: ArgumentHelp("The address and port to listen on.", valueName: "address:port"), transform: endpoint)
        var listen: UDPEndpoint

        @Option(help: ArgumentHelp("The JSON-lines file to write.", valueName: "file"))
        var out: String

        @Option(help: ArgumentHelp("Stop after this long.", valueName: "time"), transform: timeSeconds)
        var duration: Double = 3600

        @Option(help: ArgumentHelp("How long to go on taking summaries after being told to stop.", valueName: "time"), transform: timeSeconds)
        var linger: Double = 1

        @OptionGroup(title: "Output (what came)") var output: OutputOptions

        func run() throws {
            let stop = StopRequest()
            let totals = try MonitorCollector.run(listen: listen, out: out, durationS: duration, lingerS: linger, stop: { stop.isRequested })
            try output.emit(totals)
            output.say("collector: \(totals.datagrams) datagrams (\(totals.rejected) rejected) from \(totals.intervals.count) nodes into \(out)")
        }
    }

    struct Locate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Where along each path the lost packets were lost, from a collector's records.",
            discussion: """
                A packet seen arriving at hop k and not at hop k+1 was lost on the link between \
                them; one seen at the egress and not by the receiver, on the egress link. The \
                lab's links come from --id (a lab that is up) or --topology.
                """)

        @Option(help: ArgumentHelp("The collector's records.", valueName: "file"))
        var records: String

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Option(help: ArgumentHelp("The topology file, instead of a lab that is up.", valueName: "file"))
        var topology: String?

        @Option(help: ArgumentHelp("The sender's packet log (send --packet-log).", valueName: "file"))
        var senderLog: String?

        @Option(help: ArgumentHelp("The receiver's packet log (recv --packet-log).", valueName: "file"))
        var receiverLog: String?

        @OptionGroup(title: "Output (the located loss)") var output: OutputOptions

        func run() throws {
            let plan = try topology.map { try LabPlan(topology: try Topology.load($0), runID: "0", shaper: .tbf) } ?? Lab.open(runID: id).plan
            let sent = try senderLog.map { try CSVLog.read(SentPacket.self, from: $0) }
            let received = try receiverLog.map { try CSVLog.read(ReceivedPacket.self, from: $0) } ?? []
            let located = LocatedLoss.locate(
                plan: plan, summaries: try MonitorCollector.read(records), sent: sent, received: received)
            try output.emit(located)
            for link in located.links {
                output.say("path \(link.path) \(link.from) -> \(link.to): \(link.lost) of \(link.packets) lost")
            }
            for path in located.paths {
                output.say(
                    "path \(path.path): sent \(path.sent), received \(path.received), located \(path.located)"
                        + (path.unchained > 0 ? ", \(path.unchained) unchained" : ""))
            }
        }
    }
}

extension MonitorCommand {
    struct Counters: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sample an interface's packet counters every --interval into a CSV file (a router's forwarding rate).",
            discussion: "Reads sysfs in this network namespace, on CLOCK_MONOTONIC. Stops after --seconds or on SIGINT/SIGTERM.")

        @Option(help: ArgumentHelp("The interface.", valueName: "interface"))
        var interface: String

        @Option(help: ArgumentHelp("The CSV file to write.", valueName: "file"))
        var csv: String

        @Option(help: ArgumentHelp("Time between samples.", valueName: "time"), transform: timeSeconds)
        var interval: Double = 1

        @Option(help: ArgumentHelp("Stop after this long.", valueName: "time"), transform: timeSeconds)
        var seconds: Double = 60

        func validate() throws {
            if !(interval >= 0.01) { throw ValidationError("--interval must be at least 10ms.") }
            if !(seconds > 0) || seconds > 86400 { throw ValidationError("--seconds must be above 0 and at most 86400.") }
        }

        func run() throws {
            let stop = StopRequest()
            let file = try LineFile(path: csv)
            defer { file.close() }
            file.write(CounterSample.csvHeader)
            let start = MonotonicClock.now()
            var next = start
            while !stop.isRequested && MonotonicClock.now() < start + UInt64(seconds * 1e9) {
                Pacer.wait(until: next)
                file.write(try CounterSample.read(interface, at: Double(MonotonicClock.now()) / 1e9).csvRow)
                next += UInt64(interval * 1e9)
            }
        }
    }
}

func endpoint(_ text: String) throws -> UDPEndpoint {
    guard let endpoint = UDPEndpoint(text) else { throw ValidationError("'\(text)' is not ADDRESS:PORT") }
    return endpoint
}

/// `text` as one shell word: quoted when it holds anything a shell would read.
func shellQuoted(_ text: String) -> String {
    text.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:=@,+".contains($0) }) && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// What `lab up` says of a lab with monitors: the commands that start its collector and its
/// monitoring nodes (their processes are the user's to start; an experiment starts its own).
func monitoringHint(_ lab: Lab) throws -> [String] {
    guard !lab.plan.monitoring.monis.isEmpty else { return [] }
    let records = "\(lab.directory)/monitor-records.jsonl"
    let binary = Bundle.main.executablePath ?? "vnetstream"
    func line(_ node: String, _ argv: [String]) -> String {
        "  \(shellQuoted(binary)) lab exec --id \(lab.runID) \(node) " + ([binary] + argv).map(shellQuoted).joined(separator: " ") + " &"
    }
    let count = lab.plan.monitoring.monis.count
    var lines = ["monitoring: \(count) monitoring node\(count == 1 ? "" : "s"); start the collector and each node with:"]
    lines.append(line(MonitorPlan.collectorNode, lab.collectorArguments(records: records)))
    for moni in lab.plan.monitoring.monis { lines.append(line(moni.node, try lab.monitorWatchArguments(moni))) }
    lines.append("  then: \(shellQuoted(binary)) monitor locate --id \(lab.runID) --records \(records)")
    return lines
}
