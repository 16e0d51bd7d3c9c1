import Foundation

/// An RTP packet's fixed header (RFC 3550 section 5.1): version 2, no padding, no extension,
/// no CSRCs. Pure codec.
public struct RTPHeader: Sendable, Equatable {
    public static let size = 12
    public var marker: Bool
    public var payloadType: UInt8
    public var sequence: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32

    public init(marker: Bool = false, payloadType: UInt8, sequence: UInt16, timestamp: UInt32, ssrc: UInt32) {
        self.marker = marker
        self.payloadType = payloadType
        self.sequence = sequence
        self.timestamp = timestamp
        self.ssrc = ssrc
    }

    public var encoded: [UInt8] {
        [0x80, (marker ? 0x80 : 0) | (payloadType & 0x7f), UInt8(sequence >> 8), UInt8(sequence & 0xff)]
            + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: timestamp >> $0) } + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: ssrc >> $0) }
    }

    /// The header at the start of `bytes`, or nil when it is not RTP version 2 with a whole
    /// fixed header (and its CSRC list, which is skipped).
    public static func decode(_ bytes: [UInt8]) -> (header: RTPHeader, payloadOffset: Int)? {
        guard bytes.count >= size, bytes[0] >> 6 == 2 else { return nil }
        let csrcs = Int(bytes[0] & 0x0f)
        let offset = size + 4 * csrcs + (bytes[0] & 0x10 != 0 ? 4 : 0)
        guard bytes.count >= offset else { return nil }
        func u32(_ at: Int) -> UInt32 { bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        let header = RTPHeader(
            marker: bytes[1] & 0x80 != 0, payloadType: bytes[1] & 0x7f, sequence: UInt16(bytes[2]) << 8 | UInt16(bytes[3]), timestamp: u32(4),
            ssrc: u32(8))
        return (header, offset)
    }
}

/// G.711 µ-law over RTP as a VoIP phone sends it (pjsip's default): payload type 0, 20 ms of
/// voice per packet, 160 bytes of payload, timestamps at 8 kHz. The payload is µ-law silence
/// (0xFF) except its first 8 bytes, which carry the send time (CLOCK_MONOTONIC ns), so that the
/// receiver measures one-way delay without a log of the sender's.
public enum G711Voice {
    public static let payloadType: UInt8 = 0
    public static let payloadBytes = 160
    public static let packetMs = 20.0
    public static let clockRate = 8000.0
    /// On the wire: IPv4 20 + UDP 8 + RTP 12 + 160 (80 kbit/s at 50 packets a second, as the paper says with Ethernet).
    public static let ipBytes = 20 + 8 + RTPHeader.size + payloadBytes

    /// Packet `index` of a call (0-based) as sent at `sendNanoseconds`.
    public static func packet(index: Int, ssrc: UInt32, firstSequence: UInt16, firstTimestamp: UInt32, sendNanoseconds: UInt64) -> [UInt8] {
        let header = RTPHeader(
            marker: index == 0, payloadType: payloadType, sequence: firstSequence &+ UInt16(truncatingIfNeeded: index),
            timestamp: firstTimestamp &+ UInt32(truncatingIfNeeded: index * payloadBytes), ssrc: ssrc)
        var payload = [UInt8](repeating: 0xFF, count: payloadBytes)
        for i in 0..<8 { payload[i] = UInt8(truncatingIfNeeded: sendNanoseconds >> (56 - 8 * UInt64(i))) }
        return header.encoded + payload
    }

    /// The send time a packet of ours carries.
    public static func sendNanoseconds(payload: ArraySlice<UInt8>) -> UInt64? {
        guard payload.count >= 8 else { return nil }
        return payload.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
