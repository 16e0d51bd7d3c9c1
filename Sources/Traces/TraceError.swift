/// A trace that cannot be read. `description` is `FILE:LINE: what is wrong` (or `FILE: …`
/// when no line is to blame), the form editors and compilers use, so a user can jump to it.
public struct TraceError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String
    /// 1-based line number, or nil when the problem is the file as a whole.
    public var line: Int?
    public var message: String

    public init(file: String, line: Int?, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}
