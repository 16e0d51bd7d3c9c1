import CNetShims
import Foundation

/// Runs a command inside a throwaway VM whose kernel has netem (and RED): Debian's
/// `linux-image-amd64` under `qemu-system-x86_64` in software emulation, with the host's root
/// mounted read-only over 9p and tmpfs on /tmp and /run, so host binaries, the Swift toolchain,
/// `ip netns` and this tool all work inside. The command's output and exit status come back;
/// nothing is left behind (the VM's namespaces and files die with it).
public struct NetemVM {
    /// The kernel release to boot (a /boot/vmlinuz-RELEASE whose modules include sch_netem).
    public var kernelRelease: String
    public var memoryMegabytes = 2048
    public var cpus = 2
    /// The whole run is stopped after this long, seconds.
    public var timeout: Double = 900

    /// Modules that bring up the 9p root, in load order (the rest load on demand through the
    /// host's modprobe).
    static let rootModules = [
        "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
        "kernel/drivers/virtio/virtio_pci_modern_dev.ko", "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
        "kernel/drivers/virtio/virtio_pci.ko", "kernel/fs/netfs/netfs.ko", "kernel/fs/fscache/fscache.ko",
        "kernel/net/9p/9pnet.ko", "kernel/net/9p/9pnet_virtio.ko", "kernel/fs/9p/9p.ko",
    ]

    public init(kernelRelease: String) { self.kernelRelease = kernelRelease }

    /// The newest installed kernel that has netem, or an error saying what to install.
    public static func findKernel() throws -> NetemVM {
        let releases = ((try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? [])
            .filter { $0.hasPrefix("vmlinuz-") }.map { String($0.dropFirst("vmlinuz-".count)) }
            .filter { FileManager.default.fileExists(atPath: "/lib/modules/\($0)/kernel/net/sched/sch_netem.ko") }
            .sorted()
        guard let release = releases.last else {
            throw LabError("no kernel with netem to boot: apt-get install linux-image-amd64 (scripts/install-deps does)")
        }
        return NetemVM(kernelRelease: release)
    }

    /// What the command said and how it ended.
    public struct Outcome: Sendable {
        public var status: Int32
        public var output: String
        public var bootSeconds: Double
        public var totalSeconds: Double
    }

    static let begin = "VNETSTREAM-VM-BEGIN"
    static let exitMarker = "VNETSTREAM-VM-EXIT="

    /// Boots, runs `argv` in `directory` (inside the VM, as root), powers off. `echo` gets the
    /// command's output line by line as it comes.
    public func run(_ argv: [String], directory: String = FileManager.default.currentDirectoryPath, echo: (String) -> Void = { _ in }) throws -> Outcome {
        let qemu = try Command.locate("qemu-system-x86_64")
        let busybox = "/bin/busybox"
        guard FileManager.default.isExecutableFile(atPath: busybox) else {
            throw LabError("no static busybox for the VM's init: apt-get install busybox-static")
        }
        let work = NSTemporaryDirectory() + "vnetstream-vm-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let initrd = work + "/initrd.cpio"
        try initramfs(command: argv, directory: directory, busybox: busybox).write(to: URL(fileURLWithPath: initrd))

        let qemuArguments = [
            qemu, "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", String(cpus),
            "-m", String(memoryMegabytes), "-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio",
            "-kernel", "/boot/vmlinuz-\(kernelRelease)", "-initrd", initrd,
            "-append", "console=ttyS0 quiet loglevel=1 panic=-1 rdinit=/init",
            "-virtfs", "local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap",
        ]
        var pointers = qemuArguments.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        var fds: [Int32] = [-1, -1, -1]
        let start = Date()
        let pid = vns_spawn_piped(&pointers, &fds)
        guard pid > 0 else { throw LabError("could not start \(qemu): \(String(cString: strerror(errno)))") }
        close(fds[0])
        close(fds[2])
        // Read the console: kernel chatter until BEGIN, then the command's output, then EXIT=n.
        var pending = Data()
        var output: [String] = []
        var console: [String] = []
        var status: Int32?
        var booted: Date?
        var buffer = [UInt8](repeating: 0, count: 65536)
        var timedOut = false
        reading: while true {
            var poll = pollfd(fd: fds[1], events: Int16(POLLIN), revents: 0)
            let remaining = timeout - Date().timeIntervalSince(start)
            if remaining <= 0 {
                timedOut = true
                break
            }
            guard Glibc.poll(&poll, 1, Int32(min(remaining, 1) * 1000)) >= 0 || errno == EINTR else { break }
            guard poll.revents != 0 else { continue }
            let count = read(fds[1], &buffer, buffer.count)
            if count <= 0 { break }
            pending.append(contentsOf: buffer[0..<count])
            while let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
                pending.removeSubrange(pending.startIndex...newline)
                if booted == nil { console.append(line) }
                if line.hasSuffix(Self.begin) {
                    booted = Date()
                } else if let range = line.range(of: Self.exitMarker) {
                    status = Int32(line[range.upperBound...].trimmingCharacters(in: .whitespaces))
                    break reading
                } else if booted != nil {
                    output.append(line)
                    echo(line)
                }
            }
        }
        if status == nil || timedOut { kill(pid, SIGKILL) }
        close(fds[1])
        var waitStatus: Int32 = 0
        while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
        if timedOut { throw LabError("the VM did not finish within \(Int(timeout)) s (killed)") }
        guard let status, booted != nil else {
            throw LabError("the VM stopped before the command ran; its console said:\n" + (console + output).suffix(30).joined(separator: "\n"))
        }
        return Outcome(
            status: status, output: output.joined(separator: "\n"),
            bootSeconds: booted.map { $0.timeIntervalSince(start) } ?? 0, totalSeconds: Date().timeIntervalSince(start))
    }

