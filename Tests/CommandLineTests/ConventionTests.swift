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

    @Test("--json prints the JSON document and nothing else on stdout; --json-file writes the same document; text goes to stderr")
    func jsonOnStdout() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func document(_ result: ProcessResult, _ what: String) throws -> [String: Any] {
            #expect(result.status == 0, "\(what): \(result.summary)")
            let parsed = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return try #require(parsed, "\(what): stdout is not one JSON object: \(result.summary)")
        }
        // trace cbr: the written trace's statistics; the "wrote" line moves to stderr.
        let cbr = try vnetstream("trace", "cbr", "--rate", "100kbit", "--duration", "2s", "-o", directory + "/cbr.csv", "--json")
        #expect(try document(cbr, "trace cbr")["frames"] as? Int == 50)
        #expect(cbr.stderr.contains("wrote \(directory)/cbr.csv"), "\(cbr.summary)")
        let plain = try vnetstream("trace", "stats", directory + "/cbr.csv")
        #expect(plain.stdout.contains("frames            50") && plain.stderr.isEmpty, "without --json the text is on stdout: \(plain.summary)")
        let stats = try vnetstream("trace", "stats", directory + "/cbr.csv", "--json", "--json-file", directory + "/stats.json")
        let printed = try document(stats, "trace stats")
        let written = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/stats.json"))) as? [String: Any])
        #expect(NSDictionary(dictionary: printed).isEqual(to: written), "--json and --json-file hold one document")
        // recv and send-marked over loopback, both with --json: their summaries, and the loss
        // table and progress lines on stderr.
        let port = 59_000 + Int.random(in: 0..<800)
        let receiver = try BackgroundProcess(
            [vnetstreamBinary, "recv", "--listen", "127.0.0.1:\(port)", "--json", "--progress", "500ms", "--idle-timeout", "2s",
             "--linger", "300ms", "--start-timeout", "20s"])
        defer { receiver.stop() }
        usleep(500_000)
        let sent = try vnetstream("send-marked", "--to", "127.0.0.1:\(port)", "--tt", "EF", "--count", "200", "--pps", "200", "--json")
        let summary = try document(sent, "send-marked")
        #expect((summary["streams"] as? [[String: Any]])?.first?["packets"] as? Int == 200, "\(sent.summary)")
        #expect(sent.stderr.contains("stream 1 EF") && sent.stderr.contains(": 200 packets"), "\(sent.summary)")
        let received = receiver.wait(timeout: 30)
        let result = try document(received, "recv")
        #expect(((result["streams"] as? [[String: Any]])?.first?["total"] as? [String: Any])?["sent"] as? Int == 200, "\(received.summary)")
        #expect(received.stderr.contains("| interval"), "the loss table goes to stderr: \(received.summary)")
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
        // File arguments complete as files: TOML files for topologies and experiments, CSV for
        // packet logs, folders for --out.
        let bash = try vnetstream("--generate-completion-script", "bash").stdout
        for pattern in ["-fX '!*.@(toml)'", "-fX '!*.@(csv)'", "-d"] {
            #expect(bash.contains(pattern), "bash completion has no \(pattern)")
        }
    }
}
