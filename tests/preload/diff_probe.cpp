// The differential probe: one scripted sequence of socket calls, every
// observable result printed as a line "row.step = value". diff_test.py runs
// it on a direct connection and under `leakproof`, and compares the lines.
//
//   diff_probe PORT CLOSED_PORT
//
// PORT is the test's gate server on 127.0.0.1: it echoes what it gets and
// answers end-of-file with "BYE\n" and a close. It never speaks first, so
// that readiness after a connect does not depend on when its bytes arrive. The gate can hold a
// connect pending (its accept queue is kept full, so the SYN is dropped until it is released): the
// probe asks for that with a line "@plug" on stdout and waits for a line on stdin, and lets it go
// with "@release" (also answered). CLOSED_PORT has no listener.
//
// Only what the kernel decides is printed (return values, errno names,
// readiness masks, SO_ERROR, addresses, data), never timings.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <span>
#include <string>

namespace {

int port = 0;
int closed_port = 0;
std::string row = "?";

void out(const char* step, const std::string& v) {
    printf("%s.%s = %s\n", row.c_str(), step, v.c_str());
    fflush(stdout);
}

std::string err_name(int e) {
    const char* n = strerrorname_np(e);
    return n ? n : std::to_string(e);
}

// "rc" or "-1 ENAME".
std::string rc_of(long rc, int e) {
    return rc < 0 ? "-1 " + err_name(e) : std::to_string(rc);
}

void say(const char* step, long rc) {
    out(step, rc_of(rc, errno));
}

// Asks the gate (diff_test.py) and waits for its answer.
void gate(const char* what) {
    printf("@%s\n", what);
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof line, stdin) == nullptr) exit(3);
}

std::string events_of(unsigned ev, bool is_poll) {
    struct name {
        unsigned bit;
        const char* text;
    };
    static const name poll_names[] = {{POLLIN, "IN"},   {POLLOUT, "OUT"},     {POLLERR, "ERR"},
                                      {POLLHUP, "HUP"}, {POLLRDHUP, "RDHUP"}, {POLLNVAL, "NVAL"},
                                      {POLLPRI, "PRI"}};
    static const name epoll_names[] = {{EPOLLIN, "IN"},   {EPOLLOUT, "OUT"},     {EPOLLERR, "ERR"},
                                       {EPOLLHUP, "HUP"}, {EPOLLRDHUP, "RDHUP"}, {EPOLLPRI, "PRI"}};
    std::string s;
    for (const name& n :
         is_poll ? std::span<const name>(poll_names) : std::span<const name>(epoll_names))
        if (ev & n.bit) s += (s.empty() ? "" : "|") + std::string(n.text);
    return s.empty() ? "none" : s;
}

sockaddr_in v4(int p) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(p));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

sockaddr_in6 v4_mapped(int p) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(p));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
    return a;
}

int tcp(int family = AF_INET, bool nonblocking = true) {
    int fd = socket(family, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        perror("socket");
        exit(2);
    }
    return fd;
}

long connect_to(int fd, int p) {
    sockaddr_in a = v4(p);
    return connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
}

void connect_row(const char* step, int fd, int p) {
    say(step, connect_to(fd, p));
}

void peer_row(const char* step, int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return say(step, -1);
    char host[64] = "?";
    int p = 0;
    if (ss.ss_family == AF_INET) {
        auto& a = reinterpret_cast<sockaddr_in&>(ss);
        inet_ntop(AF_INET, &a.sin_addr, host, sizeof host);
        p = ntohs(a.sin_port);
    } else {
        auto& a = reinterpret_cast<sockaddr_in6&>(ss);
        inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
        p = ntohs(a.sin6_port);
    }
    // The proxy's port (random) is named, for the rows that pin it.
    const char* proxy = getenv("LP_DIFF_PROXY_PORT");
    std::string where = p == port                   ? ":PORT"
                        : p == closed_port          ? ":CLOSED"
                        : proxy && atoi(proxy) == p ? ":PROXY"
                                                    : ":" + std::to_string(p);
    out(step, std::string(host) + where + " len " + std::to_string(len));
}

void so_error_row(const char* step, int fd) {
    int e = -1;
    socklen_t len = sizeof e;
    long rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
    out(step, rc < 0 ? rc_of(rc, errno) : (e == 0 ? "0" : err_name(e)));
}

