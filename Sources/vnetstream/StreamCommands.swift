import ArgumentParser
import Control
import Devices
import Foundation
import RunRecords
import Pacing
import Packets
import Recovery
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

    @Argument(help: "The frame trace to stream (any format `trace stats` reads); or use --cbr.", completion: .file())
    var trace: String?

    @OptionGroup var input: TraceInputOptions

    @Option(
        help: ArgumentHelp(
            "Stream constant bit rate instead of a trace (e.g. 320kbit), at --fps (default 25) for --duration; or max.",
            discussion: """
                max: no pacing; packets of --payload-bytes back to back, as fast as the tuns take \
                them, for --duration (a throughput test: see scripts/bench throughput).
                """,
            valueName: "rate|max"),
        transform: { $0 == "max" ? .max : .rate(try bitRate($0)) })
    var cbr: CBRChoice?

    @Option(help: ArgumentHelp("UDP payload bytes of every packet with --cbr max (the 40-byte VNetStream header included).", valueName: "bytes"))
    var payloadBytes: Int = 1200

    @Flag(help: "With --cbr max: one write per packet, without UDP segmentation offload through the tun.")
    var noSegmentation = false

    @Flag(
        help: "Paced streams: write each run of a frame's packets on one VNet at once, with UDP segmentation offload through the tun (far less CPU at hundreds of Mbit/s). Not with --mode adaptive: on an unshaped path a run arrives at once, so probe trains read wrong.")
    var segmentation = false

    @Option(help: ArgumentHelp("How long to stream CBR (with --cbr) (default: 150s).", valueName: "time"), transform: timeSeconds)
    var duration: Double = 150

    @Option(
        name: .customLong("vnet"),
        help: ArgumentHelp(
            "A VNet's tun interface, optionally =SOURCE address (default: the tun's peer, or the next address in its prefix). Repeat for each VNet.",
            valueName: "tun[=address]"))
    var vnets: [VNetArgument] = []

    @Option(
        help: ArgumentHelp(
            "A VNet's reservation on a provisioned access link: --mode adaptive never estimates its capacity above it (e.g. tun0=15mbit). Repeat per VNet.",
            valueName: "tun=rate"))
    var ceiling: [String] = []

    @Option(help: ArgumentHelp("The receiver's address and port (e.g. 198.18.100.1:5004).", valueName: "address:port"))
    var to: UDPEndpoint

    @Option(help: ArgumentHelp("The UDP source port of media packets; reports come back to it.", valueName: "port"))
    var port: UInt16 = 5005

    @Option(help: ArgumentHelp("The TT mark: a DSCP name (EF, AF41, CS5, ...) or the TOS byte as a number (184, 0xb8).", valueName: "mark"))
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

    @Option(help: ArgumentHelp("Fixed split between the VNets for --mode static, one weight each (1:1, 3:1).", valueName: "weights"))
    var split: String?

    @Option(help: ArgumentHelp("The VNet (1-based, in --vnet order) that carries everything in --mode uni.", valueName: "n"))
    var uni: Int = 1

    @Option(help: ArgumentHelp("Time between each live VNet's probe trains in --mode adaptive (default: 1s).", valueName: "time"), transform: timeSeconds)
    var probeInterval: Double = 1

    @Option(help: ArgumentHelp("The largest IPv4 packet to send (default: the smallest tun MTU).", valueName: "bytes"))
    var mtu: Int?

    @Option(help: ArgumentHelp("The stream's id, carried in every packet.", valueName: "id"))
    var streamID: UInt32 = 1

    @Option(
        help: ArgumentHelp("Write JSON lines to this file: per VNet and second what was sent, and every report.", valueName: "file"),
        completion: .file())
    var log: String?

    @OptionGroup(title: "Output (the summary)") var output: OutputOptions

    @Option(
        help: ArgumentHelp(
            "Write one CSV line per packet sent to this file (time, stream and path sequence, VNet, bytes, copy).", valueName: "file"),
        completion: .file(extensions: ["csv"]))
    var packetLog: String?

    @Option(
        help: ArgumentHelp(
            "Send the first frame at this CLOCK_MONOTONIC time, in nanoseconds (to share time zero with a lab schedule).",
            valueName: "ns"))
    var startAt: UInt64?

    @Flag(
        help: ArgumentHelp(
            "Shed frames by priority when the VNets together cannot carry the stream (--mode adaptive).",
            discussion: """
                B frames first, then P frames from the end of each group of pictures, never an I \
                frame; shedding stops when the VNets' measured capacity covers the stream again. \
                A trace without frame types takes --gop (default IBBPBBPBBPBB). The receiver \
                counts shed frames as shed, not lost (Docs/controller.md).
                """))
    var shed = false

    @Option(
        help: ArgumentHelp(
            "How lost packets are recovered: none, arq-same, arq, fec or fec+arq.",
            discussion: """
                arq-same resends what the receiver's NACKs ask for on the VNet that lost it (as SRT \
                and RIST do); arq resends on the VNet most likely to deliver it in time: another \
                one whenever that VNet is dead, lossy or full, and a dead VNet's unreported tail \
                at once. Both keep a fixed ring of 4096 packets per VNet. fec sends XOR parity \
                (--fec) on another VNet than most of what it protects, and the receiver rebuilds \
                without asking; fec+arq NACKs what the parity could not rebuild (Docs/recovery.md).
                """,
            valueName: "mode"))
    var recovery: RecoveryMode = .none

    @Option(
        help: ArgumentHelp("The playout deadline after each frame's time: nothing is resent that cannot arrive by it (default: 200ms).", valueName: "time"),
        transform: timeSeconds)
    var latency: Double = 0.2

    @Option(
        help: ArgumentHelp(
            "The FEC block shape for --recovery fec and fec+arq (default: cols=5,rows=5).",
            discussion: """
                A block is ROWS rows of COLS consecutive packets. Row parity (one per row) rebuilds \
                one loss in a row and costs 1/COLS; column parity (one per column) rebuilds one \
                loss in a column, a burst up to COLS long, and costs 1/ROWS. layout=both (the \
                default), rows or columns; rows=1 means row parity only. Each is 1 to 32.
                """,
            valueName: "cols=C,rows=R[,layout=L]"))
    var fec: String?

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
        if shed && resolvedMode != .adaptive {
            throw ValidationError("--shed goes with --mode adaptive (it sheds by the VNets' measured capacity), not --mode \(resolvedMode.rawValue).")
        }
        if !(latency > 0 && latency <= 60) { throw ValidationError("--latency must be above 0 and at most 60s.") }
        if recovery != .none && cbr == .max { throw ValidationError("--recovery \(recovery) needs a paced stream: give a trace or --cbr RATE, not --cbr max.") }
        if let fec {
            guard recovery.parity else { throw ValidationError("--fec goes with --recovery fec or fec+arq, not --recovery \(recovery).") }
            do { _ = try FECShape(parsing: fec) } catch { throw ValidationError("--fec: \(error)") }
        }
        if recovery.parity && resolvedMode == .duplicate {
            throw ValidationError("--recovery \(recovery) with --mode duplicate: every packet already goes on every VNet; parity would add nothing.")
        }
        if shed && cbr == .max { throw ValidationError("--shed needs frames: give a trace or --cbr RATE, not --cbr max.") }
        if segmentation && cbr == .max { throw ValidationError("--cbr max segments already (--no-segmentation turns it off); --segmentation is for paced streams.") }
        if segmentation && resolvedMode == .adaptive {
            throw ValidationError("--segmentation goes with --mode static, uni or duplicate: the adaptive mode's probe trains need packets written one by one.")
        }
        _ = try ceilings()
        if let startAt, startAt < MonotonicClock.now() {
            throw ValidationError("--start-at \(startAt) has passed (the monotonic clock reads \(MonotonicClock.now())).")
        }
        _ = try mark()
    }

    /// `--ceiling TUN=RATE`s, by tun.
    func ceilings() throws -> [String: Double] {
        var rates: [String: Double] = [:]
        for text in ceiling {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, vnets.contains(where: { $0.tun == parts[0] }) else {
                throw ValidationError("--ceiling takes TUN=RATE for a tun given with --vnet (\(vnets.map(\.tun).joined(separator: ", "))), not '\(text)'.")
            }
            do { rates[parts[0]] = try BitRate(parsing: parts[1]).bitsPerSecond } catch { throw ValidationError("--ceiling \(text): \(error)") }
        }
        return rates
    }

    func mark() throws -> TrafficMark {
        do { return try TrafficMark(parsing: tt) } catch let error as TrafficMark.ParseError {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        let frames: FrameTrace =
            switch cbr {
            case .rate(let rate): input.typed(try CBRSource.trace(rate: rate, framesPerSecond: input.fps ?? 25, duration: duration), default: shed ? .mpeg4 : nil)
            case .max: FrameTrace(frames: [], framesPerSecond: 25)
            case nil: try input.read(trace!, default: shed ? .mpeg4 : nil)
            }
        let ceilings = try ceilings()
        let routes = try vnets.map { vnet -> VNetRoute in
            if let source = vnet.source { return VNetRoute(tun: vnet.tun, source: source, ceiling: ceilings[vnet.tun]) }
            guard let address = InterfaceAddress.of(vnet.tun) else {
                throw SenderError("\(vnet.tun) has no IPv4 address: give the sender's address with --vnet \(vnet.tun)=ADDRESS")
            }
            guard let far = address.farEnd else {
                throw SenderError("cannot tell the sender's address behind \(vnet.tun) (\(address.local)/\(address.prefixLength)): give it with --vnet \(vnet.tun)=ADDRESS")
            }
            return VNetRoute(tun: vnet.tun, source: far, ceiling: ceilings[vnet.tun])
        }
        var configuration = SenderConfiguration(trace: frames, routes: routes, destination: to, mode: sendMode)
        configuration.adaptive.probeInterval = probeInterval
        configuration.startAt = startAt
        configuration.sourcePort = port
        configuration.mark = try mark()
        configuration.mtu = mtu
        configuration.streamID = streamID
        configuration.segmentationOffload = (cbr == .max && !noSegmentation) || segmentation
        configuration.shedding = shed
        configuration.recovery = recovery
        configuration.latency = latency
        if let fec { configuration.fec = try FECShape(parsing: fec) }
        let logFile = try log.map { try LineFile(path: $0) }
        if let logFile { configuration.log = { logFile.write($0) } }
        let packetFile = try packetLog.map { try LineFile(path: $0) }
        if let packetFile { configuration.packetLog = { packetFile.write($0) } }
        let sender = try Sender(configuration)
        let summary = cbr == .max ? try sender.runUnpaced(payloadBytes: payloadBytes, duration: duration) : try sender.run()
        logFile?.close()
        packetFile?.close()
        try output.emit(summary)
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
        if let recovery = summary.recovery {
            lines.append(
                "  recovery \(recovery.mode) (latency \(decimal(recovery.latencyMs, 0)) ms): \(recovery.nacks) NACKs for \(recovery.requested) packets, "
                    + "\(recovery.resent) resent (\(recovery.resentBytes) bytes, \(recovery.resentElsewhere) on another VNet, \(recovery.deadTail) of a dead VNet's tail), "
                    + "\(recovery.tooLate) too late, \(recovery.notHeld) no longer held"
                    + (recovery.parities.map { ", \($0) parity packets (\(recovery.parityBytes ?? 0) bytes, fec \(recovery.fec ?? "")), \(recovery.partialParities ?? 0) partial, \(recovery.skippedParities ?? 0) skipped for want of room" } ?? ""))
        }
        if let shed = summary.shed {
            let byType = shed.byType.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            lines.append("  shed \(shed.frames) frames (\(shed.bytes) bytes)" + (byType.isEmpty ? "" : ": \(byType)"))
        }
        lines.append(
            "  pacing: p50 \(decimal(summary.pacing.p50Microseconds, 1)) us, p99 \(decimal(summary.pacing.p99Microseconds, 1)) us, "
                + "max \(decimal(summary.pacing.maxMicroseconds, 1)) us late")
        output.say(lines.joined(separator: "\n"))
    }
}

enum CBRChoice: Equatable {
    case rate(BitRate)
    case max
}

extension SendMode.Kind: ExpressibleByArgument {}
