import Control
import Units

/// How a run starts `vnetstream send`: every option the experiment sets, as one value that
/// writes its own arguments (recorded in the results, so a run can be repeated by hand).
public struct SendInvocation: Codable, Sendable, Equatable {
    public var trace: String
    /// `ADDRESS:PORT`.
    public var to: String
    /// The stream's time zero on CLOCK_MONOTONIC, nanoseconds.
    public var startAt: UInt64
    public var mode: SendMode
    /// The tun of each VNet, in VNet order.
    public var tuns: [String]
    public var probeIntervalS: Double
    public var log: String
    public var packetLog: String
    public var json: String
    /// `--shed`: shed frames by priority when the VNets fall short (nil: no).
    public var shed: Bool?
    /// `--ceiling TUN=RATE`: each VNet's reservation on the access link, by tun (nil: none).
    public var ceilings: [String: String]?
    /// `--recovery MODE` and `--latency`, seconds (nil: the defaults, none and 200 ms).
    public var recovery: String?
    public var latencyS: Double?
    /// `--fec cols=C,rows=R,…` (nil: the default shape, or no parity).
    public var fec: String?

    public init(
        trace: String, to: String, startAt: UInt64, mode: SendMode, tuns: [String], probeIntervalS: Double, log: String, packetLog: String,
        json: String, shed: Bool = false
    ) {
        self.trace = trace
        self.to = to
        self.startAt = startAt
        self.mode = mode
        self.tuns = tuns
        self.probeIntervalS = probeIntervalS
        self.log = log
        self.packetLog = packetLog
        self.json = json
        self.shed = shed ? true : nil
    }

    /// The arguments after the binary.
    public var arguments: [String] {
        var argv = [
            "send", trace, "--to", to, "--start-at", String(startAt), "--probe-interval", probeIntervalS.plainText(places: 6),
            "--log", log, "--packet-log", packetLog, "--json-file", json,
        ]
        for tun in tuns { argv += ["--vnet", tun] }
        if shed == true { argv.append("--shed") }
        for (tun, rate) in (ceilings ?? [:]).sorted(by: { $0.key < $1.key }) { argv += ["--ceiling", "\(tun)=\(rate)"] }
        if let recovery { argv += ["--recovery", recovery] }
        if let latencyS { argv += ["--latency", latencyS.plainText(places: 6)] }
        if let fec { argv += ["--fec", fec] }
        return argv + mode.sendArguments
    }

    enum CodingKeys: String, CodingKey {
        case trace, to, mode, tuns, log, json, shed, ceilings, recovery, fec
        case latencyS = "latency_s"
        case startAt = "start_at"
        case probeIntervalS = "probe_interval_s"
        case packetLog = "packet_log"
    }
}

/// How a run starts `vnetstream recv`.
public struct ReceiveInvocation: Codable, Sendable, Equatable {
    /// `ADDRESS:PORT`.
    public var listen: String
    public var intervalS: Double
    public var reportMs: Int
    public var startTimeoutS: Double
    public var idleTimeoutS: Double
    public var lingerS: Double
    public var packetLog: String
    public var json: String
    /// The trace the sender streams (`--trace`): the types of frames of which nothing arrived.
    public var trace: String?
    /// `--latency`, seconds: the playout deadline (nil: the default, 200 ms).
    public var latencyS: Double?
    /// `--join`: a multicast group to join.
    public var join: String?

    public init(
        listen: String, intervalS: Double, reportMs: Int = 100, startTimeoutS: Double = 60, idleTimeoutS: Double, lingerS: Double = 2,
        packetLog: String, json: String, trace: String? = nil
    ) {
        self.listen = listen
        self.intervalS = intervalS
        self.reportMs = reportMs
        self.startTimeoutS = startTimeoutS
        self.idleTimeoutS = idleTimeoutS
        self.lingerS = lingerS
        self.packetLog = packetLog
        self.json = json
        self.trace = trace
    }