void poll_row(const char* step, int fd, short events, int ms) {
    pollfd p{fd, events, 0};
    int rc = poll(&p, 1, ms);
    out(step, rc < 0 ? rc_of(rc, errno) : std::to_string(rc) + " " + events_of(p.revents, true));
}

void select_row(const char* step, int fd, int ms) {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    FD_SET(fd, &r);
    FD_SET(fd, &w);
    timeval tv{ms / 1000, (ms % 1000) * 1000};
    int rc = select(fd + 1, &r, &w, nullptr, &tv);
    if (rc < 0) return say(step, rc);
    out(step, std::to_string(rc) + (FD_ISSET(fd, &r) ? " r" : "") + (FD_ISSET(fd, &w) ? " w" : ""));
}

// Three epoll sets watching fd: level-triggered, edge-triggered, one-shot.
struct epolls {
    int set[3];
    static constexpr const char* names[3] = {"lt", "et", "oneshot"};
    static constexpr unsigned modes[3] = {0, EPOLLET, EPOLLONESHOT};

    explicit epolls(int fd) {
        for (int i = 0; i < 3; ++i) {
            set[i] = epoll_create1(EPOLL_CLOEXEC);
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | modes[i];
            ev.data.fd = fd;
            epoll_ctl(set[i], EPOLL_CTL_ADD, fd, &ev);
        }
    }
    ~epolls() {
        for (int s : set) close(s);
    }
    void wait(const char* step, int ms) {
        for (int i = 0; i < 3; ++i) {
            epoll_event ev{};
            int rc = epoll_wait(set[i], &ev, 1, ms);
            std::string name = std::string(step) + "_" + names[i];
            out(name.c_str(), rc <= 0 ? rc_of(rc, errno) : "1 " + events_of(ev.events, false));
        }
    }
};

// ---- the reading and writing families ---------------------------------------

using io_call = long (*)(int fd, char* buf, size_t n);

long do_read(int fd, char* b, size_t n) {
    return read(fd, b, n);
}
long do_readv(int fd, char* b, size_t n) {
    iovec v{b, n};
    return readv(fd, &v, 1);
}
long do_recv(int fd, char* b, size_t n) {
    return recv(fd, b, n, 0);
}
long do_recvfrom(int fd, char* b, size_t n) {
    return recvfrom(fd, b, n, 0, nullptr, nullptr);
}
long do_recvmsg(int fd, char* b, size_t n) {
    iovec v{b, n};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    return recvmsg(fd, &m, 0);
}
long do_recvmmsg(int fd, char* b, size_t n) {
    iovec v{b, n};
    mmsghdr m{};
    m.msg_hdr.msg_iov = &v;
    m.msg_hdr.msg_iovlen = 1;
    int rc = recvmmsg(fd, &m, 1, 0, nullptr);
    return rc <= 0 ? rc : static_cast<long>(m.msg_len);
}
// socket -> pipe -> buffer
long do_splice_in(int fd, char* b, size_t n) {
    int p[2];
    if (pipe(p) != 0) return -1;
    long rc = splice(fd, nullptr, p[1], nullptr, n, SPLICE_F_NONBLOCK);
    int e = errno;
    if (rc > 0) rc = read(p[0], b, static_cast<size_t>(rc));
    close(p[0]);
    close(p[1]);
    errno = e;
    return rc;
}

