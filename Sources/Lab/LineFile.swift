import Foundation

/// Lines appended to a file as they come, so that the log of a long run survives an
/// interruption. Safe to write from several threads.
public final class LineFile: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw LabError("cannot create \(path)")
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
