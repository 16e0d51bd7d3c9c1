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

    @Test("every option and argument of every subcommand has help text")
    func helpEverywhere() throws {
        let dump = try vnetstream("--experimental-dump-help")
        #expect(dump.status == 0, "\(dump.summary)")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var missing: [String] = []
        var commands = 0
        func walk(_ command: [String: Any], _ path: String) {
            commands += 1
            for argument in command["arguments"] as? [[String: Any]] ?? [] where (argument["abstract"] as? String ?? "").isEmpty {
                let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                missing.append("\(path): \(names.first ?? argument["valueName"] as? String ?? "?")")
            }
            for sub in command["subcommands"] as? [[String: Any]] ?? [] {
                let name = sub["commandName"] as? String ?? "?"
                if name != "help" { walk(sub, path + " " + name) }  // argument-parser's own
            }
        }
        walk(try #require(root["command"] as? [String: Any]), "vnetstream")
        #expect(commands >= 15, "\(commands) commands")
        #expect(missing.isEmpty, "without help: \(missing)")
        for sub in ["run", "report", "send", "send-marked", "recv", "capture", "lab", "trace"] {
            let help = try vnetstream(sub, "--help")
            #expect(help.status == 0 && help.stdout.contains("USAGE:"), "\(sub): \(help.summary)")
        }
    }

    @Test("shell completion scripts are generated for bash, zsh and fish")
    func completions() throws {
        for shell in ["bash", "zsh", "fish"] {
            let script = try vnetstream("--generate-completion-script", shell)
            #expect(script.status == 0 && script.stdout.contains("vnetstream") && script.stdout.contains("send-marked"), "\(shell): \(script.summary)")
        }
    }
}
