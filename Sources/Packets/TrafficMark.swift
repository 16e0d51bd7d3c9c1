/// The TT field: the IPv4 TOS byte a packet is marked with, which classifies it into a VNet.
///
/// Written as a DSCP name (`EF`, `AF41`, `CS5`, `LE`, `BE`), which sets the top six bits
/// (TOS = DSCP << 2), or as the whole TOS byte in decimal or hex (`184`, `0xb8`).
public struct TrafficMark: Sendable, Hashable, CustomStringConvertible, Codable {
    public var tos: UInt8

    public init(tos: UInt8) { self.tos = tos }
    public init(dscp: UInt8) { self.tos = dscp << 2 }

    public var dscp: UInt8 { tos >> 2 }

    public static let bestEffort = TrafficMark(tos: 0)

    static let names: [(String, UInt8)] = {
        var names: [(String, UInt8)] = [("BE", 0), ("DF", 0), ("EF", 46), ("VA", 44), ("LE", 1)]
        for cls in 1...7 { names.append(("CS\(cls)", UInt8(cls * 8))) }
        for cls in 1...4 { for drop in 1...3 { names.append(("AF\(cls)\(drop)", UInt8(cls * 8 + drop * 2))) } }
        return names
    }()

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws {
        let upper = text.uppercased()
        if let (_, dscp) = Self.names.first(where: { $0.0 == upper }) {
            self.init(dscp: dscp)
            return
        }
        let value: Int? = upper.hasPrefix("0X") ? Int(upper.dropFirst(2), radix: 16) : Int(upper)
        guard let value, (0...255).contains(value) else {
            throw ParseError(
                description: "'\(text)' is not a TT mark: give a DSCP name (EF, AF11-AF43, CS0-CS7, VA, LE, BE) "
                    + "or the TOS byte as a number from 0 to 255 (e.g. 184 or 0xb8)")
        }
        self.init(tos: UInt8(value))
    }

    /// `EF (TOS 0xb8)`, or `TOS 0x05` when no DSCP name fits.
    public var description: String {
        let hex = String(tos, radix: 16)
        let byte = "TOS 0x" + (hex.count == 1 ? "0" : "") + hex
        if tos & 0x03 == 0, let (name, _) = Self.names.first(where: { $0.1 == dscp && $0.0 != "DF" }) {
            return "\(name) (\(byte))"
        }
        return byte
    }

    public init(from decoder: Decoder) throws { tos = try decoder.singleValueContainer().decode(UInt8.self) }
    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(tos)
    }
}
