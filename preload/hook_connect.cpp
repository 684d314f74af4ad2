// leakproof preload — connect() and getpeername().
//
// connect() asks the policy what to do with the destination; "proxy" runs
// the tunnel on the program's own descriptor (blocking or not: for a
// non-blocking socket the whole handshake happens here, bounded by the
// timeout, and 0 is returned — legal for connect(), and the descriptor keeps
// its flags and options). Failures come back as -1 with the errno of
// leakproof::to_errno; nothing ever falls back to a direct connection.
#include <errno.h>
#include <string.h>

#include "config.hpp"
#include "fdstate.hpp"
#include "hooks.hpp"
#include "leakproof/error.hpp"
#include "log.hpp"
#include "policy.hpp"
#include "real.hpp"
#include "refuse.hpp"
#include "tunnel.hpp"

namespace {

using lp::log::level;

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

leakproof::address target_of(const lp::policy::decision& d) noexcept {
    if (d.by_name) return leakproof::address::host_name({d.name, d.name_len});
    const auto& b = d.target.addr.b;
    if (d.target.addr.is_v4()) return leakproof::address::ipv4({b[12], b[13], b[14], b[15]});
    return leakproof::address::ipv6(b);
}

int proxied_connect(int fd, const sockaddr* sa, socklen_t len,
                    const lp::policy::decision& d) noexcept {
    if (const char* err = lp::config::get().error) {
        auto refused = d;
        refused.reason = err;
        return lp::refuse::by_policy("connect", refused);
    }
    auto ec = lp::tunnel::establish(fd, lp::hook::socket_info(fd, SO_DOMAIN), target_of(d),
                                    d.target.port);
    bool ok = !ec;
    if (!ok || lp::log::enabled(level::verbose)) {
        auto ln = lp::log::start();
        ln << "connect ";
        lp::refuse::put_target(ln, d);
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

int lp::hook::socket_info(int fd, int opt) noexcept {
    int v = -1;
    socklen_t len = sizeof v;
    return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

int lp::hook::connect(int fd, const sockaddr* sa, socklen_t len) noexcept {
    const auto& real = lp::real::fn();
    if (sa == nullptr || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return real.connect(fd, sa, len);
    int type = socket_info(fd, SO_TYPE);
    if (type < 0) return real.connect(fd, sa, len);  // not a socket: let the kernel say so
    // On a SOCK_DGRAM socket this is what keeps a later send()/write() from
    // leaking: those carry no address, so the check must happen here.
    auto d = lp::policy::decide(sa, len, type);
    switch (d.what) {
        case lp::policy::verdict::direct: return real.connect(fd, sa, len);
        case lp::policy::verdict::refuse: return lp::refuse::by_policy("connect", d);
        case lp::policy::verdict::proxy: return proxied_connect(fd, sa, len, d);
    }
    return real.connect(fd, sa, len);
}

LP_EXPORT int connect(int fd, const sockaddr* sa, socklen_t len) {
    return lp::hook::connect(fd, sa, len);
}

LP_EXPORT int getpeername(int fd, sockaddr* sa, socklen_t* len) {
    if (sa != nullptr && lp::fdstate::peer(fd, sa, len)) return 0;
    return lp::real::fn().getpeername(fd, sa, len);
}
