import Foundation
import TestSupport
import Testing

/// The conventions every subcommand keeps: exit codes (0 ok, 1 runtime failure, 64 usage).
@Suite("vnetstream conventions")
struct ConventionTests {
    func vnetstream(_ arguments: String...) throws -> ProcessResult { try runProcess([vnetstreamBinary] + arguments) }

    @Test("a failure while running exits 1 with one line and no usage text; bad usage exits 64 with it")
    func exitCodes() throws {
        // Nothing is sent to this loopback port: the receiver gives up after its start timeout.
        let idle = try vnetstream("recv", "--listen", "127.0.0.1:59871", "--start-timeout", "300ms")
        #expect(idle.status == 1, "\(idle.summary)")
        #expect(idle.stderr.contains("no stream arrived"), "\(idle.summary)")
        #expect(!idle.stderr.contains("Usage:"), "a runtime failure prints no usage text: \(idle.summary)")
        #expect(idle.stderr.split(separator: "\n").count == 1, "\(idle.summary)")
        let usage = try vnetstream("recv", "--report-ms", "0")
        #expect(usage.status == 64, "\(usage.summary)")
        #expect(usage.stderr.contains("Usage:") || usage.stderr.contains("--help"), "\(usage.summary)")
        let missing = try vnetstream("report", "/nonexistent-vnetstream-folder")
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent-vnetstream-folder/results.json"), "\(missing.summary)")
        // Times take units like rates do; a bad one is bad usage, named.
        let badTime = try vnetstream("recv", "--interval", "5x")
        #expect(badTime.status == 64 && badTime.stderr.contains("'5x' is not a time"), "\(badTime.summary)")
        let help = try vnetstream("--help")
        #expect(help.stdout.contains("Exit status: 0 ok; 1 a failure while running"))
    }
}
