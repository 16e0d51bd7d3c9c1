/// An IPv4 address as a value, in host order for arithmetic.
public struct IPv4Address: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// A multicast group beyond the link-local block: 224.0.1.0-239.255.255.255.
    public var isRoutableMulticast: Bool { value >> 28 == 0xE && value >> 8 != 0xE00000 }

    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    /// Dotted quad, or nil.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        self.value = value
    }

    public var description: String {
        "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }

    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let address = IPv4Address(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not an IPv4 address"))
        }
        self = address
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// An address and UDP port, written `198.18.100.1:5004`.
public struct UDPEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var address: IPv4Address
    public var port: UInt16

    public init(address: IPv4Address, port: UInt16) {
        self.address = address
        self.port = port
    }

    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let address = IPv4Address(String(text[..<colon])),
            let port = UInt16(text[text.index(after: colon)...]), port > 0
        else { return nil }
        self.init(address: address, port: port)
    }

    public var description: String { "\(address):\(port)" }
}

/// Builds and reads whole IPv4/UDP packets, as a tun interface carries them (no link header).
public enum IPv4UDP {
    public static let headerSize = 28

    /// Writes a complete IPv4/UDP packet carrying `payloadLength` bytes already in
    /// `buffer[28...]`: TOS = `tos`, DF set, TTL 64, both checksums computed.
    public static func writeHeaders(
        into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int, source: UDPEndpoint,
        destination: UDPEndpoint, tos: UInt8, identification: UInt16
    ) {
        let total = headerSize + payloadLength
        precondition(total <= 65535 && buffer.count >= total)
        func put16(_ offset: Int, _ value: UInt16) {
            buffer[offset] = UInt8(value >> 8)
            buffer[offset + 1] = UInt8(truncatingIfNeeded: value)
        }
        func put32(_ offset: Int, _ value: UInt32) {
            put16(offset, UInt16(value >> 16))
            put16(offset + 2, UInt16(truncatingIfNeeded: value))
        }
        buffer[0] = 0x45
        buffer[1] = tos
        put16(2, UInt16(total))
        put16(4, identification)
        put16(6, 0x4000)  // don't fragment: the packetizer sizes packets to the path MTU
        buffer[8] = 64
        buffer[9] = 17
        put16(10, 0)
        put32(12, source.address.value)
        put32(16, destination.address.value)
        put16(10, ~onesComplementSum(UnsafeRawBufferPointer(rebasing: buffer[0..<20]), initial: 0).folded)
        put16(20, source.port)
        put16(22, destination.port)
        put16(24, UInt16(8 + payloadLength))
        put16(26, 0)
        // Pseudo header: source, destination, protocol, UDP length.
        var pseudo = UInt32(source.address.value >> 16) + UInt32(source.address.value & 0xFFFF)
        pseudo += UInt32(destination.address.value >> 16) + UInt32(destination.address.value & 0xFFFF)
        pseudo += 17 + UInt32(8 + payloadLength)
        var checksum = ~onesComplementSum(UnsafeRawBufferPointer(rebasing: buffer[20..<total]), initial: pseudo).folded
        if checksum == 0 { checksum = 0xFFFF }  // RFC 768: a computed zero is sent as all ones
        put16(26, checksum)
    }

    /// IPv4 and UDP headers for a packet the kernel will segment (UDP segmentation offload):
    /// lengths cover the whole payload, and the UDP checksum field holds the pseudo-header sum
    /// over that length, uncomplemented, which the kernel completes for every segment.
    public static func writeSegmentedHeaders(
        into buffer: UnsafeMutableRawBufferPointer, payloadLength: Int, source: UDPEndpoint,
        destination: UDPEndpoint, tos: UInt8, identification: UInt16
    ) {
        let total = headerSize + payloadLength
        precondition(total <= 65535 && buffer.count >= total)
        var w = ByteStore(buffer, offset: 0)
        w.u8(0x45)
        w.u8(tos)
        w.u16(UInt16(total))
        w.u16(identification)
        w.u16(0x4000)
        w.u8(64)
        w.u8(17)
        w.u16(0)
        w.u32(source.address.value)
        w.u32(destination.address.value)
        buffer.storeBytes(
            of: (~onesComplementSum(UnsafeRawBufferPointer(rebasing: buffer[0..<20]), initial: 0).folded).bigEndian, toByteOffset: 10,
            as: UInt16.self)
        var pseudo = UInt32(source.address.value >> 16) + UInt32(source.address.value & 0xFFFF)
        pseudo += UInt32(destination.address.value >> 16) + UInt32(destination.address.value & 0xFFFF)
        pseudo += 17 + UInt32(8 + payloadLength)
        var u = ByteStore(buffer, offset: 20)
        u.u16(source.port)
        u.u16(destination.port)
        u.u16(UInt16(8 + payloadLength))
        u.u16(pseudo.folded)
    }