    /// First-level folders under /tmp (e.g. /tmp/ci) that the command's working folder or its
    /// absolute arguments live in, with symlinks resolved.
    static func keptTemporaryFolders(directory: String, arguments: [String]) -> [String] {
        var folders: [String] = []
        for path in [directory] + arguments where path.hasPrefix("/") {
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            let parts = resolved.split(separator: "/")
            guard parts.count >= 2, parts[0] == "tmp" else { continue }
            let folder = "/tmp/\(parts[1])"
            if !folders.contains(folder), FileManager.default.fileExists(atPath: folder) { folders.append(folder) }
        }
        return folders
    }

    /// Single-quotes a word for sh.
    static func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// The initramfs: busybox, the 9p modules, and an init that mounts the host's root, runs
    /// the command chrooted into it, and reports the exit status on the console.
    func initramfs(command: [String], directory: String, busybox: String) throws -> Data {
        let modules = "/lib/modules/\(kernelRelease)"
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        let script = """
            #!/bin/sh
            export PATH=\(Self.quoted(path + ":/opt/swift/usr/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
            export HOME=/tmp
            cd \(Self.quoted(directory)) || exit 125
            \(command.map(Self.quoted).joined(separator: " "))
            """
        let modprobe = "#!/bin/busybox sh\nexec /bin/busybox chroot /host /sbin/modprobe \"$@\"\n"
        // A fresh tmpfs goes on /tmp, which would hide the host's /tmp: folders there that the
        // command needs (its working folder, absolute paths among its arguments) are bound
        // aside first and back on top after.
        let kept = Self.keptTemporaryFolders(directory: directory, arguments: command)
        let keepAside = kept.enumerated().map { "$B mkdir -p /keep/\($0.offset) && $B mount --bind /host\(Self.quoted($0.element)) /keep/\($0.offset)" }
            .joined(separator: "\n")
        let keepBack = kept.enumerated().map { "$B mkdir -p /host\(Self.quoted($0.element)) && $B mount --bind /keep/\($0.offset) /host\(Self.quoted($0.element))" }
            .joined(separator: "\n")
        let load = Self.rootModules.map { "/bin/busybox insmod /modules/\(($0 as NSString).lastPathComponent)" }.joined(separator: "\n")
        let initScript = """
            #!/bin/busybox sh
            B=/bin/busybox
            $B mount -t proc proc /proc
            $B mount -t sysfs sys /sys
            $B mount -t devtmpfs dev /dev
            \(load)
            $B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 hostroot /host || { echo "\(Self.exitMarker)126"; $B reboot -f; }
            for d in proc sys dev; do $B mount --rbind /$d /host/$d; done
            \(keepAside)
            $B mount -t tmpfs tmpfs /host/tmp
            \(keepBack)
            $B mount -t tmpfs tmpfs /host/run
            $B mount -t tmpfs tmpfs /host/var/run 2>/dev/null
            $B mkdir -p /host/run/netns /host/tmp/vm
            $B cp /command.sh /host/tmp/vm/command.sh
            echo /sbin/vns-modprobe > /proc/sys/kernel/modprobe
            # /dev/net/tun appears only once tun is loaded; nothing asks for it by name.
            /sbin/vns-modprobe tun
            $B ip link set lo up
            echo "\(Self.begin)"
            $B chroot /host /bin/sh /tmp/vm/command.sh 2>&1
            echo "\(Self.exitMarker)$?"
            $B sync
            $B reboot -f

            """
        var archive = CPIOArchive()
        for directory in ["bin", "sbin", "modules", "proc", "sys", "dev", "host", "tmp"] { archive.directory(directory) }
        archive.characterDevice("dev/console", major: 5, minor: 1)
        archive.file("bin/busybox", try Data(contentsOf: URL(fileURLWithPath: busybox)), mode: 0o755)
        archive.symlink("bin/sh", target: "busybox")
        archive.file("init", Data(initScript.utf8), mode: 0o755)
        archive.file("command.sh", Data(script.utf8), mode: 0o755)
        archive.file("sbin/vns-modprobe", Data(modprobe.utf8), mode: 0o755)
        for module in Self.rootModules {
            let source = "\(modules)/\(module)"
            guard let data = FileManager.default.contents(atPath: source) else {
                throw LabError("\(source) is missing: reinstall linux-image-amd64")
            }
            archive.file("modules/\((module as NSString).lastPathComponent)", data, mode: 0o644)
        }
        return archive.finished()
    }
}

