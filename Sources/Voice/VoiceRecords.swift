import RunRecords

/// One RTP packet of a call where it was seen (`vnetstream voice recv --packet-log`, or a
/// monitoring node's copy at a VNet's exit): enough to account the call again, or any part of it.
public struct VoicePacket: CSVRecord, Equatable {
    public var ssrc: UInt32
    public var sequence: UInt16
    public var timestamp: UInt32
    /// The send time the payload carries (CLOCK_MONOTONIC ns); nil when it carried none.
    public var sendNanoseconds: UInt64?
    /// When it was seen (CLOCK_MONOTONIC ns).
    public var arrivalNanoseconds: UInt64

    public init(ssrc: UInt32, sequence: UInt16, timestamp: UInt32, sendNanoseconds: UInt64?, arrivalNanoseconds: UInt64) {
        self.ssrc = ssrc
        self.sequence = sequence
        self.timestamp = timestamp
        self.sendNanoseconds = sendNanoseconds
        self.arrivalNanoseconds = arrivalNanoseconds
    }

    /// The packet in an RTP datagram's bytes (a G.711 one), seen at `arrivalNanoseconds`.
    public init?(datagram bytes: [UInt8], arrivalNanoseconds: UInt64) {
        guard let (header, offset) = RTPHeader.decode(bytes), header.payloadType == G711Voice.payloadType else { return nil }
        self.init(
            ssrc: header.ssrc, sequence: header.sequence, timestamp: header.timestamp, sendNanoseconds: G711Voice.sendNanoseconds(payload: bytes[offset...]),
            arrivalNanoseconds: arrivalNanoseconds)
    }

    public var header: RTPHeader { RTPHeader(payloadType: G711Voice.payloadType, sequence: sequence, timestamp: timestamp, ssrc: ssrc) }

    public static let csvHeader = "ssrc,seq,rtp_ts,send_ns,arrival_ns"
    public var csvRow: String { "\(ssrc),\(sequence),\(timestamp),\(sendNanoseconds.map(String.init) ?? ""),\(arrivalNanoseconds)" }
    public init?(csvFields f: [Substring]) {
        guard let ssrc = UInt32(f[0]), let sequence = UInt16(f[1]), let timestamp = UInt32(f[2]), let arrival = UInt64(f[4]) else { return nil }
        let send = f[3].isEmpty ? nil : UInt64(f[3])
        if !f[3].isEmpty && send == nil { return nil }
        self.init(ssrc: ssrc, sequence: sequence, timestamp: timestamp, sendNanoseconds: send, arrivalNanoseconds: arrival)
    }
}

extension VoiceAccounting {
    public mutating func arrived(_ packet: VoicePacket) {
        arrived(packet.header, sendNanoseconds: packet.sendNanoseconds, arrivalNanoseconds: packet.arrivalNanoseconds)
    }
}
