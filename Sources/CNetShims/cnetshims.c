#define _GNU_SOURCE
#include "cnetshims.h"
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <sys/uio.h>
#include <netinet/udp.h>
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <spawn.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>

int vns_tun_attach(const char *name, int vnet_header, int *err_step) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) { *err_step = 1; return -1; }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_header ? IFF_VNET_HDR : 0);
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

long vns_recv_with_tos(int fd, void *buffer, size_t length, uint32_t *source_addr, uint16_t *source_port, int *tos,
                       int64_t *kernel_ns) {
    struct sockaddr_in from;
    struct iovec iov = { .iov_base = buffer, .iov_len = length };
    char control[CMSG_SPACE(sizeof(int)) * 4 + CMSG_SPACE(sizeof(struct timespec))];
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
    *kernel_ns = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) *tos = *(unsigned char *)CMSG_DATA(c);
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec stamp;
            memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
            *kernel_ns = (int64_t)stamp.tv_sec * 1000000000 + stamp.tv_nsec;
        }
    }
    *source_addr = ntohl(from.sin_addr.s_addr);
    *source_port = ntohs(from.sin_port);
    return (long)n;
}

int vns_spawn_detached(char *const argv[]) {
    pid_t child = fork();
    if (child < 0) return -1;
    if (child == 0) {
        setsid();
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); }
        syscall(SYS_close_range, 3U, ~0U, 0U);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

extern char **environ;

/* Children start with the default action for every signal and none blocked: a parent that
   ignores SIGINT and SIGTERM while it cleans up (vnetstream run, lab up) must not pass that on,
   or its children (a receiver in a namespace) could never be asked to stop. */
static void vns_spawn_defaults(posix_spawnattr_t *attr) {
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_init(attr);
    posix_spawnattr_setsigdefault(attr, &all);
    posix_spawnattr_setsigmask(attr, &none);
    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
}

int vns_spawn_piped(char *const argv[], int fds[3]) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) < 0) return -1;
    if (pipe2(out, O_CLOEXEC) < 0) { close(in[0]); close(in[1]); return -1; }
    if (pipe2(err, O_CLOEXEC) < 0) { close(in[0]); close(in[1]); close(out[0]); close(out[1]); return -1; }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    pid_t pid;
    posix_spawnattr_t attr;
    vns_spawn_defaults(&attr);
    int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]); close(out[1]); close(err[1]);
    if (rc != 0) { close(in[1]); close(out[0]); close(err[0]); errno = rc; return -1; }
    fds[0] = in[1]; fds[1] = out[0]; fds[2] = err[0];
    return pid;
}

static int append(char **buffer, size_t *length, size_t *capacity, const char *data, size_t count) {
    if (*length + count + 1 > *capacity) {
        size_t next = (*capacity ? *capacity * 2 : 4096);
        while (next < *length + count + 1) next *= 2;
        char *grown = realloc(*buffer, next);
        if (!grown) return -1;
        *buffer = grown; *capacity = next;
    }
    memcpy(*buffer + *length, data, count);
    *length += count;
    (*buffer)[*length] = 0;
    return 0;
}

int vns_collect(int pid, int fds[3], const char *input, size_t input_length,
                char **out, size_t *out_length, char **err, size_t *err_length, int timeout_ms) {
    size_t written = 0, out_capacity = 0, err_capacity = 0;
    struct timespec begun;
    clock_gettime(CLOCK_MONOTONIC, &begun);
    *out = NULL; *err = NULL; *out_length = 0; *err_length = 0;
    int in_fd = fds[0];
    if (input_length == 0) { close(in_fd); in_fd = -1; }
    int open_count = 2;
    struct pollfd p[3];
    char chunk[8192];
    while (open_count > 0 || in_fd >= 0) {
        p[0].fd = fds[1]; p[0].events = POLLIN; p[0].revents = 0;
        p[1].fd = fds[2]; p[1].events = POLLIN; p[1].revents = 0;
        p[2].fd = in_fd; p[2].events = POLLOUT; p[2].revents = 0;
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long elapsed = (now.tv_sec - begun.tv_sec) * 1000L + (now.tv_nsec - begun.tv_nsec) / 1000000L;
            if (elapsed >= timeout_ms) {
                // Too long: the command is killed and reaped; what it printed so far is kept.
                kill(pid, SIGKILL);
                for (int i = 1; i < 3; i++) if (fds[i] >= 0) { close(fds[i]); fds[i] = -1; }
                if (in_fd >= 0) close(in_fd);
                int status = 0;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
                return VNS_TIMED_OUT;
            }
            wait_ms = (int)(timeout_ms - elapsed);
        }
        int ready = poll(p, 3, wait_ms);
        if (ready < 0) { if (errno == EINTR) continue; break; }
        if (ready == 0) continue;
        for (int i = 0; i < 2; i++) {
            if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                ssize_t n = read(p[i].fd, chunk, sizeof chunk);
                if (n > 0) {
                    if (i == 0) append(out, out_length, &out_capacity, chunk, (size_t)n);
                    else append(err, err_length, &err_capacity, chunk, (size_t)n);
                } else if (n == 0 || errno != EINTR) {
                    close(p[i].fd);
                    fds[i + 1] = -1;
                    open_count--;
                }
            }
        }
        if (in_fd >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_fd, input + written, input_length - written);
            if (n > 0) written += (size_t)n;
            if (n < 0 && errno != EINTR && errno != EAGAIN) written = input_length;
            if (written >= input_length) { close(in_fd); in_fd = -1; }
        }
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) { if (errno != EINTR) return -1; }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int vns_enable_receive_timestamps(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

int vns_spawn_to_files(char *const argv[], const char *out_path, const char *err_path) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    pid_t pid;
    posix_spawnattr_t attr;
    vns_spawn_defaults(&attr);
    int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) { errno = rc; return -1; }
    return pid;
}

