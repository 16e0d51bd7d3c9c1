/// The frame types of one group of pictures in display order, as `--gop` spells it
/// (`IBBPBBPBBPBB`): what the sender assumes of a trace that does not say (TKN terse, CBR).
public struct GoPPattern: Sendable, Equatable, CustomStringConvertible {
    public let types: [FrameType]

    /// MPEG-4's usual group (N = 12, M = 3), which the TKN traces were encoded with.
    public static let mpeg4 = GoPPattern(validated: Array("IBBPBBPBBPBB").map { FrameType(letter: UInt8(ascii: $0.unicodeScalars.first!))! })

    private init(validated types: [FrameType]) { self.types = types }

    /// Reads a pattern: an `I`, then any `P` and `B` letters (case-insensitive), at most 1024.
    public init(_ text: String) throws {
        let letters = Array(text.utf8)
        guard let first = letters.first else { throw GoPPatternError("a GoP pattern must not be empty; write it like IBBPBBPBBPBB") }
        guard letters.count <= 1024 else { throw GoPPatternError("a GoP pattern of \(letters.count) frames is longer than 1024") }
        var types: [FrameType] = []
        for (index, letter) in letters.enumerated() {
            guard let type = FrameType(letter: letter), type == .i || type == .p || type == .b else {
                throw GoPPatternError("GoP pattern \(text): frame \(index + 1) is '\(Character(Unicode.Scalar(letter)))'; only I, P and B are allowed")
            }
            types.append(type)
        }
        guard FrameType(letter: first) == .i, !types.dropFirst().contains(.i) else {
            throw GoPPatternError("GoP pattern \(text) must start with its only I frame (like IBBPBBPBBPBB)")
        }
        self.types = types
    }

    public var description: String { types.map(\.rawValue).joined() }
}

extension FrameTrace {
    /// Whether any frame has a coding type (I, P or B).
    public var hasFrameTypes: Bool { frames.contains { $0.type == .i || $0.type == .p || $0.type == .b } }

    /// The trace with `pattern` laid over its frames in display order, every frame of unknown
    /// type taking the pattern's type at its position. Frames that had a type keep it. The rows
    /// keep their order (a trace without types is in display order).
    public func assigning(_ pattern: GoPPattern) -> FrameTrace {
        var trace = self
        for (position, index) in displayOrder.enumerated() where trace.frames[index].type == .unknown {
            trace.frames[index].type = pattern.types[position % pattern.types.count]
        }
        trace.notes.append("frame types from the GoP pattern \(pattern) in display order")
        return trace
    }
}

/// A `--gop` pattern that does not read, and how to write it.
public struct GoPPatternError: Error, CustomStringConvertible, Equatable, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