    public var arguments: [String] {
        [
            "recv", "--listen", listen, "--interval", intervalS.plainText(places: 6), "--report-ms", String(reportMs),
            "--start-timeout", startTimeoutS.plainText(places: 3), "--idle-timeout", idleTimeoutS.plainText(places: 3), "--linger", lingerS.plainText(places: 3),
            "--packet-log", packetLog, "--json-file", json,
        ] + (trace.map { ["--trace", $0] } ?? []) + (latencyS.map { ["--latency", $0.plainText(places: 6)] } ?? []) + (join.map { ["--join", $0] } ?? [])
    }

    enum CodingKeys: String, CodingKey {
        case listen, json, trace, join
        case latencyS = "latency_s"
        case intervalS = "interval_s"
        case reportMs = "report_ms"
        case startTimeoutS = "start_timeout_s"
        case idleTimeoutS = "idle_timeout_s"
        case lingerS = "linger_s"
        case packetLog = "packet_log"
    }
}

/// How a run starts `vnetstream send-marked`: one stream per TOS byte, from plain sockets.
public struct MarkedSendInvocation: Codable, Sendable, Equatable {
    public var to: String
    public var packetsPerSecond: Double
    public var packetBytes: Int
    public var count: Int
    public var arrivals: Arrivals
    public var seed: Int
    public var startAt: UInt64
    public var tos: [UInt8]
    public var packetLog: String
    public var json: String

    public init(
        to: String, packetsPerSecond: Double, packetBytes: Int, count: Int, arrivals: Arrivals, seed: Int, startAt: UInt64, tos: [UInt8],
        packetLog: String, json: String
    ) {
        self.to = to
        self.packetsPerSecond = packetsPerSecond
        self.packetBytes = packetBytes
        self.count = count
        self.arrivals = arrivals
        self.seed = seed
        self.startAt = startAt
        self.tos = tos
        self.packetLog = packetLog
        self.json = json
    }

    public var arguments: [String] {
        var argv = [
            "send-marked", "--to", to, "--pps", packetsPerSecond.plainText(places: 6), "--packet-bytes", String(packetBytes), "--count",
            String(count), "--arrivals", arrivals.rawValue, "--seed", String(seed), "--start-at", String(startAt), "--packet-log", packetLog,
            "--json-file", json,
        ]
        for value in tos { argv += ["--tt", String(value)] }
        return argv
    }

    enum CodingKeys: String, CodingKey {
        case to, count, arrivals, seed, tos, json
        case packetsPerSecond = "packets_per_second"
        case packetBytes = "packet_bytes"
        case startAt = "start_at"
        case packetLog = "packet_log"
    }
}

/// How a run starts `vnetstream capture` on one interface.
public struct CaptureInvocation: Codable, Sendable, Equatable {
    public var interface: String
    public var pcap: String
    public var filter: String
    public var seconds: Int
    /// Bytes kept of each packet (nil: whole packets).
    public var snaplen: Int?
    /// Packets from the kernel in blocks rather than one by one (`--buffered`).
    public var buffered: Bool?
    /// Timestamps on CLOCK_MONOTONIC (`--monotonic-timestamps`).
    public var monotonic: Bool?

    public init(
        interface: String, pcap: String, filter: String, seconds: Int, snaplen: Int? = nil, buffered: Bool? = nil, monotonic: Bool? = nil
    ) {
        self.interface = interface
        self.pcap = pcap
        self.filter = filter
        self.seconds = seconds
        self.snaplen = snaplen
        self.buffered = buffered
        self.monotonic = monotonic
    }

    public var arguments: [String] {
        ["capture", "--interface", interface, "--pcap", pcap, "--filter", filter, "--seconds", String(seconds)]
            + (snaplen.map { ["--snaplen", String($0)] } ?? []) + (buffered == true ? ["--buffered"] : [])
            + (monotonic == true ? ["--monotonic-timestamps"] : [])
    }
}
