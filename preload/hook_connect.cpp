// leakproof preload — connect() and getpeername().
//
// connect() asks the policy what to do with the destination; "proxy" runs
// the tunnel on the program's own descriptor (blocking or not: for a
// non-blocking socket the whole handshake happens here, bounded by the
// timeout, and 0 is returned — legal for connect(), and the descriptor keeps
// its flags and options). Failures come back as -1 with the errno of
// leakproof::to_errno; nothing ever falls back to a direct connection.
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "config.hpp"
#include "fdstate.hpp"
#include "leakproof/error.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "real.hpp"
#include "tunnel.hpp"

namespace {

using lp::log::level;

// "name:port", "1.2.3.4:port" or "[v6]:port".
void put_target(lp::log::line& ln, const lp::policy::decision& d) noexcept {
    char host[INET6_ADDRSTRLEN] = "?";
    const auto& a = d.target.addr;
    if (d.by_name) {
        ln << d.name << ":" << d.target.port;
    } else if (a.is_v4()) {
        inet_ntop(AF_INET, a.b.data() + 12, host, sizeof host);
        ln << host << ":" << d.target.port;
    } else {
        inet_ntop(AF_INET6, a.b.data(), host, sizeof host);
        ln << "[" << host << "]:" << d.target.port;
    }
}

void put_chain(lp::log::line& ln) noexcept {
    const auto& cfg = lp::config::get();
    for (std::size_t i = 0; i < cfg.chain_len; ++i) {
        if (i > 0) ln << " -> ";
        ln.proxy(cfg.chain[i]);
    }
}

const char* describe(std::error_code ec) noexcept {
    if (ec.category() == leakproof::error_category())
        return leakproof::message_of(static_cast<leakproof::error>(ec.value()));
    const char* s = strerrordesc_np(ec.value());
    return s ? s : "unknown error";
}

int refuse(const lp::policy::decision& d, const char* why) noexcept {
    auto ln = lp::log::start();
    ln << "connect ";
    put_target(ln, d);
    ln << ": refused: " << why;
    lp::log::emit(level::normal, ln);
    errno = EPERM;  // connect(2): "the connection request failed because of a local firewall rule"
    return -1;
}

leakproof::address target_of(const lp::policy::decision& d) noexcept {
    if (d.by_name) return leakproof::address::host_name({d.name, d.name_len});
    const auto& b = d.target.addr.b;
    if (d.target.addr.is_v4()) return leakproof::address::ipv4({b[12], b[13], b[14], b[15]});
    return leakproof::address::ipv6(b);
}

int socket_info(int fd, int opt) noexcept {
    int v = -1;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

int proxied_connect(int fd, const sockaddr* sa, socklen_t len,
                    const lp::policy::decision& d) noexcept {
    if (const char* err = lp::config::get().error) return refuse(d, err);
    auto ec = lp::tunnel::establish(fd, socket_info(fd, SO_DOMAIN), target_of(d), d.target.port);
    bool ok = !ec;
    if (!ok || lp::log::enabled(level::verbose)) {
        auto ln = lp::log::start();
        ln << "connect ";
        put_target(ln, d);
        ln << " via ";
        put_chain(ln);
        ln << ": " << (ok ? "ok" : describe(ec));
        lp::log::emit(ok ? level::verbose : level::normal, ln);
    }
    if (!ok) {
        errno = leakproof::to_errno(ec);
        return -1;
    }
    lp::fdstate::remember_peer(fd, sa, len);
    return 0;
}

}  // namespace

LP_EXPORT int connect(int fd, const sockaddr* sa, socklen_t len) {
    const auto& real = lp::real::fn();
    if (sa == nullptr || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return real.connect(fd, sa, len);
    int type = socket_info(fd, SO_TYPE);
    if (type < 0) return real.connect(fd, sa, len);  // not a socket: let the kernel say so
    auto d = lp::policy::decide(sa, len, type);
    switch (d.what) {
        case lp::policy::verdict::direct: return real.connect(fd, sa, len);
        case lp::policy::verdict::refuse: return refuse(d, d.reason);
        case lp::policy::verdict::proxy: return proxied_connect(fd, sa, len, d);
    }
    return real.connect(fd, sa, len);
}

LP_EXPORT int getpeername(int fd, sockaddr* sa, socklen_t* len) {
    if (sa != nullptr && lp::fdstate::peer(fd, sa, len)) return 0;
    return lp::real::fn().getpeername(fd, sa, len);
}
