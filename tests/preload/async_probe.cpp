// Non-blocking connects through the interposer, driven by the readiness APIs
// a C event loop uses. C APIs only. Run under `leakproof`:
//
//   async_probe epoll lt|et|oneshot before|after N HOST PORT
//   async_probe poll|select N HOST PORT
//   async_probe timer N HOST PORT          (edge-triggered epoll + 5 ms timerfd)
//   async_probe error epoll|poll|select HOST PORT
//
// The fetch modes open N connections to HOST:PORT at once (HOST resolved by
// getaddrinfo: a placeholder under the wrapper), GET / on each and read to
// EOF. They print "elapsed_ms", "connected_ms" (until the last one was
// writable), "first_ready_ms" (the earliest writable
// report after connect: a handshake takes two proxy round trips, so an early
// report shows up here) and "fetched N"; exit 1 on any protocol slip (a
// write refused after "writable", a wrong body). `error` prints
// "so_error ERRNO after_ms T" for one connection.
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

namespace {

const char* const body_marker = "leakproof-known-body-7f3a";

double now_ms() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

[[noreturn]] void die(const char* what) {
    fprintf(stderr, "async_probe: %s: %s\n", what, strerror(errno));
    exit(1);
}

struct conn {
    int fd = -1;
    bool sent = false;
    bool done = false;
    double started = 0;
    double ready = -1;    // first writable report, ms after connect
    double ready_at = 0;  // the same, as a clock reading
    std::string got;
};

sockaddr_storage resolve(const char* host, const char* port, socklen_t& len) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host, port, &hints, &res) != 0 || res == nullptr) die("getaddrinfo");
    sockaddr_storage ss{};
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    len = res->ai_addrlen;
    freeaddrinfo(res);
    return ss;
}

void start(conn& c, const sockaddr_storage& ss, socklen_t len) {
    c.started = now_ms();
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0) return;
    if (errno != EINPROGRESS) die("connect did not return EINPROGRESS");
}

int new_socket(const sockaddr_storage& ss) {
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    return fd;
}

// Writable: the handshake must be over, so SO_ERROR is 0 and the request goes out.
void on_writable(conn& c, const char* host) {
    if (c.sent) return;
    if (c.ready < 0) {
        c.ready_at = now_ms();
        c.ready = c.ready_at - c.started;
    }
    int err = 0;
    socklen_t elen = sizeof err;
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
        errno = err;
        die("SO_ERROR after writable");
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", host);
    if (send(c.fd, req, static_cast<size_t>(n), MSG_NOSIGNAL) != n) die("write after writable");
    c.sent = true;
}

// Readable: read until EAGAIN (edge-triggered safe) or EOF.
void on_readable(conn& c) {
    char buf[4096];
    for (;;) {
        ssize_t n = read(c.fd, buf, sizeof buf);
        if (n > 0) {
            c.got.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) {
            // The response must start the stream: a byte of the proxy's
            // reply in front of it would be a handshake byte given away.
            if (c.got.rfind("HTTP/1.", 0) != 0 || c.got.find(body_marker) == std::string::npos) {
                errno = EBADMSG;
                die("wrong body");
            }
            c.done = true;
            close(c.fd);
        } else if (errno != EAGAIN) {
            die("read");
        }
        return;
    }
}

// connected_ms: until the last connection was reported writable, the
// handshakes' share of elapsed_ms.
void report(const std::vector<conn>& cs, double t0) {
    double first = 1e9, last = 0;
    for (const conn& c : cs) {
        first = std::min(first, c.ready);
        last = std::max(last, c.ready_at - t0);
    }
    printf("elapsed_ms %.1f\nconnected_ms %.1f\nfirst_ready_ms %.1f\nfetched %zu\n", now_ms() - t0,
           last, first, cs.size());
}

// ---- epoll -----------------------------------------------------------------

struct epoll_mode {
    unsigned base = 0;  // EPOLLET / EPOLLONESHOT / 0
    bool before = false;
};

void ep_set(int ep, int op, conn& c, unsigned events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    if (epoll_ctl(ep, op, c.fd, &ev) != 0) die("epoll_ctl");
}

// What to ask for next: LT/oneshot switch from OUT to IN; ET asks both once.
unsigned ep_interest(const epoll_mode& m, const conn& c) {
    if (m.base & EPOLLET) return EPOLLIN | EPOLLOUT | EPOLLET;
    return (c.sent ? EPOLLIN : EPOLLOUT) | m.base;
}

void ep_event(int ep, const epoll_mode& m, conn& c, unsigned ev, const char* host) {
    bool was_sent = c.sent;
    if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_writable(c, host);
    if (c.sent && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR))) on_readable(c);
    if (c.done || (m.base & EPOLLET)) return;
    if ((m.base & EPOLLONESHOT) || was_sent != c.sent)
        ep_set(ep, EPOLL_CTL_MOD, c, ep_interest(m, c));
}

