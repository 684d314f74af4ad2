#include "interposer/inbound.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>

#include "interposer/fdtable.hpp"
#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "runtime/config.hpp"
#include "runtime/log.hpp"
#include "runtime/marker.hpp"
#include "runtime/real.hpp"
#include "runtime/tunnel.hpp"

namespace lp::inbound {

struct listener {
    int proxy = -1;  // our connection to the proxy, which BIND made the peer's
    int wake = -1;   // our loopback connection to the listening socket
    int domain = AF_INET;
    sockaddr_storage announced{};  // what the proxy listens on, in the socket's family
    socklen_t announced_len = 0;
    sockaddr_storage peer{};  // who connected (second reply)
    socklen_t peer_len = 0;
    sockaddr_storage wake_from{};  // the wake connection's own address, to tell it apart
    socklen_t wake_from_len = 0;
    std::atomic<bool> arrived{false};    // the peer is there and the wake connection made
    std::atomic<bool> cancelled{false};  // the listening socket was closed
    bool waiting = false;      // listen() came and the helper thread waits (under fdtable::guard)
    int refs = 1;              // under fdtable::guard
    pid_t owner = ::getpid();  // a forked child's close must not end the parent's BIND
    char name[256] = "";       // the request's target name (the handshake's view)
    std::optional<leakproof::client_handshake> hs;
};

namespace {

// The peer of the most recent proxied connection: a BIND's expected host.
struct {
    std::mutex mu;
    bool set = false;
    bool by_name = false;
    char name[256] = "";
    std::size_t name_len = 0;
    net::endpoint ip;
} last;

std::error_code sys(int e) noexcept {
    return {e, std::generic_category()};
}

int sock_opt(int fd, int opt) noexcept {
    int v = -1;
    socklen_t len = sizeof v;
    return real::fn().getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

// `a`:`port` (a SOCKS address, IPv4 or IPv6) in `domain`'s socket address.
socklen_t to_sockaddr(const leakproof::address& a, std::uint16_t port, int domain,
                      sockaddr_storage& out) noexcept {
    std::memset(&out, 0, sizeof out);
    net::ip ip;
    if (a.type == leakproof::address::kind::ipv4) {
        ip.b[10] = ip.b[11] = 0xff;
        std::memcpy(ip.b.data() + 12, a.ip.data(), 4);
    } else if (a.type == leakproof::address::kind::ipv6) {
        std::memcpy(ip.b.data(), a.ip.data(), 16);
    } else {
        return 0;
    }
    if (domain == AF_INET) {
        if (!ip.is_v4()) return 0;
        auto& in = reinterpret_cast<sockaddr_in&>(out);
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        std::memcpy(&in.sin_addr, ip.b.data() + 12, 4);
        return sizeof in;
    }
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&in6.sin6_addr, ip.b.data(), 16);
    return sizeof in6;
}

leakproof::address first_hop_address() noexcept {
    const auto& ip = config::get().first_hop_ep.addr;
    if (ip.is_v4()) return leakproof::address::ipv4({ip.b[12], ip.b[13], ip.b[14], ip.b[15]});
    return leakproof::address::ipv6(ip.b);
}

void log_line(log::level lvl, const char* what, std::error_code ec) noexcept {
    if (!log::enabled(lvl)) return;
    auto ln = log::start();
    ln << "listen via ";
    ln.proxy(config::get().chain[0]);
    ln << " (BIND): " << what;
    if (ec) {
        ln << ": ";
        tunnel::put_error(ln, ec, &config::get().chain[0]);
    }
    log::emit(lvl, ln);
}

// BIND at the first proxy up to its first reply; fills `l`.
std::error_code ask_to_listen(listener& l) noexcept {
    const auto& cfg = config::get();
    if (cfg.error != nullptr || cfg.chain_len == 0) return sys(ENETUNREACH);
    leakproof::address target;
    std::uint16_t port = 0;
    {
        std::lock_guard lock{last.mu};
        if (last.by_name) {
            std::memcpy(l.name, last.name, last.name_len);
            target = leakproof::address::host_name({l.name, last.name_len});
        } else {
            const auto& b = last.ip.addr.b;
            target = last.ip.addr.is_v4() ? leakproof::address::ipv4({b[12], b[13], b[14], b[15]})
                                          : leakproof::address::ipv6(b);
        }
        port = last.ip.port;
    }
    int family = cfg.first_hop_ep.addr.is_v4() ? AF_INET : AF_INET6;
    l.proxy = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l.proxy < 0) return sys(errno);
    l.hs.emplace(cfg.chain[0].make_request(target, port, leakproof::command::bind));
    tunnel::deadline dl{cfg.timeout_ms};
    auto ec = tunnel::connect_first_hop(l.proxy, family);
    if (!ec) ec = tunnel::drive(l.proxy, *l.hs, dl);
    if (ec) return ec;
    const auto& r = l.hs->result();
    l.announced_len = to_sockaddr(r.means_proxy_address() ? first_hop_address() : r.bound, r.port,
                                  l.domain, l.announced);
    return l.announced_len == 0 ? std::error_code{leakproof::error::bad_address_type}
                                : std::error_code{};
}

// The listening socket's own address, as a loopback connection reaches it.
socklen_t reachable_address(int fd, int domain, sockaddr_storage& out) noexcept {
    socklen_t len = sizeof out;
    if (real::fn().getsockname(fd, reinterpret_cast<sockaddr*>(&out), &len) != 0) return 0;
    if (domain == AF_INET) {
        auto& in = reinterpret_cast<sockaddr_in&>(out);
        if (in.sin_addr.s_addr == htonl(INADDR_ANY)) in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr)) in6.sin6_addr = in6addr_loopback;
    }
    return len;
}

