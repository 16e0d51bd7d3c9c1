import Splitting

/// How a stream goes over the VNets: the one send mode of the toolkit, from the experiment
/// files (`uni-net1`, `multi-net`, `static-1:1`, `duplicate`) to `vnetstream send` (`--mode`
/// with `--split` and `--uni`) and the results. It builds the controller that goes with it.
public enum SendMode: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Everything on one VNet (1-based).
    case uni(Int)
    /// The adaptive controller (Docs/controller.md).
    case adaptive
    /// A fixed split, one weight per VNet.
    case fixed(SplitRatio)
    /// Every packet on every VNet.
    case duplicate

    /// The four kinds, as `vnetstream send --mode` names them.
    public enum Kind: String, Sendable, CaseIterable {
        case adaptive, `static`, uni, duplicate
    }

    public var kind: Kind {
        switch self {
        case .uni: .uni
        case .adaptive: .adaptive
        case .fixed: .static
        case .duplicate: .duplicate
        }
    }

    /// The name experiment files and results use.
    public init?(name text: String) {
        if text == "multi-net" {
            self = .adaptive
        } else if text == "duplicate" {
            self = .duplicate
        } else if text.hasPrefix("uni-net"), let n = Int(text.dropFirst(7)), n >= 1 {
            self = .uni(n)
        } else if text.hasPrefix("static-"), let ratio = SplitRatio(String(text.dropFirst(7))) {
            self = .fixed(ratio)
        } else {
            return nil
        }
    }

    public static let namesHelp = "uni-netN, multi-net, static-A:B, duplicate"

    public var name: String {
        switch self {
        case .uni(let n): "uni-net\(n)"
        case .adaptive: "multi-net"
        case .fixed(let ratio): "static-\(ratio)"
        case .duplicate: "duplicate"
        }
    }

    public var description: String { name }

    /// Whether more than one VNet carries the stream (the fluid bound is then the VNets' sum).
    public var usesAllVNets: Bool {
        if case .uni = self { return false }
        return true
    }

    /// The VNet (1-based) a uni-net stream uses.
    public var uniVNet: Int? {
        if case .uni(let n) = self { return n }
        return nil
    }

    /// The `vnetstream send` options that select this mode.
    public var sendArguments: [String] {
        switch self {
        case .uni(let n): ["--mode", "uni", "--uni", String(n)]
        case .adaptive: ["--mode", "adaptive"]
        case .fixed(let ratio): ["--mode", "static", "--split", ratio.description]
        case .duplicate: ["--mode", "duplicate"]
        }
    }

    /// The controller for `vnets` VNets; `adaptive` and `ceilings` (each VNet's reservation,
    /// bits per second) are used by the adaptive mode only.
    public func controller(vnets: Int, adaptive: AdaptiveController.Parameters = .init(), ceilings: [Double?] = []) -> any SplitController {
        switch self {
        case .uni(let n): StaticSplit(weights: (0..<vnets).map { $0 == n - 1 ? 1 : 0 })
        case .adaptive: AdaptiveController(vnets: vnets, parameters: adaptive, ceilings: ceilings)
        case .fixed(let ratio): StaticSplit(weights: ratio.weights)
        case .duplicate: DuplicateSplit(vnets: vnets)
        }
    }

    /// The weights the split starts with.
    public func initialWeights(vnets: Int) -> [Double] {
        switch self {
        case .uni(let n): (0..<vnets).map { $0 == n - 1 ? 1 : 0 }
        case .fixed(let ratio): ratio.weights
        case .adaptive, .duplicate: Array(repeating: 1, count: vnets)
        }
    }
}

extension SendMode: Codable {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let mode = SendMode(name: text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not a mode (\(Self.namesHelp))"))
        }
        self = mode
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}