int run_epoll(epoll_mode m, std::vector<conn>& cs, const char* host, const sockaddr_storage& ss,
              socklen_t len, int timer) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    if (timer >= 0) {
        epoll_event tev{};
        tev.events = EPOLLIN | EPOLLET;
        tev.data.ptr = nullptr;
        epoll_ctl(ep, EPOLL_CTL_ADD, timer, &tev);
    }
    double t0 = now_ms(), last_tick = now_ms(), max_gap = 0;
    long ticks = 0;
    for (conn& c : cs) {
        c.fd = new_socket(ss);
        if (m.before) ep_set(ep, EPOLL_CTL_ADD, c, ep_interest(m, c));
        start(c, ss, len);
        if (!m.before) ep_set(ep, EPOLL_CTL_ADD, c, ep_interest(m, c));
    }
    size_t left = cs.size();
    while (left > 0) {
        epoll_event evs[64];
        int n = epoll_wait(ep, evs, 64, 10000);
        if (n <= 0) die("epoll_wait timed out");
        for (int i = 0; i < n; ++i) {
            if (evs[i].data.ptr == nullptr) {
                uint64_t exp;
                if (read(timer, &exp, sizeof exp) == sizeof exp) ticks += static_cast<long>(exp);
                max_gap = std::max(max_gap, now_ms() - last_tick);
                last_tick = now_ms();
                continue;
            }
            conn& c = *static_cast<conn*>(evs[i].data.ptr);
            if (c.done) continue;
            ep_event(ep, m, c, evs[i].events, host);
            if (c.done) --left;
        }
    }
    report(cs, t0);
    if (timer >= 0) printf("ticks %ld\nmax_tick_gap_ms %.1f\n", ticks, max_gap);
    return 0;
}

// ---- poll / select ---------------------------------------------------------

// One round: what each unfinished connection waits for, then dispatch.
void poll_round(std::vector<conn>& cs, const char* host) {
    std::vector<pollfd> p;
    std::vector<conn*> who;
    for (conn& c : cs) {
        if (c.done) continue;
        p.push_back(pollfd{c.fd, static_cast<short>(c.sent ? POLLIN : POLLOUT), 0});
        who.push_back(&c);
    }
    if (poll(p.data(), p.size(), 10000) <= 0) die("poll timed out");
    for (size_t i = 0; i < p.size(); ++i) {
        if (p[i].revents & (POLLOUT | POLLERR | POLLHUP)) on_writable(*who[i], host);
        if (who[i]->sent && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) on_readable(*who[i]);
    }
}

void select_round(std::vector<conn>& cs, const char* host) {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    int maxfd = -1;
    for (conn& c : cs) {
        if (c.done) continue;
        FD_SET(c.fd, c.sent ? &r : &w);
        maxfd = std::max(maxfd, c.fd);
    }
    timeval tv{10, 0};
    if (select(maxfd + 1, &r, &w, nullptr, &tv) <= 0) die("select timed out");
    for (conn& c : cs) {
        if (c.done) continue;
        if (!c.sent && FD_ISSET(c.fd, &w))
            on_writable(c, host);
        else if (c.sent && FD_ISSET(c.fd, &r))
            on_readable(c);
    }
}

int run_rounds(bool use_select, std::vector<conn>& cs, const char* host, const sockaddr_storage& ss,
               socklen_t len) {
    double t0 = now_ms();
    for (conn& c : cs) {
        c.fd = new_socket(ss);
        start(c, ss, len);
    }
    auto unfinished = [&] {
        return std::any_of(cs.begin(), cs.end(), [](const conn& c) { return !c.done; });
    };
    while (unfinished()) use_select ? select_round(cs, host) : poll_round(cs, host);
    report(cs, t0);
    return 0;
}

// ---- failures --------------------------------------------------------------

void wait_writable(const char* api, int fd) {
    if (strcmp(api, "epoll") == 0) {
        int ep = epoll_create1(0);
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLET;
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        if (epoll_wait(ep, &ev, 1, 30000) != 1) die("epoll_wait");
    } else if (strcmp(api, "poll") == 0) {
        pollfd p{fd, POLLOUT, 0};
        if (poll(&p, 1, 30000) != 1) die("poll");
    } else {
        fd_set w;
        FD_ZERO(&w);
        FD_SET(fd, &w);
        timeval tv{30, 0};
        if (select(fd + 1, nullptr, &w, nullptr, &tv) != 1) die("select");
    }
}

int run_error(const char* api, const char* host, const char* port) {
    socklen_t len;
    auto ss = resolve(host, port, len);
    conn c;
    c.fd = new_socket(ss);
    start(c, ss, len);
    wait_writable(api, c.fd);
    int err = -1;
    socklen_t elen = sizeof err;
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) die("getsockopt");
    int again = -1;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &again, &elen);
    printf("so_error %d after_ms %.0f then %d\n", err, now_ms() - c.started, again);
    return 0;
}

int timer_fd() {
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    itimerspec its{{0, 5000000}, {0, 5000000}};
    if (t < 0 || timerfd_settime(t, 0, &its, nullptr) != 0) die("timerfd");
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> a(argv + 1, argv + argc);
    if (a.size() == 4 && a[0] == "error") return run_error(argv[2], argv[3], argv[4]);
    size_t need = !a.empty() && a[0] == "epoll" ? 6 : 4;
    if (a.size() != need) {
        fprintf(stderr, "usage: see the top of async_probe.cpp\n");
        return 2;
    }
    const char* host = argv[argc - 2];
    socklen_t len;
    auto ss = resolve(host, argv[argc - 1], len);
    std::vector<conn> cs(static_cast<size_t>(atoi(argv[argc - 3])));
    if (a[0] == "epoll") {
        epoll_mode m;
        m.base = a[1] == "et" ? EPOLLET : a[1] == "oneshot" ? EPOLLONESHOT : 0u;
        m.before = a[2] == "before";
        return run_epoll(m, cs, host, ss, len, -1);
    }
    if (a[0] == "timer")
        return run_epoll(epoll_mode{EPOLLET, false}, cs, host, ss, len, timer_fd());
    return run_rounds(a[0] == "select", cs, host, ss, len);
}
