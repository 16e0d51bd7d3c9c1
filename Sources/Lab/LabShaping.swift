import Foundation

/// The initial shaping of every transit link (tc and nftables per node).
extension Lab {
    func setUpShaping() throws {
        var commands: [(argv: [String], input: String?)] = []
        for node in plan.nodes {
            let interfaces = plan.transitInterfaces(of: node)
            guard !interfaces.isEmpty else { continue }
            var nft = InterfaceShaping.nftSetup(interfaces: interfaces)
            var tc: [String] = []
            for link in plan.transitLinks {
                state.conditions[link.name] = link.initial
                for end in [link.a, link.b] where end.node == node {
                    let shaping = plan.shaping(end, of: link, conditions: link.initial)
                    nft += shaping.nftLines(from: nil)
                    tc += shaping.tcLines
                }
            }
            commands.append((["ip", "netns", "exec", plan.namespace(node), "nft", "-f", "-"], nft.joined(separator: "\n") + "\n"))
            commands.append((["tc", "-n", plan.namespace(node), "-batch", "-"], tc.joined(separator: "\n") + "\n"))
        }
        for command in commands { try host.run(command.argv, input: command.input) }
    }
}
