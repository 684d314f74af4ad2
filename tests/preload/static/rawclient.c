/* A static C client that needs no libc resolver, built with
 * gcc -static: LD_PRELOAD cannot reach it.
 *
 *   rawclient ip IP PORT                 HTTP GET from IP:PORT
 *   rawclient dns connect|sendto|kept|tcp NAME PORT
 *       resolves NAME itself with a query to the first "nameserver" of
 *       /etc/resolv.conf (UDP on a connected socket, UDP with sendto and
 *       recvfrom, the same with one socket for both queries, or TCP),
 *       prints "resolved A.B.C.D", asks for that address's PTR record and
 *       prints "ptr NAME", then GETs NAME:PORT from that address.
 *   rawclient packet                     opens packet sockets (AF_PACKET,
 *       and AF_INET's old SOCK_PACKET); prints "packet: ERRNO-NAME" for each
 *   rawclient len N IP PORT              connect() to IP:PORT passing an
 *       address length of N (the IPv4 address, zero-padded), a 64-bit value
 *       (0x... allowed) passed as is to the system call; prints
 *       "len N: connected" or "len N: ERRNO-TEXT"
 *   rawclient unspec IP PORT             sendto() a UDP datagram ("unspec") on
 *       an AF_INET socket, to IP:PORT spelled with family AF_UNSPEC (which
 *       the kernel reads as AF_INET); prints "unspec: sent" or
 *       "unspec: ERRNO-TEXT"
 *   rawclient keep IP PORT               what a socket keeps across connect():
 *       a non-blocking, close-on-exec TCP socket with SO_KEEPALIVE set and
 *       a dup() of it made before connect(); after the connect completes
 *       prints "nonblock N", "cloexec N", "keepalive N", "dup peer
 *       yes|no" and "fetched N" (the bytes of an HTTP GET read back)
 *   rawclient nodump ...                 any of the above, after making the
 *       process non-dumpable (PR_SET_DUMPABLE 0)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fetch(const char* ip, int port, const char* host) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) return 2;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) {
        perror("connect");
        return 1;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.0\r\nHost: %s:%d\r\n\r\n", host, port);
    if (write(s, req, n) != n) return 1;
    char buf[4096];
    ssize_t got;
    while ((got = read(s, buf, sizeof buf)) > 0) fwrite(buf, 1, got, stdout);
    return got < 0;
}

static int nameserver(struct sockaddr_in* ns) {
    FILE* f = fopen("/etc/resolv.conf", "r");
    char line[256], addr[64];
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "nameserver %63s", addr) == 1) {
            fclose(f);
            *ns = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(53)};
            return inet_pton(AF_INET, addr, &ns->sin_addr) == 1 ? 0 : -1;
        }
    fclose(f);
    return -1;
}

/* A query for NAME of TYPE (class IN); returns its length. */
static int build_query(const char* name, int type, unsigned char* q) {
    static const unsigned char head[12] = {0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    memcpy(q, head, 12);
    int at = 12;
    for (const char* p = name; *p;) {
        const char* dot = strchr(p, '.');
        int len = dot ? (int)(dot - p) : (int)strlen(p);
        q[at++] = (unsigned char)len;
        memcpy(q + at, p, len);
        at += len;
        p += len + (dot != NULL);
    }
    q[at++] = 0;
    q[at++] = 0, q[at++] = (unsigned char)type;
    q[at++] = 0, q[at++] = 1; /* IN */
    return at;
}

/* The first A record of the response, assuming the answer's name is a pointer. */
static int first_a(const unsigned char* r, int n, int qlen, char* out) {
    if (n < qlen + 16 || (r[3] & 0x0f) != 0 || r[7] == 0) return -1;
    const unsigned char* rr = r + qlen;
    if (rr[2] != 0 || rr[3] != 1 || rr[10] != 0 || rr[11] != 4) return -1;
    return inet_ntop(AF_INET, rr + 12, out, 16) ? 0 : -1;
}

/* Sends Q (QLEN bytes) the way HOW says, puts the response in R; its length or -1. */
static int exchange(const char* how, const unsigned char* q, int qlen, unsigned char* r, int cap) {
    struct sockaddr_in ns;
    if (nameserver(&ns) != 0) return -1;
    int tcp = strcmp(how, "tcp") == 0;
    static int kept = -1; /* "kept": one socket for every query */
    int keep = strcmp(how, "kept") == 0;
    int s = keep && kept >= 0 ? kept : socket(AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = -1;
    if (keep) {
        kept = s;
        if (sendto(s, q, qlen, 0, (struct sockaddr*)&ns, sizeof ns) == qlen)
            return (int)recvfrom(s, r, cap, 0, NULL, NULL);
        return -1;
    } else if (strcmp(how, "sendto") == 0) {
        if (sendto(s, q, qlen, 0, (struct sockaddr*)&ns, sizeof ns) == qlen)
            n = recvfrom(s, r, cap, 0, NULL, NULL);
    } else if (connect(s, (struct sockaddr*)&ns, sizeof ns) != 0) {
        perror("dns connect");
    } else if (tcp) {
        unsigned char len[2] = {(unsigned char)(qlen >> 8), (unsigned char)qlen};
        if (write(s, len, 2) == 2 && write(s, q, qlen) == qlen && read(s, len, 2) == 2)
            n = recv(s, r, (len[0] << 8 | len[1]) < cap ? (len[0] << 8 | len[1]) : cap,
                     MSG_WAITALL);
    } else if (write(s, q, qlen) == qlen) {
        n = read(s, r, cap);
    }
    close(s);
    return (int)n;
}

static int resolve(const char* how, const char* name, char* out) {
    unsigned char q[512], r[512];
    int qlen = build_query(name, 1, q);
    int n = exchange(how, q, qlen, r, sizeof r);
    return n > 0 ? first_a(r, n, qlen, out) : -1;
}

/* The PTR name of IP (a dotted quad), as the responder writes it (labels, no pointers). */
static int reverse(const char* how, const char* ip, char* out) {
    unsigned a, b, c, d;
    char arpa[64];
    unsigned char q[512], r[512];
    if (sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d) != 4) return -1;
    snprintf(arpa, sizeof arpa, "%u.%u.%u.%u.in-addr.arpa", d, c, b, a);
    int qlen = build_query(arpa, 12, q);
    int n = exchange(how, q, qlen, r, sizeof r);
    if (n < qlen + 12 || (r[3] & 0x0f) != 0 || r[7] == 0) return -1;
    int at = qlen + 12, o = 0;
    while (at < n && r[at] != 0 && r[at] < 64 && at + 1 + r[at] <= n) {
        if (o) out[o++] = '.';
        memcpy(out + o, r + at + 1, r[at]);
        o += r[at];
        at += 1 + r[at];
    }
    out[o] = 0;
    return 0;
}

static int flag_of(int s, int cmd, int bit) {
    int v = fcntl(s, cmd);
    return v >= 0 && (v & bit) != 0;
}

static int keep(const char* ip, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) return 2;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    int copy = dup(s);
    if (connect(s, (struct sockaddr*)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        perror("connect");
        return 1;
    }
    struct pollfd p = {.fd = s, .events = POLLOUT};
    int err = 0, keepalive = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, 10000) != 1 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err) {
        fprintf(stderr, "connect: %s\n", strerror(err));
        return 1;
    }
    len = sizeof keepalive;
    getsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &len);
    struct sockaddr_in peer;
    len = sizeof peer;
    printf("nonblock %d\ncloexec %d\nkeepalive %d\ndup peer %s\n", flag_of(s, F_GETFL, O_NONBLOCK),
           flag_of(s, F_GETFD, FD_CLOEXEC), keepalive != 0,
           getpeername(copy, (struct sockaddr*)&peer, &len) == 0 ? "yes" : "no");
    char req[128], buf[4096];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.0\r\nHost: %s:%d\r\n\r\n", ip, port);
    if (write(s, req, n) != n) return 1;
    long total = 0;
    for (;;) {
        ssize_t got = read(s, buf, sizeof buf);
        if (got > 0) {
            total += got;
        } else if (got < 0 && errno == EAGAIN) {
            p.events = POLLIN;
            if (poll(&p, 1, 10000) != 1) return 1;
        } else {
            break;
        }
    }
    printf("fetched %ld\n", total);
    return total == 0;
}