/// A cpio archive in the "newc" format the kernel unpacks as an initramfs.
struct CPIOArchive {
    private var data = Data()
    private var inode: UInt32 = 1

    private mutating func entry(_ name: String, mode: UInt32, content: Data = Data(), major: UInt32 = 0, minor: UInt32 = 0) {
        let fields: [UInt32] = [
            inode, mode, 0, 0, mode & 0o170000 == 0o040000 ? 2 : 1, 0, UInt32(content.count), 0, 0, major, minor,
            UInt32(name.utf8.count + 1), 0,
        ]
        inode += 1
        var header = "070701"
        for field in fields { header += String(format: "%08X", field) }
        data.append(contentsOf: header.utf8)
        data.append(contentsOf: name.utf8)
        data.append(0)
        pad()
        data.append(content)
        pad()
    }

    private mutating func pad() {
        while data.count % 4 != 0 { data.append(0) }
    }

    mutating func directory(_ name: String) { entry(name, mode: 0o040755) }
    mutating func file(_ name: String, _ content: Data, mode: UInt32) { entry(name, mode: 0o100000 | mode, content: content) }
    mutating func symlink(_ name: String, target: String) { entry(name, mode: 0o120777, content: Data(target.utf8)) }
    mutating func characterDevice(_ name: String, major: UInt32, minor: UInt32) {
        entry(name, mode: 0o020600, major: major, minor: minor)
    }

    mutating func finished() -> Data {
        entry("TRAILER!!!", mode: 0)
        return data
    }
}
