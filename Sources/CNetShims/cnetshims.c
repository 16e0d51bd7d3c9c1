#include "cnetshims.h"
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int vns_tun_attach(const char *name, int *err_step) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) { *err_step = 1; return -1; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        *err_step = 2;
        return -1;
    }
    return fd;
}

int vns_interface_mtu(const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFMTU, &ifr);
    int saved = errno;
    close(s);
    errno = saved;
    return rc < 0 ? -1 : ifr.ifr_mtu;
}

long vns_recv_with_tos(int fd, void *buffer, size_t length, uint32_t *source_addr, uint16_t *source_port, int *tos) {
    struct sockaddr_in from;
    struct iovec iov = { .iov_base = buffer, .iov_len = length };
    char control[CMSG_SPACE(sizeof(int)) * 4];
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 0) return -1;
    *tos = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) *tos = *(unsigned char *)CMSG_DATA(c);
    }
    *source_addr = ntohl(from.sin_addr.s_addr);
    *source_port = ntohs(from.sin_port);
    return (long)n;
}
