import Foundation
import TOMLKit

/// The keys a section of a TOML file may hold, and the sections (tables, or arrays of tables)
/// nested in it: so that a typo is refused with the file, the section, the key and the nearest
/// valid key, rather than ignored (a misspelt `dead_s` would silently leave the default).
public struct KeySchema: Sendable {
    public var keys: [String]
    public var sections: [String: KeySchema]

    public init(keys: [String], sections: [String: KeySchema] = [:]) {
        self.keys = keys
        self.sections = sections
    }

    /// The keys of a CodingKeys enum (the sections' keys among them are taken as sections).
    public init<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type, sections: [String: KeySchema] = [:], also extra: [String] = []) {
        self.keys = Keys.allCases.map(\.stringValue).filter { sections[$0] == nil } + extra
        self.sections = sections
    }
}

/// A file type whose keys are checked against its schema as it is read (`loadTOML`).
public protocol KnownKeys {
    static var keySchema: KeySchema { get }
}

enum UnknownKeys {
    /// Throws at the first key the schema does not know: `FILE:LINE: [[vnet]] 1: unknown key
    /// 'dead_sec' (did you mean 'dead_s'?)`.
    static func check(_ text: String, schema: KeySchema, file: String) throws {
        let table = try TOMLTable(string: text)
        try check(table, schema: schema, section: "", file: file, text: text)
    }

    private static func check(_ table: TOMLTable, schema: KeySchema, section: String, file: String, text: String) throws {
        for key in table.keys.sorted() {
            if let nested = schema.sections[key] {
                if let subtable = table[key]?.table {
                    try check(subtable, schema: nested, section: "[\(key)]", file: file, text: text)
                } else if let array = table[key]?.array {
                    for index in 0..<array.count {
                        guard let element = array[index].table else { continue }
                        try check(element, schema: nested, section: "[[\(key)]] \(index + 1)", file: file, text: text)
                    }
                }
                continue
            }
            guard !schema.keys.contains(key) else { continue }
            let valid = schema.keys + schema.sections.keys.sorted()
            let suggestion = nearest(key, in: valid).map { " (did you mean '\($0)'?)" } ?? " (valid keys: \(valid.joined(separator: ", ")))"
            let line = lineNumber(of: key, in: text).map { ":\($0)" } ?? ""
            throw LabError("\(file)\(line): \(section.isEmpty ? "" : section + ": ")unknown key '\(key)'\(suggestion)")
        }
    }

    /// The first line that sets `key`.
    static func lineNumber(of key: String, in text: String) -> Int? {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix(key) else { continue }
            let rest = trimmed.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }
            if rest.first == "=" { return index + 1 }
        }
        return nil
    }

    /// The valid key closest to `key` by edit distance, if close enough to be a typo.
    static func nearest(_ key: String, in valid: [String]) -> String? {
        let scored = valid.map { ($0, distance(key, $0)) }.min { $0.1 < $1.1 }
        guard let (best, d) = scored, d <= max(2, key.count / 3) else { return nil }
        return best
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(1, b.count) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}

extension KeyedDecodingContainer {
    /// A number written either way in TOML (`30` or `30.0`): TOMLKit reads an integer only as
    /// an integer.
    public func number(_ key: Key) throws -> Double? {
        guard contains(key) else { return nil }
        if let whole = try? decode(Int.self, forKey: key) { return Double(whole) }
        return try decode(Double.self, forKey: key)
    }
}