long do_write(int fd, char* b, size_t n) {
    return write(fd, b, n);
}
long do_writev(int fd, char* b, size_t n) {
    iovec v{b, n};
    return writev(fd, &v, 1);
}
long do_send(int fd, char* b, size_t n) {
    return send(fd, b, n, MSG_NOSIGNAL);
}
long do_sendto(int fd, char* b, size_t n) {
    return sendto(fd, b, n, MSG_NOSIGNAL, nullptr, 0);
}
long do_sendmsg(int fd, char* b, size_t n) {
    iovec v{b, n};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    return sendmsg(fd, &m, MSG_NOSIGNAL);
}
// Without an address, like a connected socket's.
long do_sendmmsg(int fd, char* b, size_t n) {
    iovec v{b, n};
    mmsghdr m{};
    m.msg_hdr.msg_iov = &v;
    m.msg_hdr.msg_iovlen = 1;
    int rc = sendmmsg(fd, &m, 1, MSG_NOSIGNAL);
    return rc <= 0 ? rc : static_cast<long>(m.msg_len);
}
long do_sendfile(int fd, char* b, size_t n) {
    FILE* f = tmpfile();
    if (f == nullptr) return -1;
    fwrite(b, 1, n, f);
    fflush(f);
    off_t off = 0;
    long rc = sendfile(fd, fileno(f), &off, n);
    int e = errno;
    fclose(f);
    errno = e;
    return rc;
}
// buffer -> pipe -> socket
long do_splice_out(int fd, char* b, size_t n) {
    int p[2];
    if (pipe(p) != 0) return -1;
    if (write(p[1], b, n) != static_cast<long>(n)) return -1;
    long rc = splice(p[0], nullptr, fd, nullptr, n, SPLICE_F_NONBLOCK);
    int e = errno;
    close(p[0]);
    close(p[1]);
    errno = e;
    return rc;
}

struct family {
    const char* name;
    io_call call;
};
const family readers[] = {{"read", do_read},          {"readv", do_readv},
                          {"recv", do_recv},          {"recvfrom", do_recvfrom},
                          {"recvmsg", do_recvmsg},    {"recvmmsg", do_recvmmsg},
                          {"splice_in", do_splice_in}};
const family writers[] = {{"write", do_write},       {"writev", do_writev},
                          {"send", do_send},         {"sendto", do_sendto},
                          {"sendmsg", do_sendmsg},   {"sendmmsg", do_sendmmsg},
                          {"sendfile", do_sendfile}, {"splice_out", do_splice_out}};

// Every family once on a socket that must not be touched yet.
void every_call_held(int fd) {
    char buf[16];
    for (const family& f : readers) {
        std::string step = "held_" + std::string(f.name);
        say(step.c_str(), f.call(fd, buf, sizeof buf));
    }
    for (const family& f : writers) {
        char data[] = "x\n";
        std::string step = "held_" + std::string(f.name);
        say(step.c_str(), f.call(fd, data, 2));
    }
}

// Reads what is there (waiting up to 3 s for the first byte) with `f`.
std::string read_some(int fd, io_call f) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 3000) != 1) return "(nothing readable)";
    char buf[64];
    long n = f(fd, buf, sizeof buf);
    if (n < 0) return rc_of(n, errno);
    std::string s(buf, static_cast<size_t>(n));
    for (auto& c : s)
        if (c == '\n') c = '/';
    return "'" + s + "'";
}

// Each writer sends a line, each reader reads its echo.
void every_call_used(int fd) {
    for (size_t i = 0; i < std::size(writers); ++i) {
        std::string line = std::string(writers[i].name) + "\n";
        std::string step = std::string(writers[i].name);
        say(step.c_str(), writers[i].call(fd, line.data(), line.size()));
        const family& r = readers[i % std::size(readers)];
        step = std::string(r.name) + "_echo_of_" + writers[i].name;
        out(step.c_str(), read_some(fd, r.call));
    }
}

// Sends "HELLO\n" and reads its echo, peeking first.
void greeting(int fd) {
    say("hello", do_send(fd, const_cast<char*>("HELLO\n"), 6));
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, 3000);
    char buf[16];
    long n = recv(fd, buf, 3, MSG_PEEK);
    out("peek", n < 0 ? rc_of(n, errno) : std::string(buf, static_cast<size_t>(n)));
    out("greeting", read_some(fd, do_read));
}

// ---- rows -------------------------------------------------------------------

