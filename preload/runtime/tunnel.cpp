#include "runtime/tunnel.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>

#include "leakproof/error.hpp"
#include "leakproof/proxy.hpp"
#include "runtime/config.hpp"
#include "runtime/log.hpp"
#include "runtime/real.hpp"
#include "runtime/refuse.hpp"
#include "runtime/route.hpp"

namespace lp::tunnel {
namespace {

using leakproof::action_kind;

std::error_code sys(int e) noexcept {
    return {e, std::generic_category()};
}

// Waits until fd is ready for `events`; ETIMEDOUT when the deadline passes.
std::error_code wait_for(int fd, short events, const deadline& dl) noexcept {
    for (;;) {
        pollfd p{fd, events, 0};
        int rc = real::fn().poll(&p, 1, dl.remaining_ms());
        if (rc > 0) return {};
        if (rc == 0) return sys(ETIMEDOUT);
        if (errno != EINTR) return sys(errno);
    }
}

// The first proxy as an address a socket of `family` can reach, in `out`,
// which is zeroed past it.
std::error_code first_hop_address(int family, sockaddr_storage& out) noexcept {
    const auto& cfg = config::get();
    std::memset(&out, 0, sizeof out);
    if (family == AF_INET6) {
        std::memcpy(&out, &cfg.first_hop, sizeof cfg.first_hop);
        return {};
    }
    if (!cfg.first_hop_ep.addr.is_v4()) return sys(EAFNOSUPPORT);  // IPv4 socket, IPv6 proxy
    auto* in = reinterpret_cast<sockaddr_in*>(&out);
    in->sin_family = AF_INET;
    in->sin_port = cfg.first_hop.sin6_port;
    std::memcpy(&in->sin_addr, cfg.first_hop_ep.addr.b.data() + 12, 4);
    return {};
}

std::error_code handshake(int fd, const leakproof::request& req, const deadline& dl) noexcept {
    leakproof::client_handshake hs{req};
    return drive(fd, hs, dl);
}

// One attempt through the hops of `sel`; `at` gets the position that failed.
std::error_code run_attempt(int fd, int family, const path::chain& c, const path::selection& sel,
                            const leakproof::address& target, std::uint16_t port,
                            const deadline& dl, std::size_t& at) noexcept {
    at = 0;
    if (auto ec = connect_hop(fd, family, c.hops[sel.hop[0]])) return ec;
    for (; at < sel.len; ++at)
        if (auto ec = handshake(fd, hop_request(c, sel, at, target, port), dl)) return ec;
    return {};
}

// The whole walk: attempts until one gets through or no hop is left.
std::error_code run_walk(int fd, int family, const policy::decision& d, const deadline& dl,
                         path::selection& sel, std::size_t& at) noexcept {
    auto c = route::chain_for(d);
    const auto& mode = config::get().path;
    path::walk walk{c, mode};
    auto target = target_of(d);
    std::error_code ec = leakproof::error::no_proxy;
    for (bool first = true; walk.next(sel); first = false) {
        if (!first)
            if (auto dc = disconnect(fd)) return dc;
        ec = run_attempt(fd, family, c, sel, target, d.target.port, attempt_deadline(dl, sel), at);
        if (!ec || mode.how == path::mode::strict) return ec;
        int down = path::blame(sel, at, ec);
        if (down < 0) return ec;
        report_down(d, c, sel, static_cast<std::size_t>(down), ec);
        walk.down(sel, static_cast<std::size_t>(down));
        if (dl.remaining_ms() == 0) return ec;
    }
    return ec;
}

void put_hops(log::line& ln, const path::chain& c, const path::selection& sel) noexcept {
    for (std::size_t i = 0; i < sel.len; ++i) {
        if (i > 0) ln << " -> ";
        ln.proxy(c.hops[sel.hop[i]]);
    }
}

void put_route(log::line& ln, const policy::decision& d) noexcept {
    auto pattern = route::pattern_of(d);
    if (!pattern.empty()) ln << " (route " << pattern << ")";
}

// A hop's address for a socket of `family`, in `out`, zeroed past it.
std::error_code hop_address(int family, const leakproof::proxy& hop,
                            sockaddr_storage& out) noexcept {
    std::memset(&out, 0, sizeof out);
    auto host = hop.host.view();
    if (host == "localhost") host = "127.0.0.1";
    net::ip ip;
    if (!net::parse_ip(host, ip)) return leakproof::error::no_proxy;  // the wrapper resolves them
    if (family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&out);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(hop.port);
        std::memcpy(&in6->sin6_addr, ip.b.data(), 16);
        return {};
    }
    if (!ip.is_v4()) return sys(EAFNOSUPPORT);  // IPv4 socket, IPv6 proxy
    auto* in = reinterpret_cast<sockaddr_in*>(&out);
    in->sin_family = AF_INET;
    in->sin_port = htons(hop.port);
    std::memcpy(&in->sin_addr, ip.b.data() + 12, 4);
    return {};
}

std::error_code connect_to(int fd, const sockaddr_storage& ss, int family) noexcept {
    socklen_t len = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (marker::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0) return {};
    // Under way (an interrupted connect goes on too): the first send waits
    // for it, and fails with its error if it fails.
    if (errno == EINPROGRESS || errno == EINTR) return {};
    return sys(errno);
}

}  // namespace

