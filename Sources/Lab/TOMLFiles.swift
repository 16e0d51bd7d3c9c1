import Foundation
import TOMLKit

/// Decodes a TOML file; errors name the file (and the line, for syntax errors).
public func loadTOML<T: Decodable>(_ type: T.Type, from path: String, kind: String) throws -> T {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw LabError("\(path): cannot read: \(error.localizedDescription)")
    }
    do {
        // Unknown keys first: a misspelt required key would otherwise read as a missing one.
        if let known = T.self as? KnownKeys.Type { try UnknownKeys.check(text, schema: known.keySchema, file: path) }
        return try TOMLDecoder().decode(T.self, from: text)
    } catch let error as TOMLParseError {
        throw LabError("\(path):\(error.source.begin.line): \(error.description)")
    } catch let error as LabError where error.description.hasPrefix(path) {
        throw error
    } catch {
        throw LabError("\(path): not a \(kind): \(describe(error))")
    }
}

func describe(_ error: Error) -> String {
    if let decoding = error as? DecodingError {
        switch decoding {
        case .keyNotFound(let key, let context):
            return "missing key '\(key.stringValue)'" + path(context.codingPath)
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return context.debugDescription + path(context.codingPath)
        @unknown default: return String(describing: error)
        }
    }
    return String(describing: error)
}

private func path(_ keys: [CodingKey]) -> String {
    keys.isEmpty ? "" : " at " + keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
}

