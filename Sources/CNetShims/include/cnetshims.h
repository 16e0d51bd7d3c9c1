#ifndef VNETSTREAM_CNETSHIMS_H
#define VNETSTREAM_CNETSHIMS_H
// What Swift cannot spell: the TUNSETIFF ioctl that attaches a descriptor to a tun interface,
// SIOCGIFMTU, and the CMSG macros that carry a datagram's TOS byte. Nothing else lives here.
#include <stddef.h>
#include <stdint.h>

/// Opens /dev/net/tun and attaches it to the tun interface `name` (creating a transient one
/// if none exists). Returns the file descriptor, or -1 with *err_step set to 1 when opening
/// /dev/net/tun failed and 2 when the ioctl failed; errno tells why.
int vns_tun_attach(const char *name, int *err_step);

/// The MTU of interface `name`, or -1 with errno set.
int vns_interface_mtu(const char *name);

/// recvfrom() that also returns the datagram's IPv4 TOS byte (IP_RECVTOS must be on; *tos is
/// -1 when the kernel gave none). Returns the byte count, or -1 with errno set.
/// *source_addr and *source_port are in host order.
long vns_recv_with_tos(int fd, void *buffer, size_t length, uint32_t *source_addr, uint16_t *source_port, int *tos);

#endif
