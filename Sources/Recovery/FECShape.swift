import Foundation

/// The shape of the stream's FEC blocks (`send --fec cols=C,rows=R[,layout=…]`), as SMPTE
/// 2022-1 and SRT's `fec` filter lay them out: a block is `rows` rows of `columns` consecutive
/// packets. A row parity is the XOR of one row (it rebuilds one loss among `columns`
/// packets); a column parity the XOR of one column, packets `columns` apart (one loss among
/// `rows`, a burst up to `columns` long across the block). Both together repair more patterns
/// than either: what one leaves, the other may rebuild, in turns.
public struct FECShape: Sendable, Equatable, Codable, CustomStringConvertible {
    public enum Layout: String, Sendable, Codable, CaseIterable {
        case both, rows, columns
    }

    public var columns: Int
    public var rows: Int
    public var layout: Layout

    public static let `default` = FECShape(columns: 5, rows: 5, layout: .both)
    /// Both at most the parity's 32 positions.
    public static let largest = 32

    public init(columns: Int, rows: Int, layout: Layout = .both) {
        self.columns = columns
        self.rows = rows
        self.layout = layout
    }

    /// Parses `cols=C,rows=R[,layout=both|rows|columns]` (either count may be left out: 5); a
    /// shape of one row is row parity only. Throws a message naming what is wrong.
    public init(parsing text: String) throws {
        var shape = FECShape.default
        var layoutGiven = false
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { throw FECShapeError("'\(part)' in --fec '\(text)' is not key=value (write cols=C,rows=R)") }
            switch pair[0] {
            case "cols", "columns":
                guard let value = Int(pair[1]) else { throw FECShapeError("cols='\(pair[1])' is not a whole number") }
                shape.columns = value
            case "rows":
                guard let value = Int(pair[1]) else { throw FECShapeError("rows='\(pair[1])' is not a whole number") }
                shape.rows = value
            case "layout":
                guard let layout = Layout(rawValue: pair[1]) else {
                    throw FECShapeError("layout='\(pair[1])' is none of \(Layout.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                shape.layout = layout
                layoutGiven = true
            default:
                throw FECShapeError("unknown key '\(pair[0])' in --fec '\(text)' (keys: cols, rows, layout)")
            }
        }
        if !layoutGiven && shape.rows == 1 { shape.layout = .rows }
        try shape.check()
        self = shape
    }

    public func check() throws {
        guard (1...Self.largest).contains(columns) else { throw FECShapeError("cols=\(columns) must be 1 to \(Self.largest)") }
        guard (1...Self.largest).contains(rows) else { throw FECShapeError("rows=\(rows) must be 1 to \(Self.largest)") }
        if layout != .columns && columns < 2 { throw FECShapeError("row parity needs cols of at least 2 (cols=\(columns))") }
        if layout != .rows && rows < 2 { throw FECShapeError("column parity needs rows of at least 2 (rows=\(rows)); for row parity only write layout=rows") }
    }

    /// Packets per block.
    public var blockPackets: Int { columns * rows }

    /// Parity packets per stream packet: what the block shape costs (1/cols for the rows, 1/rows
    /// for the columns), before the parity's own header.
    public var overhead: Double {
        (layout != .columns ? 1 / Double(columns) : 0) + (layout != .rows ? 1 / Double(rows) : 0)
    }

    public var description: String { "cols=\(columns),rows=\(rows),layout=\(layout.rawValue)" }
}

public struct FECShapeError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
