#ifndef VNETSTREAM_CNETSHIMS_H
#define VNETSTREAM_CNETSHIMS_H
// What Swift cannot spell: the TUNSETIFF ioctl that attaches a descriptor to a tun interface,
// SIOCGIFMTU, and the CMSG macros that carry a datagram's TOS byte. Nothing else lives here.
#include <stddef.h>
#include <stdint.h>

/// Opens /dev/net/tun and attaches it to the tun interface `name` (creating a transient one
/// if none exists). Returns the file descriptor, or -1 with *err_step set to 1 when opening
/// /dev/net/tun failed and 2 when the ioctl failed; errno tells why.
int vns_tun_attach(const char *name, int vnet_header, int *err_step);

/// One datagram of a batch: its length, source, TOS byte (-1: none), the segment size when
/// the kernel coalesced several datagrams of one flow (UDP GRO; 0: a single datagram), and the
/// kernel's receive time (-1: none).
struct vns_datagram {
    long length;
    uint32_t source_addr;
    uint16_t source_port;
    int tos;
    int segment;
    int64_t kernel_ns;
};

/// Turns on UDP GRO: the kernel may hand over several datagrams of one flow at once (their
/// segment size in `vns_datagram.segment`). Returns 0, or -1 with errno set.
int vns_enable_udp_gro(int fd);

/// recvmmsg(2), non-blocking: up to `count` (at most 64) datagrams into consecutive buffers of
/// `buffer_length` bytes, described in `out`. Returns how many, or -1 with errno set (EAGAIN:
/// none waiting).
int vns_recv_batch(int fd, uint8_t *buffers, size_t buffer_length, int count, struct vns_datagram *out);

/// Writes one IPv4 packet to a tun attached with a virtio-net header (IFF_VNET_HDR). With
/// gso_size > 0 the packet is IPv4/UDP and the kernel segments its payload into gso_size pieces
/// (VIRTIO_NET_HDR_GSO_UDP_L4; the UDP checksum field must hold the pseudo-header sum). Returns
/// the packet bytes written, or -1 with errno set.
long vns_tun_write_vnet(int fd, const void *packet, size_t length, uint16_t gso_size);

/// Reads one packet from a tun attached with a virtio-net header, dropping the header. Returns
/// its length, or -1 with errno set.
long vns_tun_read_vnet(int fd, void *buffer, size_t length);

/// The MTU of interface `name`, or -1 with errno set.
int vns_interface_mtu(const char *name);

/// recvfrom() that also returns the datagram's IPv4 TOS byte (IP_RECVTOS must be on; *tos is
/// -1 when the kernel gave none) and the kernel's receive timestamp (SO_TIMESTAMPNS must be
/// on: CLOCK_REALTIME nanoseconds; *kernel_ns is -1 when the kernel gave none). Returns the
/// byte count, or -1 with errno set. *source_addr and *source_port are in host order.
long vns_recv_with_tos(int fd, void *buffer, size_t length, uint32_t *source_addr, uint16_t *source_port, int *tos,
                       int64_t *kernel_ns);

/// Runs argv (argv[0] a full path) as a new session with stdin, stdout and stderr on /dev/null
/// and every other descriptor closed, and waits for it: for daemons that fork into the
/// background, which must not inherit any descriptor of ours. Returns its exit status, or -1
/// with errno set when it could not be started.
int vns_spawn_detached(char *const argv[]);

/// Starts argv (argv[0] a full path) with pipes on stdin, stdout and stderr (fds[0..2], ours
/// to use and close) and every other descriptor closed. Returns the pid, or -1 with errno set.
int vns_spawn_piped(char *const argv[], int fds[3]);

/// What `vns_collect` returns when the command ran past its timeout (it was killed).
#define VNS_TIMED_OUT (-3)

/// Writes `input` to the child's stdin and closes it, reads its stdout and stderr to the end
/// (into malloc'd buffers the caller frees), and waits for it. Returns its exit status
/// (128 + signal if killed), -1 with errno set, or VNS_TIMED_OUT when it was still running
/// after `timeout_ms` (negative: no limit) and was killed; what it printed until then is kept.
int vns_collect(int pid, int fds[3], const char *input, size_t input_length,
                char **out, size_t *out_length, char **err, size_t *err_length, int timeout_ms);

/// Turns on SO_TIMESTAMPNS (the macro's value differs by architecture and time_t width, which
/// Swift cannot import). Returns 0, or -1 with errno set.
int vns_enable_receive_timestamps(int fd);

/// Starts argv (argv[0] a full path) with stdin on /dev/null and stdout and stderr written to
/// the two files (created or truncated), every other descriptor closed. Returns the pid, or -1
/// with errno set.
int vns_spawn_to_files(char *const argv[], const char *out_path, const char *err_path);

/// Waits for a child (block: until it exits; otherwise returns -2 while it runs). Returns its
/// exit status (128 + signal if killed), or -1 with errno set.
int vns_wait(int pid, int block);

#endif
