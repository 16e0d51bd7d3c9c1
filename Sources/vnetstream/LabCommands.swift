import ArgumentParser
import Dispatch
import Foundation
import Lab
import RunRecords
import Units

extension Shaper: ExpressibleByArgument {}

/// `auto` detects netem; `netem` or `tbf` forces one.
enum ShaperChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, netem, tbf
    var shaper: Shaper? { self == .auto ? nil : Shaper(rawValue: rawValue) }
}

/// On SIGINT or SIGTERM, runs `cleanup` and exits (128 + signal). Returns the sources to keep.
func onInterrupt(_ cleanup: @escaping @Sendable () -> Void) -> [DispatchSourceSignal] {
    [SIGINT, SIGTERM].map { number in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
            cleanup()
            exit(128 + number)
        }
        source.resume()
        return source
    }
}

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Build VNet topologies from namespaces, route them with OSPF, shape their links, replay schedules.",
        subcommands: [Up.self, Down.self, Status.self, Play.self, Reserve.self, Promote.self, Retire.self, Copy.self, Isolation.self, Exec.self, VM.self])
}

extension LabCommand {
    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a lab: its processes, namespaces (links, qdiscs, rules) and state. Safe to run twice.")

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Flag(help: "Remove every lab that is up.")
        var all = false

        func run() throws {
            let ids = all ? Lab.runningIDs : [id].compactMap { $0 }
            if ids.isEmpty && !all {
                if Lab.runningIDs.isEmpty {
                    print("no lab is up")
                    return
                }
                let lab = try Lab.open(runID: nil)
                try report(lab, lab.down())
                return
            }
            var failed = false
            for id in ids {
                guard let lab = try? Lab.open(runID: id) else {
                    print("lab \(id): not up (nothing to remove)")
                    continue
                }
                do { try report(lab, lab.down()) } catch { failed = true }
            }
            if failed { throw ExitCode.failure }
        }

