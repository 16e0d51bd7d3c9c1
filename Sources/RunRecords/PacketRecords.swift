import Foundation
import Units

/// A row of a CSV packet log. The header is declared once, here, next to the row it names;
/// the process that writes the log and every reader of it use the same type.
public protocol CSVRecord: Sendable {
    static var csvHeader: String { get }
    /// The row, without its line end; as many fields as the header has columns.
    var csvRow: String { get }
    /// Reads a row's fields; nil when they are not such a row.
    init?(csvFields fields: [Substring])
}

extension CSVRecord {
    public static var csvColumns: Int { csvHeader.split(separator: ",").count }
}

/// Reads CSV packet logs: the header checked, every row parsed, a bad row named by file and line.
public enum CSVLog {
    public static func read<Record: CSVRecord>(_ type: Record.Type, from path: String) throws -> [Record] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw RecordError("\(path): cannot read: \(error.localizedDescription)")
        }
        var records: [Record] = []
        var columns = Record.csvColumns
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if index == 0 {
                // A log from before the last columns were added has the header's first columns.
                guard line == Record.csvHeader || (!line.isEmpty && Record.csvHeader.hasPrefix(line + ",")) else {
                    throw RecordError("\(path):1: expected the header '\(Record.csvHeader)', found '\(line)'")
                }
                columns = line.split(separator: ",").count
                continue
            }
            if line.isEmpty { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count == columns, let record = Record(csvFields: fields) else {
                throw RecordError("\(path):\(index + 1): not a row of '\(Record.csvHeader)' (\(fields.count) fields): \(line.prefix(120))")
            }
            records.append(record)
        }
        return records
    }
}

/// One packet the sender put into a tun (`vnetstream send --packet-log`).
public struct SentPacket: CSVRecord, Equatable {
    /// Seconds since the stream's time zero.
    public var t: Double
    public var streamSequence: UInt32
    /// 1-based.
    public var vnet: Int
    public var pathSequence: UInt32
    public var frame: UInt32
    /// IPv4 bytes.
    public var bytes: Int
    /// A probe's copy (train padding, or a probe of a dead VNet), not part of the split.
    public var copy: Bool
    /// The tun did not take it.
    public var localDrop: Bool
    /// A retransmission (`--recovery`): the stream's packet again, not part of the split.
    public var resent: Bool
    /// A parity packet (`--recovery fec`): its stream sequence is the first it protects.
    public var parity: Bool

    public init(
        t: Double, streamSequence: UInt32, vnet: Int, pathSequence: UInt32, frame: UInt32, bytes: Int, copy: Bool, localDrop: Bool, resent: Bool = false,
        parity: Bool = false
    ) {
        self.parity = parity
        self.t = t
        self.streamSequence = streamSequence
        self.vnet = vnet
        self.pathSequence = pathSequence
        self.frame = frame
        self.bytes = bytes
        self.copy = copy
        self.localDrop = localDrop
        self.resent = resent
    }

    public static let csvHeader = "t_s,stream_seq,vnet,path_seq,frame,bytes,copy,local_drop,resent,parity"

    public var csvRow: String {
        "\(t.plainText(places: 6)),\(streamSequence),\(vnet),\(pathSequence),\(frame),\(bytes),\(copy ? 1 : 0),\(localDrop ? 1 : 0),\(resent ? 1 : 0),\(parity ? 1 : 0)"
    }

    public init?(csvFields f: [Substring]) {
        guard let t = Double(f[0]), let stream = UInt32(f[1]), let vnet = Int(f[2]), let path = UInt32(f[3]), let frame = UInt32(f[4]),
            let bytes = Int(f[5]), let copy = Int(f[6]), let drop = Int(f[7])
        else { return nil }
        let resent = f.count > 8 ? Int(f[8]) : 0
        let parity = f.count > 9 ? Int(f[9]) : 0
        guard let resent, let parity else { return nil }
        self.init(
            t: t, streamSequence: stream, vnet: vnet, pathSequence: path, frame: frame, bytes: bytes, copy: copy == 1, localDrop: drop == 1,
            resent: resent == 1, parity: parity == 1)
    }
}

