import Foundation

/// What this kernel can do, tried for real in one of the lab's namespaces.
extension Lab {
    /// Whether netem can be attached here (tried on the namespace's loopback, then removed).
    func kernelHasNetem(namespace: String) -> Bool {
        guard (try? host.run(["tc", "-n", namespace, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])) != nil else {
            return false
        }
        _ = try? host.run(["tc", "-n", namespace, "qdisc", "del", "dev", "lo", "root"])
        return true
    }

    /// Whether RED can be attached here (tried on the namespace's loopback, then removed).
    func kernelHasRED(namespace: String) -> Bool {
        let probe = ["tc", "-n", namespace, "qdisc", "add", "dev", "lo", "root", "red", "limit", "40000", "min", "2000", "max", "10000",
                     "avpkt", "1000", "burst", "5", "probability", "0.02", "bandwidth", "10mbit"]
        guard (try? host.run(probe)) != nil else { return false }
        _ = try? host.run(["tc", "-n", namespace, "qdisc", "del", "dev", "lo", "root"])
        return true
    }
}
