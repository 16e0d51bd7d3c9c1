import ArgumentParser
import Foundation
import Lab

extension LabCommand {
    struct Isolation: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove a lab's VNets isolated: flood from inside one VNet and count where the flood arrives.",
            discussion: """
                Every router of the VNet sends UDP datagrams (to port \(IsolationFlood.port)) and \
                echo requests (IP length \(IsolationFlood.echoPayload + 28)) to each other VNet's \
                addresses, to the underlay's and to addresses of 198.18.0.0/15 outside the lab, and, \
                as a control, to its own addresses. \
                nftables counters on every interface of every node, and for emulated hosts in each \
                host's namespace and across the underlay's bridge, count them; anything counted \
                outside the VNet's own interfaces is a leak, and the control must be counted on them. The counters are removed afterwards. \
                Bounded: about a second per destination at most. Exit status 3 when a packet leaked or the control was not counted. \
                Example: vnetstream lab isolation --vnet vnet1
                """)

        @Option(help: ArgumentHelp("The lab's run id (default: the only lab that is up).", valueName: "id"))
        var id: String?

        @Option(help: ArgumentHelp("The VNet to flood from, by name (default: each in turn).", valueName: "name"))
        var vnet: String?

        @Option(help: ArgumentHelp("UDP datagrams each router sends to each destination (1-1000), beside 3 echo requests.", valueName: "count"))
        var datagrams = 20

        @OptionGroup(title: "Output (per VNet: destinations, attempted, counted on its own links, leaks)") var output: OutputOptions

        func validate() throws {
            guard (1...1000).contains(datagrams) else { throw ValidationError("--datagrams takes 1 to 1000, not \(datagrams)") }
        }

        func run() throws {
            let lab = try Lab.open(runID: id)
            let names = lab.plan.topology.vnets.map(\.name)
            let chosen: [Int]
            if let vnet {
                guard let index = names.firstIndex(of: vnet) else {
                    throw RuntimeError("no VNet '\(vnet)' in lab \(lab.runID): it has \(names.joined(separator: ", "))")
                }
                chosen = [index]
            } else {
                chosen = Array(names.indices)
            }
            let floods = try chosen.map { try lab.floodIsolation(from: $0, datagrams: datagrams) }
            try output.emit(floods)
            for flood in floods {
                let places = flood.destinations.sorted { $0.key < $1.key }.map { "\($0.value.count) \($0.key)" }.joined(separator: ", ")
                output.say(
                    "\(flood.vnet): \(flood.attempted) packets from \(flood.sources.joined(separator: ", ")) to \(places); "
                        + "\(flood.ownHops) counted on its own links, \(flood.leaked) leaked"
                        + (flood.underlayWatched ? "" : " (the underlay is this machine's own, not watched)"))
                for leak in flood.leaks { output.say("  leaked: \(leak.packets) at \(leak.place)") }
                if flood.ownHops == 0 { output.say("  the control was not counted on \(flood.vnet)'s own links: the counters saw nothing, so 0 leaked proves nothing") }
            }
            if floods.contains(where: { $0.leaked > 0 || $0.ownHops == 0 }) { throw ExitCode(3) }
        }
    }
}