    /// A UDP datagram found in an IPv4 packet.
    public struct Datagram: Equatable {
        public var source: UDPEndpoint
        public var destination: UDPEndpoint
        public var tos: UInt8
        /// Range of the UDP payload within the packet.
        public var payload: Range<Int>
    }

    public enum ParseError: String, Error, Sendable {
        case notIPv4 = "not_ipv4", short, notUDP = "not_udp", fragment, badChecksum = "bad_checksum"
    }

    /// Reads an IPv4 packet that carries a whole UDP datagram, checking both checksums.
    public static func parse(_ packet: UnsafeRawBufferPointer) -> Result<Datagram, ParseError> {
        guard packet.count >= 20, packet[0] >> 4 == 4 else { return .failure(packet.isEmpty ? .short : .notIPv4) }
        let ihl = Int(packet[0] & 0x0F) * 4
        let total = Int(packet[2]) << 8 | Int(packet[3])
        guard ihl >= 20, total >= ihl + 8, packet.count >= total else { return .failure(.short) }
        guard packet[9] == 17 else { return .failure(.notUDP) }
        let fragment = (UInt16(packet[6]) << 8 | UInt16(packet[7])) & 0x3FFF
        guard fragment == 0 else { return .failure(.fragment) }
        guard onesComplementSum(UnsafeRawBufferPointer(rebasing: packet[0..<ihl]), initial: 0).folded == 0xFFFF else {
            return .failure(.badChecksum)
        }
        func get16(_ offset: Int) -> UInt16 { UInt16(packet[offset]) << 8 | UInt16(packet[offset + 1]) }
        func get32(_ offset: Int) -> UInt32 { UInt32(get16(offset)) << 16 | UInt32(get16(offset + 2)) }
        let source = IPv4Address(get32(12))
        let destination = IPv4Address(get32(16))
        let udpLength = Int(get16(ihl + 4))
        guard udpLength >= 8, ihl + udpLength <= total else { return .failure(.short) }
        if get16(ihl + 6) != 0 {
            var pseudo = UInt32(source.value >> 16) + UInt32(source.value & 0xFFFF)
            pseudo += UInt32(destination.value >> 16) + UInt32(destination.value & 0xFFFF) + 17 + UInt32(udpLength)
            let sum = onesComplementSum(UnsafeRawBufferPointer(rebasing: packet[ihl..<(ihl + udpLength)]), initial: pseudo)
            guard sum.folded == 0xFFFF else { return .failure(.badChecksum) }
        }
        return .success(
            Datagram(
                source: UDPEndpoint(address: source, port: get16(ihl)),
                destination: UDPEndpoint(address: destination, port: get16(ihl + 2)), tos: packet[1],
                payload: (ihl + 8)..<(ihl + udpLength)))
    }

    /// The one's-complement sum of 16-bit big-endian words (odd length padded with zero),
    /// plus `initial`, folded to 16 bits. Eight bytes at a time in the machine's order: a
    /// one's-complement sum is the same in either byte order up to a final swap (RFC 1071).
    static func onesComplementSum(_ bytes: UnsafeRawBufferPointer, initial: UInt32) -> UInt32 {
        var sum: UInt64 = 0
        var index = 0
        let count = bytes.count
        while index + 8 <= count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            sum &+= (word & 0xFFFF_FFFF) &+ (word >> 32)
            index += 8
        }
        while index + 2 <= count {
            sum &+= UInt64(bytes.loadUnaligned(fromByteOffset: index, as: UInt16.self))
            index += 2
        }
        // A lone last byte is the high byte of a big-endian word, stored in the machine's order.
        if index < count { sum &+= UInt64(UInt16(bigEndian: UInt16(bytes[index]) << 8)) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        var total = UInt32(UInt16(bigEndian: UInt16(sum))) + (initial & 0xFFFF) + (initial >> 16)
        while total >> 16 != 0 { total = (total & 0xFFFF) + (total >> 16) }
        return total
    }
}

extension UInt32 {
    /// Folds carries into 16 bits.
    var folded: UInt16 {
        var sum = self
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt16(sum)
    }
}
