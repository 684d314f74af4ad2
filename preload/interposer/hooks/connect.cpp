// connect() and getpeername().
//
// connect() asks the policy what to do with the destination; "proxy" runs
// the tunnel on the program's own descriptor. A blocking socket runs the
// whole handshake here, bounded by the timeout. A non-blocking one gets
// -1/EINPROGRESS at once and the helper thread runs the handshake (see
// pending.hpp and doc/async-connect.md); when that is off or impossible it is
// run here too and 0 is returned. Failures come back as -1 with the errno of
// leakproof::to_errno; nothing ever falls back to a direct connection.
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "interposer/dns_redirect.hpp"
#include "interposer/fdtable.hpp"
#include "interposer/hooks.hpp"
#include "interposer/inbound.hpp"
#include "interposer/pending.hpp"
#include "interposer/udp_relay.hpp"
#include "leakproof/error.hpp"
#include "runtime/config.hpp"
#include "runtime/marker.hpp"
#include "runtime/policy.hpp"
#include "runtime/real.hpp"
#include "runtime/refuse.hpp"
#include "runtime/tunnel.hpp"

namespace {

// A non-blocking socket whose handshake the helper thread can run: connect()
// then returns -1/EINPROGRESS like the kernel would (pending.hpp).
bool start_async(int fd, int flags, const sockaddr* sa, socklen_t len,
                 const lp::policy::decision& d, int& rc) noexcept {
    if (!lp::async::wanted(fd, flags)) return false;
    return lp::async::start(fd, sa, len, d, rc);
}

// A blocking socket whose chain reads optimistic data: the helper thread
// runs the handshake while this call waits until the request is out (or the
// handshake has ended), so that the program's first bytes ride with it.
// The socket is non-blocking meanwhile: the helper's connects to the proxy
// (a next attempt, too) must never block it.
bool connect_for_early_data(int fd, int flags, const sockaddr* sa, socklen_t len,
                            const lp::policy::decision& d, int& rc) noexcept {
    const auto& real = lp::real::fn();
    if (!lp::async::wanted_blocking(fd, d) || real.fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0)
        return false;
    bool started = lp::async::start(fd, sa, len, d, rc, true);
    if (started && errno == EINPROGRESS) {
        lp::hook::wait_until_settled(fd, lp::hook::until_stage::connected);
        int err = lp::fdtable::take_error(fd, true);  // 0 unless the handshake failed
        rc = err == 0 ? 0 : -1;
        errno = err;
    }
    int saved = errno;
    real.fcntl(fd, F_SETFL, flags);
    errno = saved;
    return started;
}

int proxied_connect(int fd, const sockaddr* sa, socklen_t len, const lp::policy::decision& d,
                    bool may_defer) noexcept {
    if (const char* err = lp::config::get().error) {
        auto refused = d;
        refused.reason = err;
        return lp::refuse::by_policy("connect", refused);
    }
    int flags = lp::real::fn().fcntl(fd, F_GETFL);
    if (int rc = 0; flags >= 0 && may_defer && start_async(fd, flags, sa, len, d, rc)) return rc;
    if (int rc = 0; flags >= 0 && may_defer && !(flags & O_NONBLOCK) &&
                    connect_for_early_data(fd, flags, sa, len, d, rc))
        return rc;
    // A failure to read the flags is reported like any other: one log line.
    lp::path::selection used;
    std::size_t at = 0;
    auto ec = flags < 0 ? std::error_code{errno, std::generic_category()}
                        : lp::tunnel::establish(fd, sa->sa_family, flags, d, used, at);
    lp::tunnel::report(d, used, ec, at);
    if (ec) {
        errno = leakproof::to_errno(ec);
        return -1;
    }
    lp::fdtable::established(fd, sa, len, true);  // a second connect() gets EISCONN
    lp::inbound::note_proxied(d);
    return 0;
}

// A second connect() on a socket whose proxied connect is under way, has
// failed or is established answers like the kernel: EALREADY, the failure
// (reported once), or 0-then-EISCONN. It never reaches the policy: the
// tunnel's own connect to the proxy would start a second SOCKS handshake on
// the established stream (the kernel says 0 to a socket whose non-blocking
// connect completed, and we never collected ours).
bool answered_by_table(int fd, int& rc) noexcept {
    int st = lp::fdtable::status(fd);
    if (st == lp::fdtable::idle || st == lp::fdtable::reply_outstanding)
        return lp::fdtable::reconnect(fd, rc);
    errno = st == lp::fdtable::pending ? EALREADY : lp::fdtable::take_error(fd, true);
    if (errno == 0) return false;  // another thread took the error first
    rc = -1;
    return true;
}

}  // namespace

int lp::hook::socket_info(int fd, int opt) noexcept {
    int v = -1;
    socklen_t len = sizeof v;
    return lp::real::fn().getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

// Every connect that reaches the kernel from here has been judged (or is
// of a family that cannot reach the network): marked, it passes the
// supervisor's filter without a notification (runtime/marker.hpp).
int lp::hook::connect(int fd, const sockaddr* sa, socklen_t len, bool may_defer) noexcept {
    if (sa == nullptr || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return lp::marker::connect(fd, sa, len);
    if (int rc = 0; answered_by_table(fd, rc)) return rc;
    lp::inbound::forget_unused(fd);
    int type = socket_info(fd, SO_TYPE);
    if (type < 0) return lp::marker::connect(fd, sa, len);  // not a socket: let the kernel say so
    // On a SOCK_DGRAM socket this is what keeps a later send()/write() from
    // leaking: those carry no address, so the check must happen here.
    auto d = lp::policy::decide(sa, len, type);
    switch (d.what) {
        case lp::policy::verdict::direct:
            if (lp::fdtable::relayed(fd)) {
                // Its datagrams are wrapped for the relay from now on: a
                // direct peer would get them wrapped (udp_relay.hpp).
                d.what = lp::policy::verdict::refuse;
                d.reason = "this UDP socket sends through the proxy's relay (--udp)";
                return lp::refuse::by_policy("connect", d);
            }
            return lp::marker::connect(fd, sa, len);
        case lp::policy::verdict::refuse:
            if (lp::dns_redirect::to_responder(d)) return lp::dns_redirect::connect(fd, sa, len);
            return lp::refuse::by_policy("connect", d);
        case lp::policy::verdict::proxy:
            if (lp::udp_relay::carries(d, type)) return lp::udp_relay::connect(fd, sa, len, d);
            if (type != SOCK_STREAM) return lp::refuse::by_policy("connect", d);
            return proxied_connect(fd, sa, len, d, may_defer);
    }
    return lp::marker::connect(fd, sa, len);
}

LP_EXPORT int connect(int fd, const sockaddr* sa, socklen_t len) {
    return lp::hook::connect(fd, sa, len);
}

LP_EXPORT int getpeername(int fd, sockaddr* sa, socklen_t* len) {
    if (lp::fdtable::status(fd) == lp::fdtable::pending) {
        errno = ENOTCONN;  // what the kernel says while a connect is in progress
        return -1;
    }
    if (sa != nullptr && lp::fdtable::peer(fd, sa, len)) return 0;
    if (sa != nullptr && lp::udp_relay::peer(fd, sa, len)) return 0;
    return lp::real::fn().getpeername(fd, sa, len);
}