std::error_code connect_first_hop(int fd, int family) noexcept {
    sockaddr_storage ss;
    if (auto ec = first_hop_address(family, ss)) return ec;
    return connect_to(fd, ss, family);
}

std::error_code connect_hop(int fd, int family, const leakproof::proxy& hop) noexcept {
    sockaddr_storage ss;
    if (auto ec = hop_address(family, hop, ss)) return ec;
    return connect_to(fd, ss, family);
}

std::error_code disconnect(int fd) noexcept {
    sockaddr unspec{};
    unspec.sa_family = AF_UNSPEC;
    // Marked: the supervisor's filter lets our own connects through.
    if (marker::connect(fd, &unspec, sizeof unspec) == 0) return {};
    return sys(errno);
}

deadline attempt_deadline(const deadline& whole, const path::selection& sel) noexcept {
    const auto& mode = config::get().path;
    int left = whole.remaining_ms();
    if (mode.how == path::mode::strict || mode.hop_timeout_ms <= 0) return deadline{left};
    long per = static_cast<long>(mode.hop_timeout_ms) * static_cast<long>(sel.len);
    return deadline{per < left ? static_cast<int>(per) : left};
}

namespace {

std::error_code proxy_closed() noexcept {
    return make_error_code(leakproof::error::proxy_closed);
}

step_result send_some(int fd, leakproof::client_handshake& hs, std::span<const std::uint8_t> bytes,
                      step_state& st, std::error_code& ec) noexcept {
    auto rest = bytes.subspan(st.sent);
    ssize_t n = real::fn().send(fd, rest.data(), rest.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        // EAGAIN is also where a connect to the proxy is still under way.
        if (errno == EAGAIN || errno == EINTR) return step_result::want_write;
        ec = hung_up(errno) ? proxy_closed() : sys(errno);
        return step_result::failed;
    }
    st.sent += static_cast<std::size_t>(n);
    if (st.sent == bytes.size()) {
        st.sent = 0;
        st.just_sent = true;
        hs.sent();
    }
    return step_result::more;
}

step_result receive_some(int fd, leakproof::client_handshake& hs, std::span<std::uint8_t> space,
                         step_state& st, std::error_code& ec) noexcept {
    if (st.just_sent) {  // saves a recv that could only say EAGAIN
        st.just_sent = false;
        return step_result::want_read;
    }
    ssize_t n = real::fn().recv(fd, space.data(), space.size(), MSG_DONTWAIT);
    if (n > 0) {
        hs.received(static_cast<std::size_t>(n));
    } else if (n == 0 || hung_up(errno)) {
        hs.closed();  // the core fails it with proxy_closed
    } else if (errno == EAGAIN || errno == EINTR) {
        return step_result::want_read;
    } else {
        ec = sys(errno);
        return step_result::failed;
    }
    return step_result::more;
}

}  // namespace

step_result step(int fd, leakproof::client_handshake& hs, step_state& st,
                 std::error_code& ec) noexcept {
    auto act = hs.next();
    switch (act.kind) {
        case action_kind::send: return send_some(fd, hs, act.bytes, st, ec);
        case action_kind::receive: return receive_some(fd, hs, act.space, st, ec);
        case action_kind::done: return step_result::done;
        case action_kind::failed: ec = act.error; return step_result::failed;
    }
    ec = proxy_closed();
    return step_result::failed;
}

