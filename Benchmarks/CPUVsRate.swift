import Foundation
import Lab

/// The access paper's Fig. 2 here: the sender's CPU against its sending rate. Ours paced
/// (`send --cbr RATE`: frames at 25 per second, MTU-sized packets, through a tun), with
/// `--segmentation` (a frame's packets in writes of up to 64) and with a write per packet, against `iperf3 -u -b RATE` with the same packet size on the same path, at 1 to
/// 1000 Mbit/s. CPU: the sender's alone (ours: getrusage; iperf3: its host_total), in % of one
/// core and per Mbit/s delivered. The plot goes to `out/bench/cpu-vs-rate.png` (and `.svg`).
func cpuVsRateSuite(seconds: Double, plots: String = "out/bench") throws {
    print("== cpu-vs-rate: the paced sender against iperf3 -u at the same rate, 1 VNet, \(Int(seconds)) s per run (Fig. 2 of the access paper)")
    guard let bench = try ThroughputLab.make() else { return }
    defer { bench.down() }
    // iperf3's UDP payload, as ours: a 1500 B IPv4 packet less 28 B of IPv4 and UDP headers.
    let payload = 1472
    var rows: [(rate: Double, ours: ThroughputFigures, perPacket: ThroughputFigures, theirs: ThroughputFigures)] = []
    print("   asked | ours, segmented: Mbit/s, loss, CPU % of a core, CPU %/(Mbit/s) | ours, a write per packet: the same | iperf3: the same | ours (segmented)/iperf3 CPU per Mbit/s")
    func cells(_ f: ThroughputFigures) -> String {
        String(format: "%7.1f, %5.2f %%, %5.1f %%, %.3f", f.megabitsPerSecond, f.lossPct, f.cpuPercent, f.cpuPercent / max(1e-9, f.megabitsPerSecond))
    }
    for rate in [1.0, 10, 50, 100, 300, 1000] {
        let ours = try bench.ours(payload: payload, vnets: 1, seconds: seconds, segmentation: true, rate: "\(Int(rate))mbit", senderOnly: true)
        let perPacket = try bench.ours(payload: payload, vnets: 1, seconds: seconds, segmentation: false, rate: "\(Int(rate))mbit", senderOnly: true)
        let theirs = try bench.iperf3(payload: payload, vnets: 1, seconds: seconds, bandwidth: "\(Int(rate))M", senderOnly: true)
        rows.append((rate, ours, perPacket, theirs))
        print(
            String(format: "   %5.0f | ", rate) + cells(ours) + " | " + cells(perPacket) + " | " + cells(theirs)
                + String(format: " | %.2f", (ours.cpuPercent / ours.megabitsPerSecond) / (theirs.cpuPercent / theirs.megabitsPerSecond)))
    }
    try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
    var data = "# asked_mbit_s ours_mbit_s ours_cpu_pct iperf3_mbit_s iperf3_cpu_pct per_packet_mbit_s per_packet_cpu_pct\n"
    for row in rows {
        data += String(
            format: "%.0f %.2f %.2f %.2f %.2f %.2f %.2f\n", row.rate, row.ours.megabitsPerSecond, row.ours.cpuPercent, row.theirs.megabitsPerSecond,
            row.theirs.cpuPercent, row.perPacket.megabitsPerSecond, row.perPacket.cpuPercent)
    }
    try Data(data.utf8).write(to: URL(fileURLWithPath: "\(plots)/cpu-vs-rate.dat"))
    let script = """
        set title "Sender CPU against sending rate (1 VNet, 1500 B packets; the access paper's Fig. 2)"
        set xlabel "delivered rate (Mbit/s, UDP payload)"; set ylabel "sender CPU (% of one core)"; set key left top; set grid
        set logscale x; set xrange [0.8:1500]; set yrange [0:*]
        set output 'cpu-vs-rate.png'; set terminal pngcairo size 900,420 font ',10'
        plot 'cpu-vs-rate.dat' using 2:3 with linespoints lw 2 pt 7 title 'vnetstream send --segmentation (paced, tun)', 'cpu-vs-rate.dat' using 6:7 with linespoints lw 1 pt 6 dt 2 title 'vnetstream send, a write per packet', 'cpu-vs-rate.dat' using 4:5 with linespoints lw 2 pt 5 title 'iperf3 -u -b RATE'
        set output 'cpu-vs-rate.svg'; set terminal svg size 900,420 font 'sans,10'
        replot
        """
    try Data((script + "\n").utf8).write(to: URL(fileURLWithPath: "\(plots)/cpu-vs-rate.gp"))
    let directory = FileManager.default.currentDirectoryPath
    FileManager.default.changeCurrentDirectoryPath(plots)
    defer { FileManager.default.changeCurrentDirectoryPath(directory) }
    if let gnuplot = try? Command.locate("gnuplot") { try Command.run([gnuplot, "cpu-vs-rate.gp"]) }
    print("   plot: \(plots)/cpu-vs-rate.png")
}