        /// Prints what was removed; what could not be, on stderr, ending the command with status 1.
        func report(_ lab: Lab, _ removed: [String]) throws {
            print("lab \(lab.runID) removed: " + (removed.isEmpty ? "nothing was left" : removed.joined(separator: ", ")))
            guard lab.leftBehind.isEmpty else {
                for line in lab.leftBehind { FileHandle.standardError.write(Data("lab \(lab.runID): \(line)\n".utf8)) }
                throw ExitCode.failure
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a lab's nodes, links, shaping and OSPF neighbours.")

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @OptionGroup(title: "Output (the status: nodes, links with conditions and counters, routes, OSPF)") var output: OutputOptions

        func run() throws {
            let status = try Lab.open(runID: id).status()
            try output.emit(status)
            if output.json { return }
            print("lab \(status.runID): \(status.topology), shaper \(status.shaper.rawValue) (\(status.shaperReason))")
            print("namespaces: \(status.namespaces.joined(separator: " "))")
            for link in status.links {
                var line = "  \(link.vnet) \(link.path ?? "access") " + link.ends.map { "\($0.end)=\($0.address)" }.joined(separator: " ")
                if let c = link.conditions {
                    line += " rate \(c.rate?.description ?? "unlimited") delay \(number(c.delayMs)) ms loss \(number(c.lossPct)) %" + (c.down ? " DOWN" : "")
                }
                print(line)
                for end in link.ends {
                    if let c = end.counters {
                        print("      \(end.end) media in \(c.mediaIn) out \(c.mediaOut), dropped by blackhole \(c.blackholeIn + c.blackholeOut), by loss \(c.lossDrops); device drops rx \(c.rxDropped) tx \(c.txDropped)")
                    }
                    for q in end.qdiscs {
                        print("      \(end.end) \(q.kind) \(q.handle): \(q.packets) packets, \(q.drops) dropped, \(q.overlimits) overlimits, backlog \(q.backlogBytes) B")
                    }
                }
            }
            for route in status.vnets {
                print("VNet \(route.vnet): \(route.ingress) routes the receiver via \(route.nextHop ?? "nothing")\(route.nextRouter.map { " (\($0))" } ?? "")")
            }
            for (vnet, production) in (status.production ?? [:]).sorted(by: { $0.key < $1.key }) {
                print("shadow: \(vnet)'s output comes from \(production)" + [("idle", status.idle), ("retired", status.retired)].compactMap { name, list in list.map { "; \(name): \($0.joined(separator: ", "))" } }.joined())
            }
            if let reservations = status.reservations {
                print("reservations: " + (reservations.isEmpty ? "none" : reservations.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
            }
            for (end, classes) in (status.access ?? [:]).sorted(by: { $0.key < $1.key }) {
                for (id, c) in classes.sorted(by: { $0.key < $1.key }) {
                    print("  access \(end) class \(id) rate \(c.rate) ceil \(c.ceil): \(c.packets) packets, \(c.bytes) bytes, \(c.drops) dropped")
                }
            }
            for (router, neighbours) in status.ospf.sorted(by: { $0.key < $1.key }) {
                let list = neighbours.map { "\($0.routerID) \($0.state) on \($0.interface)" }.joined(separator: ", ")
                print("OSPF \(router): \(list.isEmpty ? "no neighbours" : list)")
            }
        }
    }

    struct Play: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply a schedule's events to a lab at their times; log each with the time it took effect (JSON lines).")

        @Argument(help: "The schedule file (TOML), e.g. Experiments/schedules/paper-table2.toml.", completion: .file(extensions: ["toml"]))
        var schedule: String

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Option(help: ArgumentHelp("Multiply every event time by this (0.1 plays a 150 s schedule in 15 s).", valueName: "factor"))
        var timeScale: Double = 1

        @OptionGroup(title: "Output (one JSON line per event as it takes effect)") var output: OutputOptions

        @Flag(help: "Print each event's time and the exact tc and nft commands it would run, and run nothing.")
        var dryRun = false

        @Option(
            help: ArgumentHelp("With --dry-run and no lab up: the topology the schedule is for.", valueName: "file"),
            completion: .file(extensions: ["toml"]))
        var topology: String?

        @Option(help: "With --dry-run and --topology: the shaper to plan for.")
        var shaper: ShaperChoice = .tbf

        func validate() throws {
            guard timeScale > 0 else { throw ValidationError("--time-scale must be positive.") }
            if dryRun && (output.json || output.jsonFile != nil) { throw ValidationError("--dry-run prints commands, not JSON: leave out --json and --json-file.") }
        }

        func run() throws {
            let plan = try Schedule.load(schedule).scaled(by: timeScale)
            if dryRun { return try printDryRun(plan) }
            let lab = try Lab.open(runID: id)
            let lines = try JSONLines(output)
            let output = output
            try SchedulePlayer(lab: lab).play(plan, log: { applied, line in
                lines.write(line)
                output.say(
                    "at \(number(applied.atS)) s: \(applied.event), in effect at \(number(applied.appliedS)) s (\(number(applied.lateMs)) ms late"
                        + ((applied.stalledMs ?? 0) >= 1 ? ", \(number(applied.stalledMs!)) ms of it a stall of the machine)" : ")")
                        + (applied.limitations.isEmpty ? "" : "; cannot: " + applied.limitations.joined(separator: ", ")))
            })
            lines.close()
        }

        /// The events batch by batch, from the lab's conditions now (or the topology's initial
        /// ones), with the commands each batch would run.
        func printDryRun(_ schedule: Schedule) throws {
            var conditions: [String: LinkConditions] = [:]
            var blackholes: [String: String] = [:]
            var reservations: [String: BitRate] = [:]
            let plan: LabPlan
            if let topology {
                plan = try LabPlan(topology: try Topology.load(topology), runID: id ?? "ID", shaper: shaper.shaper ?? .tbf)
                reservations = plan.topology.reservations
            } else {
                let lab = try Lab.open(runID: id)
                plan = lab.plan
                conditions = lab.state.conditions
                blackholes = lab.state.blackholes
                reservations = lab.state.reservations
            }
            var index = 0
            while index < schedule.events.count {
                let at = schedule.events[index].atS
                let batch = Array(schedule.events[index...].prefix { $0.atS == at })
                let change = try plan.change(batch, conditions: conditions, blackholes: blackholes, reservations: reservations)
                print("at \(number(at)) s: " + batch.map(\.summary).joined(separator: "; "))
                for command in change.commands {
                    print("  " + command.argv.joined(separator: " ") + (command.input == nil ? "" : " <<EOF"))
                    if let input = command.input { print(input.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n") + "\n  EOF") }
                }
                conditions = change.conditions
                blackholes = change.blackholes
                reservations = change.reservations
                index += batch.count
            }
        }
    }

    struct Reserve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a VNet's reservation on a lab's access link, live.",
            discussion: """
                Both ends of the access link (the sender's egress and the access router's) change \
                the VNet's HTB class in place with `tc class change`: no qdisc is deleted and \
                nothing queued is lost. The reservations must stay within the access link's \
                assignable capacity, or nothing changes. Example: vnetstream lab reserve video 20mbit
                """)

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Argument(help: "The VNet.")
        var vnet: String

        @Argument(help: ArgumentHelp("Its new reservation, e.g. 20mbit.", valueName: "rate"), transform: { try BitRate(parsing: $0) })
        var rate: BitRate

        @OptionGroup(title: "Output (the change: before, after, how long it took, the commands)") var output: OutputOptions

        func validate() throws {
            guard rate.bitsPerSecond > 0 else { throw ValidationError("the rate must be positive.") }
        }

        func run() throws {
            let change = try Lab.open(runID: id).reserve(vnet: vnet, rate: rate)
            try output.emit(change)
            output.say("VNet \(change.vnet): reservation \(change.before?.description ?? "none") -> \(change.after), in place in \(number(change.tookMs)) ms")
        }
    }

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command inside one node of a lab (ip netns exec vl<ID>-<NODE> ...).")

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Argument(help: "The node.")
        var node: String

        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
        var command: [String] = []

        func run() throws {
            let lab = try Lab.open(runID: id)
            guard lab.plan.nodes.contains(node) else {
                throw RuntimeError("no node '\(node)' in \(lab.plan.topology.name): \(lab.plan.nodes.joined(separator: ", "))")
            }
            let argv = try lab.execArgv(node: node, command.first == "--" ? Array(command.dropFirst()) : command)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try Command.locate(argv[0]))
            process.arguments = Array(argv.dropFirst())
            try process.run()
            process.waitUntilExit()
            throw ExitCode(process.terminationStatus)
        }
    }
}