// Makes the listening socket readable: a connection of ours, from an
// address of its own that accept() will recognise.
bool wake_up(listener& l, int fd) noexcept {
    sockaddr_storage to;
    socklen_t to_len = reachable_address(fd, l.domain, to);
    if (to_len == 0) return false;
    int w = ::socket(l.domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (w < 0) return false;
    sockaddr_storage from{};
    from.ss_family = static_cast<sa_family_t>(l.domain);
    socklen_t from_len = l.domain == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    if (l.domain == AF_INET)
        reinterpret_cast<sockaddr_in&>(from).sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        reinterpret_cast<sockaddr_in6&>(from).sin6_addr = in6addr_loopback;
    l.wake_from_len = sizeof l.wake_from;
    if (::bind(w, reinterpret_cast<sockaddr*>(&from), from_len) != 0 ||
        real::fn().getsockname(w, reinterpret_cast<sockaddr*>(&l.wake_from), &l.wake_from_len) !=
            0) {
        real::fn().close(w);
        return false;
    }
    l.wake = w;
    l.arrived.store(true, std::memory_order_release);
    return marker::connect(w, reinterpret_cast<sockaddr*>(&to), to_len) == 0;
}

// The helper thread: waits for the peer (the proxy's second reply), then
// wakes the listening socket.
void wait_for_peer(listener* l, int fd) noexcept {
    tunnel::deadline dl{config::get().timeout_ms};
    std::error_code ec;
    if (!l->hs->await_peer()) ec = sys(EPROTO);
    if (!ec) ec = tunnel::drive(l->proxy, *l->hs, dl);
    if (!ec) {
        const auto& r = l->hs->result();
        l->peer_len = to_sockaddr(r.bound, r.port, l->domain, l->peer);
        auto lk = fdtable::guard();
        if (!l->cancelled.load() && !wake_up(*l, fd)) ec = sys(errno ? errno : EIO);
    }
    if (ec && !l->cancelled.load()) log_line(log::level::normal, "no connection came", ec);
    auto lk = fdtable::guard();
    release(l);
}

bool same(const sockaddr_storage& a, socklen_t a_len, const sockaddr_storage& b,
          socklen_t b_len) noexcept {
    net::endpoint x, y;
    return net::from_sockaddr(reinterpret_cast<const sockaddr*>(&a), a_len, x) &&
           net::from_sockaddr(reinterpret_cast<const sockaddr*>(&b), b_len, y) &&
           x.addr.b == y.addr.b && x.port == y.port;
}

listener* acquire(int fd) noexcept {
    auto lk = fdtable::guard();
    listener* l = fdtable::listening(fd);
    if (l != nullptr) ++l->refs;
    return l;
}

void done_with(listener* l) noexcept {
    auto lk = fdtable::guard();
    release(l);
}

// Hands our connection to the peer over as accept()'s result.
int hand_over(listener& l, int flags, sockaddr* sa, socklen_t* len) noexcept {
    int s = std::exchange(l.proxy, -1);
    const auto& real = real::fn();
    int fl = real.fcntl(s, F_GETFL);
    real.fcntl(s, F_SETFL, (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
    real.fcntl(s, F_SETFD, (flags & SOCK_CLOEXEC) ? FD_CLOEXEC : 0);
    if (sa != nullptr && len != nullptr) {
        std::memcpy(sa, &l.peer, std::min(*len, l.peer_len));
        *len = l.peer_len;
    }
    fdtable::established(s, reinterpret_cast<const sockaddr*>(&l.peer), l.peer_len, true);
    return s;
}

// A TCP socket of ours to BIND for: --inbound, an IP socket, and a
// proxied connection whose peer the BIND can name.
bool candidate(int fd, int& domain) noexcept {
    if (!config::get().inbound) return false;
    domain = sock_opt(fd, SO_DOMAIN);
    if (sock_opt(fd, SO_TYPE) != SOCK_STREAM || (domain != AF_INET && domain != AF_INET6))
        return false;
    std::lock_guard lock{last.mu};
    return last.set;
}

// Asks the proxy to listen for fd and keeps the answer in the table; the
// errno (and one log line) when it refuses.
int prepare(int fd, int domain) noexcept {
    auto* l = new (std::nothrow) listener;
    if (l == nullptr) return ENOMEM;
    l->domain = domain;
    auto ec = ask_to_listen(*l);
    if (ec) {
        log_line(log::level::normal, "refused", ec);
        auto lk = fdtable::guard();
        release(l);
        return leakproof::to_errno(ec);
    }
    log_line(log::level::verbose, "the proxy listens", {});
    auto lk = fdtable::guard();
    fdtable::set_listening(fd, l);
    return 0;
}

// A bound socket that neither listens nor is connected: what a program
// asks getsockname() of before listen() (curl does, for its PORT).
bool about_to_listen(int fd) noexcept {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (real::fn().getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return false;
    net::endpoint own;
    if (!net::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), len, own) || own.port == 0)
        return false;
    len = sizeof ss;
    if (real::fn().getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) return false;
    return sock_opt(fd, SO_ACCEPTCONN) == 0;
}

}  // namespace

void note_proxied(const policy::decision& d) noexcept {
    if (!config::get().inbound) return;
    std::lock_guard lock{last.mu};
    last.set = true;
    last.by_name = d.by_name;
    last.name_len = d.by_name ? d.name_len : 0;
    std::memcpy(last.name, d.name, last.name_len);
    last.ip = d.target;
}

bool listen(int fd, int backlog, int& rc) noexcept {
    if (!fdtable::listening_fast(fd)) {
        int domain = AF_INET;
        if (!candidate(fd, domain)) return false;
        if (int err = prepare(fd, domain)) {
            rc = -1;
            errno = err;
            return true;
        }
    }
    listener* l = acquire(fd);
    if (l == nullptr) return false;
    bool start = false;
    rc = real::fn().listen(fd, backlog);
    int saved = errno;
    if (rc == 0) {
        auto lk = fdtable::guard();
        start = !std::exchange(l->waiting, true);
        if (start) ++l->refs;  // the helper thread's
    }
    if (start) {
        try {
            std::thread{wait_for_peer, l, fd}.detach();
        } catch (...) {
            auto lk = fdtable::guard();
            release(l);  // no thread: no peer will be reported, the socket stays as it is
        }
    }
    done_with(l);
    errno = saved;
    return true;
}

void forget_unused(int fd) noexcept {
    if (!fdtable::listening_fast(fd)) return;
    auto lk = fdtable::guard();
    listener* l = fdtable::listening(fd);
    if (l != nullptr && !l->waiting) fdtable::set_listening(fd, nullptr);
}

bool accept(int fd, sockaddr* sa, socklen_t* len, int flags, int& rc) noexcept {
    if (!fdtable::listening_fast(fd)) return false;
    listener* l = acquire(fd);
    if (l == nullptr) return false;
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    rc = real::fn().accept4(fd, reinterpret_cast<sockaddr*>(&from), &from_len, flags);
    int saved = errno;
    if (rc >= 0 && l->arrived.load(std::memory_order_acquire) &&
        same(from, from_len, l->wake_from, l->wake_from_len)) {
        real::fn().close(rc);  // the wake-up connection: the peer's is ours
        rc = hand_over(*l, flags, sa, len);
        auto lk = fdtable::guard();
        if (l->wake >= 0) real::fn().close(std::exchange(l->wake, -1));
        fdtable::set_listening(fd, nullptr);  // one connection per BIND
    } else if (rc >= 0 && sa != nullptr && len != nullptr) {
        std::memcpy(sa, &from, std::min(*len, from_len));  // someone else's: the kernel's answer
        *len = from_len;
    }
    done_with(l);
    if (rc < 0) errno = saved;
    return true;
}

bool sockname(int fd, sockaddr* sa, socklen_t* len) noexcept {
    if (sa == nullptr || len == nullptr) return false;
    if (!fdtable::listening_fast(fd)) {
        int domain = AF_INET;
        if (!candidate(fd, domain) || !about_to_listen(fd) || prepare(fd, domain) != 0)
            return false;
    }
    auto lk = fdtable::guard();
    listener* l = fdtable::listening(fd);
    if (l == nullptr) return false;
    std::memcpy(sa, &l->announced, std::min(*len, l->announced_len));
    *len = l->announced_len;
    return true;
}

listener* share(listener* l) noexcept {
    ++l->refs;
    return l;
}

void dropped(listener* l) noexcept {
    // The helper thread, if it still waits on the proxy, is woken to end.
    if (l->owner == ::getpid() && !l->cancelled.exchange(true) && l->proxy >= 0 &&
        !l->arrived.load())
        real::fn().shutdown(l->proxy, SHUT_RDWR);
    release(l);
}

void release(listener* l) noexcept {
    if (--l->refs > 0) return;
    if (l->proxy >= 0) real::fn().close(l->proxy);
    if (l->wake >= 0) real::fn().close(l->wake);
    delete l;
}

}  // namespace lp::inbound
