import Foundation

/// One packet the sender put into a tun, from its packet log.
public struct SentPacket: Sendable, Equatable {
    /// Seconds since the stream's time zero.
    public var t: Double
    public var streamSequence: UInt32
    /// 1-based.
    public var vnet: Int
    public var pathSequence: UInt32
    /// IPv4 bytes.
    public var bytes: Int
    /// A probe's copy (train padding, or a probe of a dead VNet), not part of the split.
    public var copy: Bool
    /// The tun did not take it.
    public var localDrop: Bool
}

/// One packet of the stream the receiver took in, from its packet log.
public struct ReceivedPacket: Sendable, Equatable {
    /// CLOCK_MONOTONIC nanoseconds at arrival.
    public var monotonicNanoseconds: UInt64
    public var streamSequence: UInt32
    public var vnet: Int
    public var pathSequence: UInt32
    public var bytes: Int
}

public struct LogError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reads the CSV packet logs that `vnetstream send --packet-log` and `recv --packet-log` write.
public enum PacketLogs {
    static func rows(_ path: String, header expected: String) throws -> [(line: Int, fields: [Substring])] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw LogError("\(path): cannot read: \(error.localizedDescription)")
        }
        var rows: [(Int, [Substring])] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if index == 0 {
                guard line == expected else { throw LogError("\(path):1: expected the header '\(expected)', found '\(line)'") }
                continue
            }
            if line.isEmpty { continue }
            rows.append((index + 1, line.split(separator: ",", omittingEmptySubsequences: false)))
        }
        return rows
    }

    public static let sentHeader = "t_s,stream_seq,vnet,path_seq,frame,bytes,copy"
    public static let receivedHeader = "mono_ns,stream_seq,vnet,path_seq,frame,bytes,tos,stream"

    public static func sent(_ path: String) throws -> [SentPacket] {
        try rows(path, header: sentHeader).map { line, f in
            guard f.count >= 7, let t = Double(f[0]), let stream = UInt32(f[1]), let vnet = Int(f[2]), let pathSeq = UInt32(f[3]),
                let bytes = Int(f[5]), let copy = Int(f[6])
            else { throw LogError("\(path):\(line): not a sent-packet line") }
            return SentPacket(
                t: t, streamSequence: stream, vnet: vnet, pathSequence: pathSeq, bytes: bytes, copy: copy == 1,
                localDrop: f.count > 7 && f[7] == "local_drop")
        }
    }

    public static func received(_ path: String) throws -> [ReceivedPacket] {
        try rows(path, header: receivedHeader).map { line, f in
            guard f.count >= 6, let mono = UInt64(f[0]), let stream = UInt32(f[1]), let vnet = Int(f[2]), let pathSeq = UInt32(f[3]),
                let bytes = Int(f[5])
            else { throw LogError("\(path):\(line): not a received-packet line") }
            return ReceivedPacket(monotonicNanoseconds: mono, streamSequence: stream, vnet: vnet, pathSequence: pathSeq, bytes: bytes)
        }
    }
}
