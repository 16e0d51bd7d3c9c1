#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes traces as VNetStream's CSV (`time_ms,bytes[,type]`), which every reader here takes
/// back: `#` lines first (where the trace came from), a header row, then one row per frame in
/// coding order, with its display time in milliseconds (to the microsecond).
public enum TraceWriter {
    public static func csv(_ trace: FrameTrace, header: [String]) -> String {
        let typed = trace.frames.contains { $0.type != .unknown }
        var out = ""
        out.reserveCapacity(trace.frames.count * 16 + 256)
        for line in header { out += "# \(line)\n" }
        out += typed ? "time_ms,bytes,type\n" : "time_ms,bytes\n"
        for frame in trace.frames {
            out += milliseconds(frame.time)
            out += ","
            out += String(frame.bytes)
            if typed {
                out += ","
                out += frame.type.rawValue
            }
            out += "\n"
        }
        return out
    }

    /// Writes the CSV to `path` through a temporary file and a rename, so a reader never sees
    /// half a trace.
    public static func write(_ trace: FrameTrace, header: [String], to path: String) throws {
        try writeWholeFile(path, Array(csv(trace, header: header).utf8))
    }

    /// `40`, `33.367`, `0.5`: milliseconds rounded to the microsecond, no trailing zeros.
    static func milliseconds(_ seconds: Double) -> String {
        let micro = Int((seconds * 1_000_000).rounded())
        let whole = micro / 1000
        var fraction = micro % 1000
        guard fraction != 0 else { return String(whole) }
        var digits = 3
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let text = String(fraction)
        return "\(whole)." + String(repeating: "0", count: digits - text.count) + text
    }
}

/// Writes `bytes` to `path` atomically (temporary file, then rename); errors name the file and
/// the system's reason.
func writeWholeFile(_ path: String, _ bytes: [UInt8]) throws {
    let temporary = path + ".partial"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else {
        throw TraceError(file: path, line: nil, "cannot create: \(String(cString: strerror(errno)))")
    }
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            let reason = String(cString: strerror(errno))
            close(fd)
            unlink(temporary)
            throw TraceError(file: path, line: nil, "cannot write: \(reason)")
        }
        offset += written
    }
    close(fd)
    guard rename(temporary, path) == 0 else {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw TraceError(file: path, line: nil, "cannot write: \(reason)")
    }
}
