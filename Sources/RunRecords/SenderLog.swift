import Foundation

/// One line of the sender's JSON-lines log (`vnetstream send --log`): what it sent per VNet
/// and second, every receiver report, every change the controller made. Written with
/// JSONEncoder and read back (the live view, the analysis) with JSONDecoder, through this type.
public enum SenderLogEvent: Codable, Sendable, Equatable {
    case sent(Sent)
    case report(Report)
    case control(Control)

    /// Per VNet, what went out since the previous `sent` line.
    public struct Sent: Codable, Sendable, Equatable {
        public var tS: Double
        /// 1-based.
        public var vnet: Int
        public var tun: String
        public var packets: Int
        /// UDP payload bytes.
        public var bytes: Int
        /// The split's weight for this VNet now (normalised).
        public var weight: Double
        /// Reports that came back over this VNet since the previous line.
        public var reports: Int

        public init(tS: Double, vnet: Int, tun: String, packets: Int, bytes: Int, weight: Double, reports: Int) {
            self.tS = tS
            self.vnet = vnet
            self.tun = tun
            self.packets = packets
            self.bytes = bytes
            self.weight = weight
            self.reports = reports
        }

        enum CodingKeys: String, CodingKey {
            case vnet, tun, packets, bytes, weight, reports
            case tS = "t_s"
        }
    }

    /// A receiver report as it arrived.
    public struct Report: Codable, Sendable, Equatable {
        public struct Path: Codable, Sendable, Equatable {
            public var vnet: Int
            public var highest: UInt32
            public var received: UInt32
            public var lost: UInt32
            public var delayUs: Int32
            public var jitterUs: UInt32
            /// How long the path had been idle at the report and its packet time, µs (nil in
            /// logs of wire version 1, and idle before anything arrived).
            public var idleUs: UInt32?
            public var packetTimeUs: UInt32?

            public init(
                vnet: Int, highest: UInt32, received: UInt32, lost: UInt32, delayUs: Int32, jitterUs: UInt32, idleUs: UInt32? = nil,
                packetTimeUs: UInt32? = nil
            ) {
                self.idleUs = idleUs
                self.packetTimeUs = packetTimeUs
                self.vnet = vnet
                self.highest = highest
                self.received = received
                self.lost = lost
                self.delayUs = delayUs
                self.jitterUs = jitterUs
            }

            enum CodingKeys: String, CodingKey {
                case vnet, highest, received, lost
                case delayUs = "delay_us"
                case jitterUs = "jitter_us"
                case idleUs = "idle_us"
                case packetTimeUs = "packet_time_us"
            }
        }

        public var tS: Double
        /// The VNet it came back over (1-based).
        public var overVNet: Int
        public var reportSequence: UInt32
        public var paths: [Path]

        public init(tS: Double, overVNet: Int, reportSequence: UInt32, paths: [Path]) {
            self.tS = tS
            self.overVNet = overVNet
            self.reportSequence = reportSequence
            self.paths = paths
        }

        enum CodingKeys: String, CodingKey {
            case paths
            case tS = "t_s"
            case overVNet = "over_vnet"
            case reportSequence = "report_seq"
        }
    }

    /// A change the controller made.
    public struct Control: Codable, Sendable, Equatable {
        public enum Event: String, Codable, Sendable {
            case dead, alive, capacity, lossy, clean, flapping, steady
        }

        public var tS: Double
        public var vnet: Int
        public var event: Event
        /// The estimate behind a capacity event.
        public var kbitS: Double?
        public var detail: String
        /// The split's weights after the change, one per VNet.
        public var weights: [Double]

        public init(tS: Double, vnet: Int, event: Event, kbitS: Double?, detail: String, weights: [Double]) {
            self.tS = tS
            self.vnet = vnet
            self.event = event
            self.kbitS = kbitS
            self.detail = detail
            self.weights = weights
        }

        enum CodingKeys: String, CodingKey {
            case vnet, event, detail, weights
            case tS = "t_s"
            case kbitS = "kbit_s"
        }
    }

    enum Kind: String, Codable {
        case sent, report, control
    }

    enum KindKey: String, CodingKey { case kind }

    public init(from decoder: Decoder) throws {
        let kind = try decoder.container(keyedBy: KindKey.self).decode(Kind.self, forKey: .kind)
        switch kind {
        case .sent: self = .sent(try Sent(from: decoder))
        case .report: self = .report(try Report(from: decoder))
        case .control: self = .control(try Control(from: decoder))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: KindKey.self)
        switch self {
        case .sent(let sent):
            try container.encode(Kind.sent, forKey: .kind)
            try sent.encode(to: encoder)
        case .report(let report):
            try container.encode(Kind.report, forKey: .kind)
            try report.encode(to: encoder)
        case .control(let control):
            try container.encode(Kind.control, forKey: .kind)
            try control.encode(to: encoder)
        }
    }

    /// One line of JSON (keys sorted, no line breaks).
    public var line: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Reads one line; nil for a line that is not such an event (a torn last line, say).
    public init?(line: some StringProtocol) {
        guard let event = try? JSONDecoder().decode(SenderLogEvent.self, from: Data(line.utf8)) else { return nil }
        self = event
    }
}
