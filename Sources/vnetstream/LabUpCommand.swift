import ArgumentParser
import Foundation
import Lab

extension LabCommand {
    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a topology: namespaces, veth links, tuns, policy routing, shaping, bird2 OSPF per router.",
            discussion: """
                Prints the run id; `vnetstream lab down --id ID` removes the lab. Interrupted while \
                building (Ctrl-C, SIGTERM) or failing a step, it removes what it made.
                """)

        @Argument(help: "The topology file (TOML), e.g. Experiments/topologies/paper-fig6.toml.", completion: .file(extensions: ["toml"]))
        var topology: String

        @Option(
            help: ArgumentHelp(
                "How to reach the hosts the topology places its nodes on: a hosts file (TOML, a [[host]] per host: name, ssh, address, underlay_device, underlay_mtu, identity, known_hosts, port, binary). Without it, hosts that name no ssh are emulated here.",
                valueName: "file"), completion: .file(extensions: ["toml"]))
        var hosts: String?

        @Option(help: "How links are shaped.")
        var shaper: ShaperChoice = .auto

        @Option(help: ArgumentHelp("The run id that names the lab's namespaces (vl<ID>-<node>); default random.", valueName: "id"))
        var id: String?

        @Option(help: ArgumentHelp("How long to wait for OSPF to converge in every VNet (0: do not wait) (default: 60s).", valueName: "time"), transform: timeSeconds)
        var wait: Double = 60

        @Flag(help: "Print the commands and bird configurations instead of running them.")
        var dryRun = false

        @OptionGroup(title: "Output (the lab that came up: run id, shaper, OSPF convergence)") var output: OutputOptions

        /// What `lab up --json` prints.
        struct Started: Encodable {
            var runID: String
            var shaper: String
            var ospfConvergedS: Double?
            enum CodingKeys: String, CodingKey {
                case shaper
                case runID = "run_id"
                case ospfConvergedS = "ospf_converged_s"
            }
        }

        func validate() throws {
            if dryRun && (output.json || output.jsonFile != nil) { throw ValidationError("--dry-run prints commands, not JSON: leave out --json and --json-file.") }
        }

        func run() throws {
            var model = try Topology.load(topology)
            var placed: HostsFile.Placement?
            if let hosts {
                let file = try HostsFile.load(hosts)
                let placement = try file.apply(to: model, file: hosts)
                model = placement.topology
                if !dryRun { try Self.checkVersions(file, placement) }
                placed = placement
            }
            if dryRun {
                let plan = try LabPlan(topology: model, runID: id ?? "ID", shaper: shaper.shaper ?? .tbf, red: shaper.shaper == .netem)
                for node in plan.nodes { print("ip netns add \(plan.namespace(node))") }
                for argv in plan.buildCommands + plan.classifierCommands { print(argv.joined(separator: " ")) }
                if let rules = plan.classifierRules { print("ip netns exec \(plan.namespace(model.sender)) nft -f - <<EOF\n\(rules)EOF") }
                for end in plan.accessEnds {
                    let ns = plan.namespace(plan.node(end))
                    if let rules = plan.accessRules(at: end) { print("ip netns exec \(ns) nft -f - <<EOF\n\(rules)EOF") }
                    if let shaping = plan.accessShaping(at: end, reservations: model.reservations) {
                        print("tc -n \(ns) -batch - <<EOF\n\(shaping.tcLines.joined(separator: "\n"))\nEOF")
                    }
                }
                for router in plan.routers {
                    print("ip netns exec \(plan.namespace(router)) nft -f - <<EOF\n\(plan.initialRules(router: router).joined(separator: "\n"))\nEOF")
                    let tc = plan.initialQdiscs(router: router)
                    if !tc.isEmpty { print("tc -n \(plan.namespace(router)) -batch - <<EOF\n\(tc.joined(separator: "\n"))\nEOF") }
                }
                for argv in plan.monitoring.buildCommands(ports: plan.routerInterfaces(of:), namespace: plan.namespace) { print(argv.joined(separator: " ")) }
                for moni in plan.monitoring.monis {
                    if let rules = plan.monitoring.nftRules(router: moni.router, ports: plan.routerInterfaces(of: moni.router)) {
                        print("ip netns exec \(plan.namespace(moni.router)) nft -f - <<EOF\n\(rules)EOF")
                    }
                }
                for node in plan.nodes {
                    if let rules = try plan.multicastRules(node: node) { print("ip netns exec \(plan.namespace(node)) nft -f - <<EOF\n\(rules)EOF") }
                }
                for vnet in model.vnets {
                    for router in vnet.routers { print("\n# \(router).conf\n" + plan.birdConfig(router: router)) }
                }
                return
            }
            if let warning = Lab.orphanWarning { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
            let output = output
            let runID = id ?? String(format: "%04x", UInt16.random(in: 0...UInt16.max))
            // The build stops at its next step and removes what it made; should it not get
            // there within 10 s, the handler removes the lab itself.
            let guards = onInterrupt {
                Lab.interrupt()
                Thread.sleep(forTimeInterval: 10)
                if let lab = try? Lab.open(runID: runID) { lab.down() }
            }
            let lab = try Lab.up(topology: model, file: topology, runID: runID, shaper: shaper.shaper, hosts: placed?.hosts ?? [:]) { output.say($0) }
            var converged: Double?
            if wait > 0 {
                do {
                    let seconds = try lab.waitForRouting(timeout: wait)
                    converged = seconds
                    output.say(String(format: "OSPF converged in every VNet after %.1f s", seconds))
                } catch {
                    lab.down()
                    throw error
                }
            }
            _ = guards
            try output.emit(Started(runID: lab.runID, shaper: lab.shaper.rawValue, ospfConvergedS: converged.map { ($0 * 1000).rounded() / 1000 }))
            output.say("lab \(lab.runID) is up (shaper \(lab.shaper.rawValue)); remove it with: vnetstream lab down --id \(lab.runID)")
            for line in try monitoringHint(lab) { output.say(line) }
        }

        /// Every host reached over ssh answers and runs this vnetstream's version, all asked at
        /// once, before anything is built: an unreachable host fails the command at once,
        /// naming it and ssh's stderr, and no host is left half-built.
        static func checkVersions(_ file: HostsFile, _ placement: HostsFile.Placement) throws {
            let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
            let expected = VNetStream.configuration.version
            let checks = file.host.compactMap { entry in (placement.hosts[entry.name] as? SSHHost).map { ($0, entry.binary ?? own) } }
            let failures = Failures()
            _ = Parallel.map(checks.indices) { index in
                do { try checks[index].0.checkVersion(binary: checks[index].1, expected: expected) } catch { failures.add(index, error) }
            }
            if let first = failures.first { throw first }
        }

        /// Errors collected from concurrent checks, the first host's first.
        final class Failures: @unchecked Sendable {
            private let lock = NSLock()
            private var errors: [(Int, Error)] = []
            func add(_ index: Int, _ error: Error) { lock.withLock { errors.append((index, error)) } }
            var first: Error? { lock.withLock { errors.min { $0.0 < $1.0 }?.1 } }
        }
    }
}
