#if canImport(Glibc)
import Glibc
#endif

/// A system call that failed: which, on what, the errno, and what the user can do about it.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var subject: String
    public var errno: Int32
    public var hint: String?

    public init(_ call: String, _ subject: String, errno: Int32, hint: String? = nil) {
        self.call = call
        self.subject = subject
        self.errno = errno
        self.hint = hint
    }

    public var reason: String { String(cString: strerror(errno)) }

    public var description: String {
        var text = "\(call) \(subject): \(reason) (errno \(errno))"
        if let hint { text += "; \(hint)" }
        return text
    }
}
