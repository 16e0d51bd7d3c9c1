import Foundation

/// Lines appended to a file as they come, so that the log of a long run survives an
/// interruption. Safe to write from several threads.
public final class LineFile: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw RecordError("\(path): cannot create (does its folder exist, and may this user write there?)")
        }
        handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    }

    public func write(_ line: String) {
        lock.lock()
        handle.write(Data((line + "\n").utf8))
        lock.unlock()
    }

    public func close() { try? handle.close() }
}

/// JSON documents on disk, one way for every record and results file: sorted keys, pretty,
/// written atomically; read back with the file (and what to do) named in any error.
public enum JSONFile {
    public static func write<T: Encodable>(_ value: T, to path: String) throws {
        try (try data(value) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The document as these files hold it (sorted keys, pretty), for printing.
    public static func text<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try data(value), as: UTF8.self)
    }

    private static func data<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }

    /// `what` names the document in errors (default: the type); `hint` says what makes it.
    public static func read<T: Decodable>(_ type: T.Type, from path: String, what: String? = nil, hint: String? = nil) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw RecordError("\(path): cannot read: \(error.localizedDescription)\(hint.map { " (\($0))" } ?? "")")
        }
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw RecordError("\(path): not a \(what ?? "\(T.self)"): \(error)\(hint.map { " (\($0))" } ?? "")")
        }
    }
}

/// A run record that could not be read or written: the file (and line) and what is wrong.
public struct RecordError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