void nonblocking_connect() {
    row = "nb";
    int fd = tcp();
    epolls before{fd};
    gate("plug");
    connect_row("connect", fd, port);
    epolls after{fd};
    peer_row("getpeername_pending", fd);
    so_error_row("so_error_pending", fd);
    poll_row("poll_pending", fd, POLLIN | POLLOUT, 0);
    select_row("select_pending", fd, 0);
    before.wait("epoll_before_pending", 0);
    after.wait("epoll_after_pending", 0);
    connect_row("connect_again_pending", fd, port);
    every_call_held(fd);
    gate("release");
    poll_row("poll_done", fd, POLLOUT, 8000);
    before.wait("epoll_before_done", 8000);
    after.wait("epoll_after_done", 8000);
    select_row("select_done", fd, 8000);
    so_error_row("so_error_done", fd);
    peer_row("getpeername_done", fd);
    connect_row("connect_again_done", fd, port);
    connect_row("connect_third", fd, port);
    greeting(fd);
    every_call_used(fd);
    say("shutdown_wr", shutdown(fd, SHUT_WR));
    out("after_shutdown_wr", read_some(fd, do_read));
    out("then_eof", read_some(fd, do_read));
    poll_row("poll_half_closed", fd, POLLIN | POLLOUT | POLLRDHUP, 0);
    say("write_after_eof", do_send(fd, const_cast<char*>("z\n"), 2));
    close(fd);
}

void blocking_connect() {
    row = "blocking";
    int fd = tcp(AF_INET, false);
    connect_row("connect", fd, port);
    connect_row("connect_again", fd, port);
    connect_row("connect_third", fd, port);
    peer_row("getpeername", fd);
    greeting(fd);
    say("write", do_write(fd, const_cast<char*>("hello\n"), 6));
    out("echo", read_some(fd, do_read));
    say("shutdown_rd", shutdown(fd, SHUT_RD));
    poll_row("poll_shut_rd", fd, POLLIN | POLLOUT, 0);
    // Not polled after: the server's BYE then races our FIN (a reset, or not).
    say("shutdown_rdwr", shutdown(fd, SHUT_RDWR));
    close(fd);
}

void shutdown_pending(const char* name, int how) {
    row = name;
    int fd = tcp();
    gate("plug");
    connect_row("connect", fd, port);
    say("shutdown", shutdown(fd, how));
    so_error_row("so_error", fd);
    poll_row("poll", fd, POLLIN | POLLOUT, 0);
    gate("release");
    poll_row("poll_later", fd, POLLIN | POLLOUT, 3000);
    so_error_row("so_error_later", fd);
    peer_row("getpeername_later", fd);
    say("send_later", do_send(fd, const_cast<char*>("s\n"), 2));
    close(fd);
}

void close_pending() {
    row = "close_pending";
    int fd = tcp();
    gate("plug");
    connect_row("connect", fd, port);
    say("close", close(fd));
    gate("release");
    // The number comes back for the next socket, which must start clean.
    int again = tcp(AF_INET, false);
    out("same_number", again == fd ? "yes" : "no");
    peer_row("getpeername_new", again);
    connect_row("connect_new", again, port);
    greeting(again);
    close(again);
}

void dup_pending() {
    row = "dup_pending";
    int fd = tcp();
    gate("plug");
    connect_row("connect", fd, port);
    int copy = dup(fd);
    poll_row("poll_copy", copy, POLLIN | POLLOUT, 0);
    say("send_copy", do_send(copy, const_cast<char*>("d\n"), 2));
    so_error_row("so_error_copy", copy);
    gate("release");
    poll_row("poll_copy_done", copy, POLLOUT, 8000);
    peer_row("getpeername_copy", copy);
    greeting(copy);
    close(fd);
    close(copy);
}

// The program makes the socket blocking while its connect is pending: a
// read then waits for the connection and the greeting, as the kernel's does.
void toggle_nonblock() {
    row = "toggle";
    int fd = tcp();
    gate("plug");
    connect_row("connect", fd, port);
    int flags = fcntl(fd, F_GETFL);
    say("set_blocking", fcntl(fd, F_SETFL, flags & ~O_NONBLOCK));
    gate("release_later");  // the gate lets it go 300 ms from now
    // The kernel's blocking send waits for the connection; so must ours.
    say("blocking_send", do_send(fd, const_cast<char*>("HELLO\n"), 6));
    char buf[16];
    long n = recv(fd, buf, 6, MSG_WAITALL);
    out("blocking_recv", n < 0 ? rc_of(n, errno) : std::string(buf, 5));
    say("set_nonblocking", fcntl(fd, F_SETFL, flags));
    close(fd);
}