extension LabCommand {
    struct VM: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "vm",
            abstract: "Run a command inside a throwaway VM whose kernel has netem (and RED).",
            discussion: """
                Boots Debian's linux-image-amd64 under qemu-system-x86_64 (software emulation), with \
                this host's root read-only over 9p and tmpfs on /tmp and /run, runs the command as \
                root in the current folder, passes its output and exit status through, and leaves \
                nothing behind. Example: vnetstream lab vm -- vnetstream lab up FILE --shaper netem
                """)

        @Option(help: ArgumentHelp("Memory for the VM in MiB.", valueName: "MiB"))
        var memory = 2048

        @Option(help: ArgumentHelp("Stop the VM after this long (default: 900s).", valueName: "time"), transform: timeSeconds)
        var timeout: Double = 900

        // After `--` only, so that `lab vm --help` shows this help instead of booting a VM to run `--help`.
        @Argument(parsing: .postTerminator, help: "The command and its arguments (after --).")
        var command: [String] = []

        func run() throws {
            let argv = command
            guard !argv.isEmpty else { throw ValidationError("Give the command to run, after --.") }
            var vm = try NetemVM.findKernel()
            vm.memoryMegabytes = memory
            vm.timeout = timeout
            let outcome = try vm.run(argv) { print($0) }
            FileHandle.standardError.write(
                Data(String(format: "vnetstream lab vm: kernel %@, booted in %.1f s, finished in %.1f s, exit %d\n",
                            vm.kernelRelease, outcome.bootSeconds, outcome.totalSeconds, outcome.status).utf8))
            throw ExitCode(outcome.status)
        }
    }
}