int vns_wait(int pid, int block) {
    int status = 0;
    for (;;) {
        pid_t got = waitpid(pid, &status, block ? 0 : WNOHANG);
        if (got == 0) return -2;
        if (got < 0) { if (errno == EINTR) continue; return -1; }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}

#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

long vns_tun_write_vnet(int fd, const void *packet, size_t length, uint16_t gso_size) {
    struct virtio_net_hdr header;
    memset(&header, 0, sizeof header);
    if (gso_size > 0) {
        // One IPv4/UDP packet whose payload the kernel cuts into gso_size pieces, each with
        // its own IPv4 and UDP headers and checksums (UDP segmentation offload).
        header.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        header.gso_type = VIRTIO_NET_HDR_GSO_UDP_L4;
        header.hdr_len = 28;
        header.gso_size = gso_size;
        header.csum_start = 20;
        header.csum_offset = 6;
    }
    struct iovec parts[2] = {
        { .iov_base = &header, .iov_len = sizeof header },
        { .iov_base = (void *)packet, .iov_len = length },
    };
    long written = writev(fd, parts, 2);
    return written < 0 ? -1 : written - (long)sizeof header;
}

long vns_tun_read_vnet(int fd, void *buffer, size_t length) {
    struct virtio_net_hdr header;
    struct iovec parts[2] = {
        { .iov_base = &header, .iov_len = sizeof header },
        { .iov_base = buffer, .iov_len = length },
    };
    long count = readv(fd, parts, 2);
    if (count < 0) return -1;
    return count < (long)sizeof header ? 0 : count - (long)sizeof header;
}

int vns_enable_udp_gro(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on);
}

#define VNS_BATCH_MAX 64
#define VNS_CONTROL_BYTES (CMSG_SPACE(sizeof(int)) * 4 + CMSG_SPACE(sizeof(struct timespec)))

int vns_recv_batch(int fd, uint8_t *buffers, size_t buffer_length, int count, struct vns_datagram *out) {
    if (count > VNS_BATCH_MAX) count = VNS_BATCH_MAX;
    struct mmsghdr messages[VNS_BATCH_MAX];
    struct iovec iovs[VNS_BATCH_MAX];
    struct sockaddr_in from[VNS_BATCH_MAX];
    char control[VNS_BATCH_MAX][VNS_CONTROL_BYTES];
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (int i = 0; i < count; i++) {
        iovs[i].iov_base = buffers + (size_t)i * buffer_length;
        iovs[i].iov_len = buffer_length;
        messages[i].msg_hdr.msg_name = &from[i];
        messages[i].msg_hdr.msg_namelen = sizeof from[i];
        messages[i].msg_hdr.msg_iov = &iovs[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_control = control[i];
        messages[i].msg_hdr.msg_controllen = VNS_CONTROL_BYTES;
    }
    int n = recvmmsg(fd, messages, (unsigned)count, MSG_DONTWAIT, NULL);
    if (n < 0) return -1;
    for (int i = 0; i < n; i++) {
        struct msghdr *msg = &messages[i].msg_hdr;
        out[i].length = messages[i].msg_len;
        out[i].source_addr = ntohl(from[i].sin_addr.s_addr);
        out[i].source_port = ntohs(from[i].sin_port);
        out[i].tos = -1;
        out[i].segment = 0;
        out[i].kernel_ns = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) out[i].tos = *(unsigned char *)CMSG_DATA(c);
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                int segment;
                memcpy(&segment, CMSG_DATA(c), sizeof segment);
                out[i].segment = segment;
            }
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec stamp;
                memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
                out[i].kernel_ns = (int64_t)stamp.tv_sec * 1000000000 + stamp.tv_nsec;
            }
        }
    }
    return n;
}