// The same with recvmmsg on a socket made blocking, which waits in the
// kernel: the proxy's reply must not be what it gets (nothing is sent to the
// server, so after SO_RCVTIMEO the kernel's answer is EAGAIN).
void toggle_recvmmsg() {
    row = "toggle_recvmmsg";
    int fd = tcp();
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    gate("plug");
    connect_row("connect", fd, port);
    say("set_blocking", fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK));
    gate("release_later");
    char buf[16];
    long n = do_recvmmsg(fd, buf, sizeof buf);
    out("blocking_recvmmsg", n < 0 ? rc_of(n, errno) : std::to_string(n) + " bytes");
    say("hello", do_send(fd, const_cast<char*>("HELLO\n"), 6));
    out("echo", read_some(fd, do_read));
    close(fd);
}

void options_kept() {
    row = "options";
    int fd = tcp(AF_INET, false);
    int one = 1, size = 65536;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    connect_row("connect", fd, port);
    struct opt {
        const char* name;
        int level, opt;
    };
    for (opt o :
         {opt{"tcp_nodelay", IPPROTO_TCP, TCP_NODELAY},
          opt{"so_keepalive", SOL_SOCKET, SO_KEEPALIVE}, opt{"so_sndbuf", SOL_SOCKET, SO_SNDBUF},
          opt{"so_rcvbuf", SOL_SOCKET, SO_RCVBUF}}) {
        int v = -1;
        socklen_t len = sizeof v;
        getsockopt(fd, o.level, o.opt, &v, &len);
        out(o.name, std::to_string(v));
    }
    close(fd);
}

void v4_mapped_row() {
    row = "v4mapped";
    int fd = tcp(AF_INET6, false);
    sockaddr_in6 a = v4_mapped(port);
    say("connect", connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a));
    peer_row("getpeername", fd);
    greeting(fd);
    close(fd);
}

void refused_nonblocking() {
    row = "refused_nb";
    int fd = tcp();
    long rc = connect_to(fd, closed_port);
    // A loopback refusal may already be known when connect() returns:
    // both answers are the kernel's, the rows after it say the rest.
    out("connect", rc < 0 && (errno == EINPROGRESS || errno == ECONNREFUSED)
                       ? "-1 refused-or-pending"
                       : rc_of(rc, errno));
    poll_row("poll", fd, POLLOUT, 8000);
    so_error_row("so_error", fd);
    so_error_row("so_error_again", fd);
    peer_row("getpeername", fd);
    say("recv", do_recv(fd, nullptr, 0));
    say("send", do_send(fd, const_cast<char*>("r\n"), 2));
    connect_row("connect_again", fd, closed_port);
    close(fd);
}

// The pending error reaches the first call that looks, a recvmmsg here (the
// kernel's sock_error rule): it must not be end-of-file from the proxy.
void refused_recvmmsg() {
    row = "refused_recvmmsg";
    int fd = tcp();
    connect_to(fd, closed_port);
    poll_row("poll", fd, POLLOUT, 8000);
    char buf[16];
    say("recvmmsg", do_recvmmsg(fd, buf, sizeof buf));
    so_error_row("so_error", fd);
    close(fd);
}

void refused_blocking() {
    row = "refused_blocking";
    int fd = tcp(AF_INET, false);
    connect_row("connect", fd, closed_port);
    so_error_row("so_error", fd);
    connect_row("connect_again", fd, closed_port);
    // After a failed connect the socket may connect anew.
    connect_row("connect_working", fd, port);
    greeting(fd);
    close(fd);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: diff_probe PORT CLOSED_PORT\n");
        return 2;
    }
    // sendfile() and splice() have no MSG_NOSIGNAL: a broken stream must
    // print EPIPE, not end the script.
    signal(SIGPIPE, SIG_IGN);
    port = atoi(argv[1]);
    closed_port = atoi(argv[2]);
    nonblocking_connect();
    blocking_connect();
    shutdown_pending("shutdown_rdwr_pending", SHUT_RDWR);
    shutdown_pending("shutdown_wr_pending", SHUT_WR);
    close_pending();
    dup_pending();
    toggle_nonblock();
    toggle_recvmmsg();
    options_kept();
    v4_mapped_row();
    refused_nonblocking();
    refused_recvmmsg();
    refused_blocking();
    printf("@end\n");
    return 0;
}
