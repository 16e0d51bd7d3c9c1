import Foundation
import Lab
import RunRecords

/// An experiment of traffic classes (`kind = "classes"`, e.g. `Experiments/paper-qos-classes.toml`):
/// one stream per class of the topology, marked with the class's TT field and sent from plain
/// sockets at the edge, which classifies them into their VNets; per class, loss and one-way delay.
public struct ClassExperimentFile: Decodable, Sendable {
    public var name: String
    public var description: String?
    /// Relative to the experiment file; it must declare `[[class]]`es.
    public var topology: String
    /// Packets per class, their rate (per class), their IPv4 size, and their spacing.
    public var packets: Int
    public var packetsPerSecond: Double
    public var packetBytes: Int
    public var arrivals: Arrivals
    public var seed: Int
    public var startLeadS: Double
    public var classes: [Class]

    /// A class of the topology, with the paper's figures for it (Table I) if any.
    public struct Class: Decodable, Sendable {
        public var name: String
        public var paperLossPct: Double?
        public var paperDelayMs: Double?
        /// What this class is for: it must see less `loss` or less `delay` than the others.
        public var sensitive: Sensitivity

        enum CodingKeys: String, CodingKey, CaseIterable {
            case name, sensitive
            case paperLossPct = "paper_loss_pct"
            case paperDelayMs = "paper_delay_ms"
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            let text = try c.decode(String.self, forKey: .sensitive)
            guard let value = Sensitivity(rawValue: text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: c.codingPath + [CodingKeys.sensitive], debugDescription: "sensitive is loss or delay, not '\(text)'"))
            }
            sensitive = value
            paperLossPct = try c.number(.paperLossPct)
            paperDelayMs = try c.number(.paperDelayMs)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, topology, packets, arrivals, seed
        case packetsPerSecond = "packets_per_second"
        case packetBytes = "packet_bytes"
        case startLeadS = "start_lead_s"
        case classes = "class"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        topology = try c.decode(String.self, forKey: .topology)
        packets = Int(try c.number(.packets) ?? 10_000)
        packetsPerSecond = try c.number(.packetsPerSecond) ?? 450
        packetBytes = Int(try c.number(.packetBytes) ?? 256)
        let arrivalsText = try c.decodeIfPresent(String.self, forKey: .arrivals) ?? "constant"
        guard let arrivals = Arrivals(rawValue: arrivalsText) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: c.codingPath + [CodingKeys.arrivals], debugDescription: "arrivals is constant or poisson, not '\(arrivalsText)'"))
        }
        self.arrivals = arrivals
        seed = Int(try c.number(.seed) ?? 1)
        startLeadS = try c.number(.startLeadS) ?? 3
        classes = try c.decode([Class].self, forKey: .classes)
    }

    public static func load(_ path: String) throws -> ClassExperimentFile {
        let file = try loadTOML(ClassExperimentFile.self, from: path, kind: "class experiment")
        func fail(_ message: String) -> LabError { LabError("\(path): \(message)") }
        guard file.packets > 0, file.packetsPerSecond > 0, file.startLeadS > 0 else {
            throw fail("packets, packets_per_second and start_lead_s must be positive")
        }
        guard (64...1500).contains(file.packetBytes) else { throw fail("packet_bytes must be 64-1500") }
        guard !file.classes.isEmpty else { throw fail("name at least one [[class]] of the topology") }
        return file
    }
}


/// What a class is for: it must see less loss, or less delay, than the others.
public enum Sensitivity: String, Codable, Sendable {
    case loss, delay
}

extension ClassExperimentFile: KnownKeys {
    public static var keySchema: KeySchema { KeySchema(CodingKeys.self, sections: ["class": KeySchema(Class.CodingKeys.self)], also: ["kind"]) }
}
