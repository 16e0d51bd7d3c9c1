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

/// A run record that could not be read or written: the file (and line) and what is wrong.
public struct RecordError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