/// One media packet the receiver took in (`vnetstream recv --packet-log`).
public struct ReceivedPacket: CSVRecord, Equatable {
    /// CLOCK_MONOTONIC nanoseconds at arrival.
    public var monotonicNanoseconds: UInt64
    public var streamSequence: UInt32
    public var vnet: Int
    public var pathSequence: UInt32
    public var frame: UInt32
    /// IPv4 bytes.
    public var bytes: Int
    /// The TOS byte it arrived with (nil: the kernel did not say).
    public var tos: UInt8?
    public var stream: UInt32
    /// A retransmission (`--recovery`).
    public var resent: Bool
    /// A parity packet (`--recovery fec`).
    public var parity: Bool

    public init(
        monotonicNanoseconds: UInt64, streamSequence: UInt32, vnet: Int, pathSequence: UInt32, frame: UInt32, bytes: Int, tos: UInt8?,
        stream: UInt32, resent: Bool = false, parity: Bool = false
    ) {
        self.parity = parity
        self.monotonicNanoseconds = monotonicNanoseconds
        self.streamSequence = streamSequence
        self.vnet = vnet
        self.pathSequence = pathSequence
        self.frame = frame
        self.bytes = bytes
        self.tos = tos
        self.stream = stream
        self.resent = resent
    }

    public static let csvHeader = "mono_ns,stream_seq,vnet,path_seq,frame,bytes,tos,stream,resent,parity"

    public var csvRow: String {
        "\(monotonicNanoseconds),\(streamSequence),\(vnet),\(pathSequence),\(frame),\(bytes),\(tos.map(String.init) ?? ""),\(stream),\(resent ? 1 : 0),\(parity ? 1 : 0)"
    }

    public init?(csvFields f: [Substring]) {
        guard let mono = UInt64(f[0]), let sequence = UInt32(f[1]), let vnet = Int(f[2]), let path = UInt32(f[3]), let frame = UInt32(f[4]),
            let bytes = Int(f[5]), let stream = UInt32(f[7])
        else { return nil }
        let tos: UInt8? = f[6].isEmpty ? nil : UInt8(f[6])
        if !f[6].isEmpty && tos == nil { return nil }
        let resent = f.count > 8 ? Int(f[8]) : 0
        let parity = f.count > 9 ? Int(f[9]) : 0
        guard let resent, let parity else { return nil }
        self.init(
            monotonicNanoseconds: mono, streamSequence: sequence, vnet: vnet, pathSequence: path, frame: frame, bytes: bytes, tos: tos,
            stream: stream, resent: resent == 1, parity: parity == 1)
    }
}

/// One packet a marked sender sent from its plain socket (`vnetstream send-marked --packet-log`).
public struct MarkedPacket: CSVRecord, Equatable {
    /// CLOCK_MONOTONIC nanoseconds just before sendto.
    public var monotonicNanoseconds: UInt64
    /// 1-based, in --tt order.
    public var stream: UInt32
    public var sequence: UInt32
    /// IPv4 bytes.
    public var bytes: Int
    public var tos: UInt8
    /// The kernel did not take it (socket buffer full, or no route).
    public var localDrop: Bool

    public init(monotonicNanoseconds: UInt64, stream: UInt32, sequence: UInt32, bytes: Int, tos: UInt8, localDrop: Bool) {
        self.monotonicNanoseconds = monotonicNanoseconds
        self.stream = stream
        self.sequence = sequence
        self.bytes = bytes
        self.tos = tos
        self.localDrop = localDrop
    }

    public static let csvHeader = "mono_ns,stream,seq,bytes,tos,local_drop"

    public var csvRow: String { "\(monotonicNanoseconds),\(stream),\(sequence),\(bytes),\(tos),\(localDrop ? 1 : 0)" }

    public init?(csvFields f: [Substring]) {
        guard let mono = UInt64(f[0]), let stream = UInt32(f[1]), let sequence = UInt32(f[2]), let bytes = Int(f[3]), let tos = UInt8(f[4]),
            let drop = Int(f[5])
        else { return nil }
        self.init(monotonicNanoseconds: mono, stream: stream, sequence: sequence, bytes: bytes, tos: tos, localDrop: drop == 1)
    }
}
