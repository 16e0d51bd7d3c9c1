import Accounting
import Capture
import Pacing
import Packets

/// What a sender did: the summary `vnetstream send` prints and writes as JSON.
public struct SenderSummary: Codable, Sendable {
    public struct VNet: Codable, Sendable {
        public var vnet: Int
        public var tun: String
        public var source: String
        public var packets: Int
        public var bytes: Int
        /// Of those, copies: probe-train padding and probes of a dead VNet (duplicate mode's
        /// packets are not copies: each VNet carries the whole stream).
        public var copies: Int
        public var copyBytes: Int
        /// Packets the tun would not take (kernel queue full): never sent.
        public var localDrops: Int
        /// Receiver reports that arrived over this VNet.
        public var reportsReceived: Int

        public init(vnet: Int, tun: String, source: String, packets: Int, bytes: Int, copies: Int, copyBytes: Int, localDrops: Int, reportsReceived: Int) {
            self.vnet = vnet
            self.tun = tun
            self.source = source
            self.packets = packets
            self.bytes = bytes
            self.copies = copies
            self.copyBytes = copyBytes
            self.localDrops = localDrops
            self.reportsReceived = reportsReceived
        }

        enum CodingKeys: String, CodingKey {
            case vnet, tun, source, packets, bytes, copies
            case copyBytes = "copy_bytes"
            case localDrops = "local_drops"
            case reportsReceived = "reports_received"
        }
    }

    public var streamID: UInt32
    public var frames: Int
    public var packets: Int
    public var durationS: Double
    public var mark: Int
    public var mtu: Int
    public var vnets: [VNet]
    public var pacing: PacingErrors
    /// What the controller did (adaptive mode): dead and alive events, capacity estimates.
    public var controlEvents: Int
    /// Datagrams read from the tuns that were not reports for this stream, by reason.
    public var ignored: [String: Int]
    public var lastReport: [PathReport]?
    /// CPU time this process used (user + system), seconds.
    public var cpuS: Double?
    /// How packets went into the tuns in unpaced mode: `udp-segmentation` (up to 64 per write)
    /// or `packet-per-write` (and why).
    public var offload: String?
    /// Frames the source shed (with `--shed`): how many, their IPv4 bytes, and by type letter.
    public var shed: Shed?
    /// Packets that waited for their VNet's pace (adaptive mode), and the longest wait, ms.
    public var pacedPackets: Int?
    public var pacedLongestMs: Double?
    /// Probe-train copies that stream packets waiting behind the train replaced.
    public var trainCopiesSaved: Int?
    /// What retransmission did (`--recovery arq-same` or `arq`); nil: recovery was off.
    public var recovery: Recovery?

    /// The sender's side of recovery: what the NACKs asked for, and what went again.
    public struct Recovery: Codable, Sendable, Equatable {
        public var mode: String
        public var latencyMs: Double
        public var nacks: Int
        /// Path sequences the NACKs named.
        public var requested: Int
        public var resent: Int
        /// UDP payload bytes resent: the extra the mode cost.
        public var resentBytes: Int
        /// Of `resent`: on another VNet than the one that lost the packet.
        public var resentElsewhere: Int
        /// Of `resent`: a dead VNet's packets that no report had covered.
        public var deadTail: Int
        /// Asked for, but too late for the deadline; no longer held; resent moments before.
        public var tooLate: Int
        public var notHeld: Int
        public var recent: Int
        /// The retransmission buffer's fixed memory, bytes (0: no retransmission).
        public var bufferBytes: Int
        /// FEC (nil: no parity): the block shape, parity packets made, their UDP payload bytes
        /// (the extra the parity cost), and those made before their row or column was complete.
        public var fec: String?
        public var parities: Int?
        public var parityBytes: Int?
        public var partialParities: Int?
        /// Parities not sent because the VNets together had no room for them.
        public var skippedParities: Int?

        public init(
            mode: String, latencyMs: Double, nacks: Int, requested: Int, resent: Int, resentBytes: Int, resentElsewhere: Int, deadTail: Int,
            tooLate: Int, notHeld: Int, recent: Int, bufferBytes: Int
        ) {
            self.mode = mode
            self.latencyMs = latencyMs
            self.nacks = nacks
            self.requested = requested
            self.resent = resent
            self.resentBytes = resentBytes
            self.resentElsewhere = resentElsewhere
            self.deadTail = deadTail
            self.tooLate = tooLate
            self.notHeld = notHeld
            self.recent = recent
            self.bufferBytes = bufferBytes
        }

        enum CodingKeys: String, CodingKey {
            case mode, nacks, requested, resent, recent
            case latencyMs = "latency_ms"
            case resentBytes = "resent_bytes"
            case resentElsewhere = "resent_elsewhere"
            case deadTail = "dead_tail"
            case tooLate = "too_late"
            case notHeld = "not_held"
            case bufferBytes = "buffer_bytes"
            case fec, parities
            case parityBytes = "parity_bytes"
            case partialParities = "partial_parities"
            case skippedParities = "skipped_parities"
        }
    }