/* Packet sockets send frames past every address check. */
static int packet(void) {
    int domains[2] = {AF_PACKET, AF_INET}, types[2] = {SOCK_RAW, SOCK_PACKET};
    for (int i = 0; i < 2; ++i) {
        int s = socket(domains[i], types[i] | SOCK_CLOEXEC, htons(0x0003));
        printf("packet: %s\n", s >= 0 ? "opened" : errno == EPERM ? "EPERM" : strerror(errno));
        if (s >= 0) close(s);
    }
    return 0;
}

static int connect_with_len(const char* arg, const char* ip, int port) {
    unsigned long len = strtoul(arg, NULL, 0);
    union {
        struct sockaddr_in in;
        unsigned char bytes[128];
    } a;
    memset(&a, 0, sizeof a);
    a.in.sin_family = AF_INET;
    a.in.sin_port = htons(port);
    if ((unsigned)len > sizeof a || inet_pton(AF_INET, ip, &a.in.sin_addr) != 1) return 2;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    long rc = syscall(SYS_connect, s, (struct sockaddr*)&a, len);
    printf("len %s: %s\n", arg, rc == 0 ? "connected" : strerror(errno));
    close(s);
    return 0;
}

static int send_unspec(const char* ip, int port) {
    struct sockaddr_in a = {.sin_family = AF_UNSPEC, .sin_port = htons(port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) return 2;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    ssize_t n = sendto(s, "unspec", 6, 0, (struct sockaddr*)&a, sizeof a);
    printf("unspec: %s\n", n == 6 ? "sent" : strerror(errno));
    close(s);
    return 0;
}

int main(int argc, char** argv) {
    // As a script's interpreter (#!/path/to/rawclient) argv[1] is the script.
    if (argc > 1 && strchr(argv[1], '/') != NULL) {
        ++argv;
        --argc;
    }
    if (argc > 1 && strcmp(argv[1], "nodump") == 0) {
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        ++argv;
        --argc;
    }
    if (argc == 2 && strcmp(argv[1], "packet") == 0) return packet();
    if (argc == 4 && strcmp(argv[1], "ip") == 0) return fetch(argv[2], atoi(argv[3]), argv[2]);
    if (argc == 4 && strcmp(argv[1], "keep") == 0) return keep(argv[2], atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "unspec") == 0) return send_unspec(argv[2], atoi(argv[3]));
    if (argc == 5 && strcmp(argv[1], "len") == 0)
        return connect_with_len(argv[2], argv[3], atoi(argv[4]));
    if (argc != 5 || strcmp(argv[1], "dns") != 0) {
        fprintf(
            stderr,
            "usage: rawclient ip IP PORT | dns connect|sendto|kept|tcp NAME PORT | len N IP PORT"
            " | unspec IP PORT | keep IP PORT\n");
        return 2;
    }
    char ip[16];
    if (resolve(argv[2], argv[3], ip) != 0) {
        fprintf(stderr, "cannot resolve %s\n", argv[3]);
        return 1;
    }
    printf("resolved %s\n", ip);
    char name[256];
    if (reverse(argv[2], ip, name) == 0) printf("ptr %s\n", name);
    return fetch(ip, atoi(argv[4]), argv[3]);
}
