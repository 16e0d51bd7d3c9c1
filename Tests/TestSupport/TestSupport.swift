import Foundation

/// What a finished process said.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var argv: [String]

    public var summary: String { "\(argv.joined(separator: " ")) exited \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs a real program to completion (tests only: ffmpeg, ffprobe, the built vnetstream).
/// Both pipes are drained while it runs, so a chatty program cannot block on a full pipe.
@discardableResult
public func runProcess(_ argv: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: argv[0].contains("/") ? argv[0] : try which(argv[0]))
    process.arguments = Array(argv.dropFirst())
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
        outData = out.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    errData = err.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self), argv: argv)
}

/// The full path of a program on PATH, or an error naming the Debian package to install.
public func which(_ name: String) throws -> String {
    for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw TestSetupError("\(name) is not on PATH; run scripts/install-deps (Debian package: \(debianPackage[name] ?? name))")
}

private let debianPackage = ["ffmpeg": "ffmpeg", "ffprobe": "ffmpeg", "tcpdump": "tcpdump", "nft": "nftables", "ip": "iproute2"]

public struct TestSetupError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A fresh directory under the system's temporary directory; the caller removes it.
public func makeTemporaryDirectory(_ label: String = "vnetstream-test") throws -> String {
    let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The repository's root, found from this file's place in it.
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// `../shared/traces/NAME` beside the repository (or under $VNETSTREAM_SHARED/traces).
public func sharedTrace(_ name: String) -> String {
    let shared = ProcessInfo.processInfo.environment["VNETSTREAM_SHARED"] ?? repositoryRoot + "/../shared"
    return shared + "/traces/" + name
}

/// The `vnetstream` binary built beside the test bundle.
public var vnetstreamBinary: String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("vnetstream").path
}

/// Runs the built `vnetstream` with these arguments.
@discardableResult
public func vnetstream(_ arguments: String...) throws -> ProcessResult {
    try runProcess([vnetstreamBinary] + arguments)
}

/// Writes text to a file in `directory` and returns its path.
public func writeFile(_ directory: String, _ name: String, _ text: String) throws -> String {
    let path = directory + "/" + name
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

/// Prints a figure a timing assertion checks, with its bound, as one `TIMING` line, so that the
/// spread over many runs of the suite can be read from their logs (README, "How steady").
public func recordTiming(_ name: String, _ value: Double, _ unit: String, bound: String) {
    print("TIMING \(name): \(String(format: "%.3f", value)) \(unit) (bound \(bound))")
}

/// The experiment file `name` of Experiments/, its topology and schedule paths made absolute
/// (so that a shortened copy can be written anywhere), with each pair of `replacing` applied.
public func experimentFile(_ name: String, replacing: [(String, String)] = []) throws -> String {
    var text = try String(contentsOfFile: repositoryRoot + "/Experiments/" + name, encoding: .utf8)
        .replacingOccurrences(of: "topologies/", with: repositoryRoot + "/Experiments/topologies/")
        .replacingOccurrences(of: "schedules/", with: repositoryRoot + "/Experiments/schedules/")
    for (old, new) in replacing { text = text.replacingOccurrences(of: old, with: new) }
    return text
}