    public struct Shed: Codable, Sendable, Equatable {
        public var frames: Int
        public var bytes: Int
        public var byType: [String: Int]

        public init(frames: Int, bytes: Int, byType: [String: Int]) {
            self.frames = frames
            self.bytes = bytes
            self.byType = byType
        }

        enum CodingKeys: String, CodingKey {
            case frames, bytes
            case byType = "by_type"
        }
    }

    public init(streamID: UInt32, frames: Int, packets: Int, durationS: Double, mark: Int, mtu: Int, vnets: [VNet], pacing: PacingErrors, controlEvents: Int, ignored: [String: Int], lastReport: [PathReport]? = nil, cpuS: Double? = nil, offload: String? = nil, shed: Shed? = nil) {
        self.streamID = streamID
        self.frames = frames
        self.packets = packets
        self.durationS = durationS
        self.mark = mark
        self.mtu = mtu
        self.vnets = vnets
        self.pacing = pacing
        self.controlEvents = controlEvents
        self.ignored = ignored
        self.lastReport = lastReport
        self.cpuS = cpuS
        self.offload = offload
        self.shed = shed
    }

    enum CodingKeys: String, CodingKey {
        case frames, packets, mtu, mark, vnets, pacing, ignored, offload, shed, recovery
        case pacedPackets = "paced_packets"
        case pacedLongestMs = "paced_longest_ms"
        case trainCopiesSaved = "train_copies_saved"
        case cpuS = "cpu_s"
        case controlEvents = "control_events"
        case streamID = "stream_id"
        case durationS = "duration_s"
        case lastReport = "last_report"
    }
}

/// What the receiver measured: the loss report, and what its captures and reports did.
public struct ReceiverResult: Codable, Sendable {
    /// The first stream's report.
    public var report: LossReport?
    /// Every stream's report, in the order they first arrived.
    public var streams: [LossReport]
    public var reportsSent: Int
    public var captures: [InterfaceCapture.Summary]
    /// Why the receiver stopped: `end` (the sender's message, then the linger), `idle`,
    /// `no_stream` (nothing came), `time_limit`.
    public var stoppedBy: String
    /// CPU time the receiver used (user + system), seconds.
    public var cpuS: Double?

    public init(report: LossReport? = nil, streams: [LossReport], reportsSent: Int, captures: [InterfaceCapture.Summary], stoppedBy: String, cpuS: Double? = nil) {
        self.report = report
        self.streams = streams
        self.reportsSent = reportsSent
        self.captures = captures
        self.stoppedBy = stoppedBy
        self.cpuS = cpuS
    }

    enum CodingKeys: String, CodingKey {
        case report, captures, streams
        case reportsSent = "reports_sent"
        case cpuS = "cpu_s"
        case stoppedBy = "stopped_by"
    }
}

/// How the packets of a marked stream are spaced in time.
public enum Arrivals: String, Sendable, Codable, CaseIterable {
    /// Evenly: one packet every 1/rate seconds.
    case constant
    /// A Poisson process: exponential gaps with mean 1/rate (seeded, so runs repeat).
    case poisson
}

/// What a marked sender did, per stream.
public struct MarkedSenderSummary: Codable, Sendable {
    public struct Stream: Codable, Sendable {
        public var streamID: UInt32
        public var mark: String
        public var tos: Int
        public var packets: Int
        /// Packets the kernel would not take (socket buffer full, or no route): never sent.
        public var localDrops: Int
        public var pacing: PacingErrors

        public init(streamID: UInt32, mark: String, tos: Int, packets: Int, localDrops: Int, pacing: PacingErrors) {
            self.streamID = streamID
            self.mark = mark
            self.tos = tos
            self.packets = packets
            self.localDrops = localDrops
            self.pacing = pacing
        }

        enum CodingKeys: String, CodingKey {
            case mark, tos, packets, pacing
            case streamID = "stream_id"
            case localDrops = "local_drops"
        }
    }

    public var destination: String
    public var packetBytes: Int
    public var packetsPerSecond: Double
    public var arrivals: Arrivals
    public var durationS: Double
    /// Times the sender fell more than the maximum lateness behind and moved its schedule
    /// later, and by how much in all.
    public var scheduleShifts: Int
    public var scheduleShiftS: Double
    public var streams: [Stream]

    public init(destination: String, packetBytes: Int, packetsPerSecond: Double, arrivals: Arrivals, durationS: Double, scheduleShifts: Int, scheduleShiftS: Double, streams: [Stream]) {
        self.destination = destination
        self.packetBytes = packetBytes
        self.packetsPerSecond = packetsPerSecond
        self.arrivals = arrivals
        self.durationS = durationS
        self.scheduleShifts = scheduleShifts
        self.scheduleShiftS = scheduleShiftS
        self.streams = streams
    }

    enum CodingKeys: String, CodingKey {
        case destination, arrivals, streams
        case scheduleShifts = "schedule_shifts"
        case scheduleShiftS = "schedule_shift_s"
        case packetBytes = "packet_bytes"
        case packetsPerSecond = "packets_per_second"
        case durationS = "duration_s"
    }
}