std::error_code drive(int fd, leakproof::client_handshake& hs, const deadline& dl) noexcept {
    step_state st;
    for (;;) {
        std::error_code ec;
        switch (step(fd, hs, st, ec)) {
            case step_result::more: break;
            case step_result::want_read:
                if (auto e = wait_for(fd, POLLIN, dl)) return e;
                break;
            case step_result::want_write:
                if (auto e = wait_for(fd, POLLOUT, dl)) return e;
                break;
            case step_result::done: return {};
            case step_result::failed: return ec;
        }
    }
}

void disconnect(int fd, bool keep_error) noexcept {
    if (disconnect(fd) || keep_error) return;
    int err = 0;
    socklen_t len = sizeof err;
    real::fn().getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
}

const char* describe(std::error_code ec) noexcept {
    if (ec.category() == leakproof::error_category())
        return leakproof::message_of(static_cast<leakproof::error>(ec.value()));
    const char* s = strerrordesc_np(ec.value());
    return s ? s : "unknown error";
}

void put_error(log::line& ln, std::error_code ec, const leakproof::proxy* hop) noexcept {
    char named[700];
    const std::size_t n =
        hop != nullptr ? leakproof::format_not_socks(ec, *hop, named, sizeof named) : 0;
    if (n > 0)
        ln << std::string_view{named, n};
    else
        ln << describe(ec);
}

leakproof::request hop_request(const path::chain& c, const path::selection& sel,
                               std::size_t position, const leakproof::address& target,
                               std::uint16_t port) noexcept {
    const auto& hop = c.hops[sel.hop[position]];
    if (position + 1 == sel.len) return hop.make_request(target, port);
    const auto& next = c.hops[sel.hop[position + 1]];
    return hop.make_request(leakproof::address::parse(next.host.view()), next.port);
}

void report_down(const policy::decision& d, const path::chain& c, const path::selection& sel,
                 std::size_t position, std::error_code ec) noexcept {
    if (!log::enabled(log::level::verbose)) return;
    auto ln = log::start();
    ln << "connect ";
    refuse::put_target(ln, d);
    ln << ": proxy ";
    ln.proxy(c.hops[sel.hop[position]]);
    ln << " is down (" << describe(ec) << "), trying without it";
    log::emit(log::level::verbose, ln);
}

leakproof::address target_of(const policy::decision& d) noexcept {
    if (d.by_name) return leakproof::address::host_name({d.name, d.name_len});
    const auto& b = d.target.addr.b;
    if (d.target.addr.is_v4()) return leakproof::address::ipv4({b[12], b[13], b[14], b[15]});
    return leakproof::address::ipv6(b);
}

void report(const policy::decision& d, const path::selection& used, std::error_code ec,
            std::size_t at) noexcept {
    bool ok = !ec;
    if (ok && !log::enabled(log::level::verbose)) return;
    auto ln = log::start();
    ln << "connect ";
    refuse::put_target(ln, d);
    ln << " via ";
    auto c = route::chain_for(d);
    if (used.len == 0)
        ln << "no proxy";
    else
        put_hops(ln, c, used);
    put_route(ln, d);
    ln << ": ";
    if (ok)
        ln << "ok";
    else
        put_error(ln, ec, at < used.len ? &c.hops[used.hop[at]] : nullptr);
    log::emit(ok ? log::level::verbose : log::level::normal, ln);
}

std::error_code establish(int fd, int family, int flags, const policy::decision& d,
                          path::selection& used, std::size_t& at) noexcept {
    deadline dl{config::get().timeout_ms};
    // Sends and receives never block (MSG_DONTWAIT), but connect() has no
    // such flag: a blocking socket is non-blocking while we work, so that
    // the deadline bounds the connect to the proxy too (even a loopback
    // one waits, for SYN retries, when the proxy's accept queue is full).
    bool switch_mode = !(flags & O_NONBLOCK);
    if (switch_mode && real::fn().fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return sys(errno);
    auto ec = run_walk(fd, family, d, dl, used, at);
    if (ec) disconnect(fd, false);  // like the kernel's: the next connect() starts anew
    if (switch_mode) real::fn().fcntl(fd, F_SETFL, flags);
    return ec;
}

std::error_code establish(int fd, int family, const policy::decision& d, path::selection& used,
                          std::size_t& at) noexcept {
    int flags = real::fn().fcntl(fd, F_GETFL);
    at = 0;
    return flags < 0 ? sys(errno) : establish(fd, family, flags, d, used, at);
}

}  // namespace lp::tunnel
