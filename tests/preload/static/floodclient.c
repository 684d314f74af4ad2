/* A static C client (gcc -static) that pushes the supervisor to the
 * kernel's limits, and one that probes it once it is gone.
 *
 *   floodclient flood IP PORT ROUNDS
 *       UDP to IP:PORT, each round: the largest datagram sendto() takes
 *       (65507 bytes), the same through sendmsg() in 1024 pieces (IOV_MAX),
 *       and the largest sendmmsg() batch (1024 messages, UIO_MAXIOV, of
 *       65507 bytes each); then what the kernel refuses: a 1 MiB sendto, an
 *       iovec of 1025 pieces, 64 KiB + 1 of ancillary data. Prints
 *       "flood: sent N datagrams, B bytes" and each refusal's errno name.
 *   floodclient probe IP PORT
 *       prints "pid N map M" (its LEAKPROOF_MAP), then for each line on
 *       stdin connects (TCP) and sends a datagram (UDP) to IP:PORT and prints
 *       "tcp: OK|ERRNO-NAME udp: OK|ERRNO-NAME".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_UDP 65507
#define BATCH 1024

static char payload[MAX_UDP];
static struct iovec pieces[BATCH + 1];
static struct mmsghdr batch[BATCH];

static const char* errname(int e) {
    switch (e) {
        case 0: return "OK";
        case EMSGSIZE: return "EMSGSIZE";
        case ENOBUFS: return "ENOBUFS";
        case ENOMEM: return "ENOMEM";
        case EINVAL: return "EINVAL";
        case ENOSYS: return "ENOSYS";
        case EPERM: return "EPERM";
        case ECONNREFUSED: return "ECONNREFUSED";
        case EAGAIN: return "EAGAIN";
        case EFAULT: return "EFAULT";
    }
    return strerror(e);
}

static int address(const char* ip, const char* port, struct sockaddr_in* a) {
    *a = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

static int flood(const struct sockaddr_in* to, int rounds) {
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 8 << 20;
    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    long sent = 0, bytes = 0;
    size_t piece = MAX_UDP / BATCH;
    for (int i = 0; i < BATCH; ++i) pieces[i] = (struct iovec){payload + i * piece, piece};
    pieces[BATCH - 1].iov_len = MAX_UDP - (BATCH - 1) * piece;
    struct iovec whole = {payload, MAX_UDP};
    for (int i = 0; i < BATCH; ++i)
        batch[i].msg_hdr = (struct msghdr){
            .msg_name = (void*)to, .msg_namelen = sizeof *to, .msg_iov = &whole, .msg_iovlen = 1};
    for (int r = 0; r < rounds; ++r) {
        if (sendto(s, payload, MAX_UDP, 0, (const struct sockaddr*)to, sizeof *to) == MAX_UDP)
            sent++, bytes += MAX_UDP;
        else
            printf("sendto: %s\n", errname(errno));
        struct msghdr m = {.msg_name = (void*)to,
                           .msg_namelen = sizeof *to,
                           .msg_iov = pieces,
                           .msg_iovlen = BATCH};
        if (sendmsg(s, &m, 0) == MAX_UDP)
            sent++, bytes += MAX_UDP;
        else
            printf("sendmsg: %s\n", errname(errno));
        int n = sendmmsg(s, batch, BATCH, 0);
        if (n > 0)
            sent += n, bytes += (long)n * MAX_UDP;
        else
            printf("sendmmsg: %s\n", errname(errno));
    }
    static char huge[1 << 20];
    errno = 0;
    if (sendto(s, huge, sizeof huge, 0, (const struct sockaddr*)to, sizeof *to) < 0)
        printf("refused sendto 1 MiB: %s\n", errname(errno));
    struct msghdr m = {.msg_name = (void*)to,
                       .msg_namelen = sizeof *to,
                       .msg_iov = pieces,
                       .msg_iovlen = BATCH + 1};
    pieces[BATCH] = (struct iovec){payload, 1};
    if (sendmsg(s, &m, 0) < 0) printf("refused sendmsg 1025 pieces: %s\n", errname(errno));
    static char control[64 * 1024 + 1];
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    if (sendmsg(s, &m, 0) < 0)
        printf("refused sendmsg 64 KiB + 1 of control: %s\n", errname(errno));
    printf("flood: sent %ld datagrams, %ld bytes\n", sent, bytes);
    return 0;
}

static int probe(const struct sockaddr_in* to) {
    const char* map = getenv("LEAKPROOF_MAP");
    printf("pid %d map %s\n", (int)getpid(), map ? map : "-");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        int t = socket(AF_INET, SOCK_STREAM, 0);
        int tcp = connect(t, (const struct sockaddr*)to, sizeof *to) == 0 ? 0 : errno;
        close(t);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        int udp = sendto(u, "x", 1, 0, (const struct sockaddr*)to, sizeof *to) == 1 ? 0 : errno;
        close(u);
        printf("tcp: %s udp: %s\n", errname(tcp), errname(udp));
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char** argv) {
    struct sockaddr_in to;
    if (argc >= 4 && address(argv[2], argv[3], &to) == 0) {
        if (argc == 5 && strcmp(argv[1], "flood") == 0) return flood(&to, atoi(argv[4]));
        if (argc == 4 && strcmp(argv[1], "probe") == 0) return probe(&to);
    }
    fprintf(stderr, "usage: floodclient flood IP PORT ROUNDS | probe IP PORT\n");
    return 2;
}
