import Capture
import Foundation
import Lab
import Pacing
import Packets
import RunRecords
import Units

/// `results.json` of a class experiment: units in key names.
public struct ClassResults: Codable, Sendable {
    public var kind = ClassExperiment.kind
    public var schemaVersion = ResultsSchema.version
    public var experiment: String
    public var description: String?
    public var provenance: Provenance
    /// Whether the queues were RED (the kernel has sch_red) or tail drop standing in for it.
    public var red: Bool
    public var packetsPerClass: Int
    public var packetsPerSecond: Double
    public var packetBytes: Int
    public var arrivals: Arrivals
    public var classes: [ClassFigures]
    /// How often the sender fell over 50 ms behind and moved its schedule later (a slow or
    /// loaded machine, or emulation), and by how much in all: the stream stayed at its rate.
    public var senderScheduleShifts: Int?
    public var senderScheduleShiftS: Double?
    /// Per VNet, what the captures inside it saw, by TOS byte.
    public var captures: [VNetCapture]
    public var definitions: [String: String]

    public struct ClassFigures: Codable, Sendable, Equatable {
        public var name: String
        public var tt: String
        public var tos: Int
        public var sensitive: Sensitivity
        public var vnet: String
        public var queue: String
        public var sent: Int
        public var received: Int
        public var lossPct: Double
        public var delayMsMean: Double?
        public var delayMsP50: Double?
        public var delayMsP99: Double?
        public var delayMsMax: Double?
        public var paperLossPct: Double?
        public var paperDelayMs: Double?

        enum CodingKeys: String, CodingKey {
            case name, tt, tos, sensitive, vnet, queue, sent, received
            case lossPct = "loss_pct"
            case delayMsMean = "delay_ms_mean"
            case delayMsP50 = "delay_ms_p50"
            case delayMsP99 = "delay_ms_p99"
            case delayMsMax = "delay_ms_max"
            case paperLossPct = "paper_loss_pct"
            case paperDelayMs = "paper_delay_ms"
        }
    }

    public struct VNetCapture: Codable, Sendable, Equatable {
        public var vnet: String
        /// node:interface, inbound.
        public var point: String
        public var file: String
        /// Packets of the experiment's port seen, by TOS byte (as a decimal string).
        public var packetsByTOS: [String: Int]

        enum CodingKeys: String, CodingKey {
            case vnet, point, file
            case packetsByTOS = "packets_by_tos"
        }
    }

    enum CodingKeys: String, CodingKey {
        case kind, experiment, description, provenance, red, arrivals, classes, captures, definitions
        case schemaVersion = "schema_version"
        case packetsPerClass = "packets_per_class"
        case packetsPerSecond = "packets_per_second"
        case packetBytes = "packet_bytes"
        case senderScheduleShifts = "sender_schedule_shifts"
        case senderScheduleShiftS = "sender_schedule_shift_s"
    }

    public static let definitionTexts = [
        "loss_pct": "packets of the class sent that never arrived, over those sent",
        "delay_ms": "one-way delay of the packets that arrived: the receiver's CLOCK_MONOTONIC after recvmsg minus the sender's just before sendto (one clock: the namespaces share it)",
        "captures": "libpcap captures (inbound) at each VNet's ingress router, on the link from the edge and on every link leaving it: what entered the VNet and which path it took",
    ]

    public static func load(_ path: String) throws -> ClassResults { try loadDocument(path, kind: "class results document") }
}

extension ClassResults: ResultsDocument {}

/// Per class loss and one-way delay from the sender's and receiver's packet logs.
public enum ClassAnalysis {
    public struct Figures: Equatable {
        public var sent: Int
        public var received: Int
        public var lossPct: Double
        public var delaysMs: [Double]

        public func percentile(_ p: Double) -> Double? {
            nearestRank(p, ofSorted: delaysMs.sorted())
        }

        public var mean: Double? { delaysMs.isEmpty ? nil : delaysMs.reduce(0, +) / Double(delaysMs.count) }
    }

    /// `sent`: `mono_ns,stream,seq,bytes,tos` (send-marked); `received`: the receiver's packet
    /// log (`mono_ns,stream_seq,...,stream`). Duplicates count once, at their first arrival.
    public static func figures(sentLog: String, receivedLog: String) throws -> [UInt32: Figures] {
        var sentAt: [UInt32: [UInt64]] = [:]
        for (index, packet) in try CSVLog.read(MarkedPacket.self, from: sentLog).enumerated() {
            var times = sentAt[packet.stream] ?? []
            guard Int(packet.sequence) == times.count else {
                throw RecordError("\(sentLog):\(index + 2): sequence \(packet.sequence) of stream \(packet.stream) out of order")
            }
            times.append(packet.monotonicNanoseconds)
            sentAt[packet.stream] = times
        }
        var seen: [UInt32: Set<UInt32>] = [:]
        var delays: [UInt32: [Double]] = [:]
        for packet in try CSVLog.read(ReceivedPacket.self, from: receivedLog) {
            let stream = packet.stream
            let seq = packet.streamSequence
            guard let times = sentAt[stream], Int(seq) < times.count, seen[stream, default: []].insert(seq).inserted else { continue }
            delays[stream, default: []].append((Double(packet.monotonicNanoseconds) - Double(times[Int(seq)])) / 1e6)
        }
        var result: [UInt32: Figures] = [:]
        for (stream, times) in sentAt {
            let got = delays[stream] ?? []
            result[stream] = Figures(
                sent: times.count, received: got.count, lossPct: 100 * Double(times.count - got.count) / Double(times.count), delaysMs: got)
        }
        return result
    }

    /// Packets to `port` in a capture, by TOS byte.
    public static func packetsByTOS(pcap: String, port: UInt16) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for packet in try PcapFile.ipv4Packets(pcap) where packet.ipProtocol == 17 && packet.destinationPort == port {
            counts[String(packet.tos), default: 0] += 1
        }
        return counts
    }
}

