import Foundation

/// The initial shaping of every transit link (tc and nftables per router), and the media
/// counters on every router interface (`MediaCounters`). Pure, so that `lab up --dry-run`
/// prints exactly what a lab runs.
extension LabPlan {
    /// A router's `nft -f` input at lab up: the `vnetlab` table with its counters and chains,
    /// and each of its transit links' initial loss.
    public func initialRules(router: String) -> [String] {
        var nft = InterfaceShaping.nftSetup(shaped: transitInterfaces(of: router), counted: routerInterfaces(of: router))
        for link in transitLinks {
            for end in [link.a, link.b] where end.node == router {
                nft += shaping(end, of: link, conditions: link.initial).nftLines(from: nil)
            }
        }
        return nft
    }

    /// A router's `tc -batch` input at lab up: its transit links' initial qdiscs.
    public func initialQdiscs(router: String) -> [String] {
        transitLinks.flatMap { link in
            [link.a, link.b].filter { $0.node == router }.flatMap { shaping($0, of: link, conditions: link.initial).tcLines }
        }
    }
}

extension Lab {
    func setUpShaping() throws {
        for link in plan.transitLinks { state.conditions[link.name] = link.initial }
        for router in plan.routers {
            try host.run(["ip", "netns", "exec", plan.namespace(router), "nft", "-f", "-"], input: plan.initialRules(router: router).joined(separator: "\n") + "\n")
            let tc = plan.initialQdiscs(router: router)
            if !tc.isEmpty { try host.run(["tc", "-n", plan.namespace(router), "-batch", "-"], input: tc.joined(separator: "\n") + "\n") }
        }
    }
}
