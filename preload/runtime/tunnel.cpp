#include "runtime/tunnel.hpp"

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

std::error_code run_chain(int fd, int family, const leakproof::address& target, std::uint16_t port,
                          const deadline& dl, std::size_t& hop) noexcept {
    const auto& cfg = config::get();
    hop = 0;
    if (auto ec = connect_first_hop(fd, family)) return ec;
    for (; hop < cfg.chain_len; ++hop)
        if (auto ec = handshake(fd, hop_request(hop, target, port), dl)) return ec;
    return {};
}

void put_chain(log::line& ln) noexcept {
    const auto& cfg = config::get();
    for (std::size_t i = 0; i < cfg.chain_len; ++i) {
        if (i > 0) ln << " -> ";
        ln.proxy(cfg.chain[i]);
    }
}

}  // namespace

std::error_code connect_first_hop(int fd, int family) noexcept {
    sockaddr_storage ss;
    if (auto ec = first_hop_address(family, ss)) return ec;
    socklen_t len = family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (marker::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return {};
    // Under way (an interrupted connect goes on too): the first send waits
    // for it, and fails with its error if it fails.
    if (errno == EINPROGRESS || errno == EINTR) return {};
    return sys(errno);
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
    sockaddr_storage unspec{};
    unspec.ss_family = AF_UNSPEC;
    // Marked: the supervisor's filter lets our own connects through.
    marker::connect(fd, reinterpret_cast<sockaddr*>(&unspec), sizeof unspec);
    if (keep_error) return;
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

void put_error(log::line& ln, std::error_code ec, std::size_t hop) noexcept {
    const auto& cfg = config::get();
    char named[700];
    const std::size_t n = hop < cfg.chain_len
                              ? leakproof::format_not_socks(ec, cfg.chain[hop], named, sizeof named)
                              : 0;
    if (n > 0)
        ln << std::string_view{named, n};
    else
        ln << describe(ec);
}

leakproof::request hop_request(std::size_t i, const leakproof::address& target,
                               std::uint16_t port) noexcept {
    const auto& cfg = config::get();
    bool last = i + 1 == cfg.chain_len;
    auto hop = last ? target : leakproof::address::parse(cfg.chain[i + 1].host.view());
    return cfg.chain[i].make_request(hop, last ? port : cfg.chain[i + 1].port);
}

leakproof::address target_of(const policy::decision& d) noexcept {
    if (d.by_name) return leakproof::address::host_name({d.name, d.name_len});
    const auto& b = d.target.addr.b;
    if (d.target.addr.is_v4()) return leakproof::address::ipv4({b[12], b[13], b[14], b[15]});
    return leakproof::address::ipv6(b);
}

void report(const policy::decision& d, std::error_code ec, std::size_t hop) noexcept {
    bool ok = !ec;
    if (ok && !log::enabled(log::level::verbose)) return;
    auto ln = log::start();
    ln << "connect ";
    refuse::put_target(ln, d);
    ln << " via ";
    put_chain(ln);
    ln << ": ";
    if (ok)
        ln << "ok";
    else
        put_error(ln, ec, hop);
    log::emit(ok ? log::level::verbose : log::level::normal, ln);
}

std::error_code establish(int fd, int family, int flags, const leakproof::address& target,
                          std::uint16_t port, std::size_t& hop) noexcept {
    deadline dl{config::get().timeout_ms};
    // Sends and receives never block (MSG_DONTWAIT), but connect() has no
    // such flag: a blocking socket is non-blocking while we work, so that
    // the deadline bounds the connect to the proxy too (even a loopback
    // one waits, for SYN retries, when the proxy's accept queue is full).
    bool switch_mode = !(flags & O_NONBLOCK);
    if (switch_mode && real::fn().fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return sys(errno);
    auto ec = run_chain(fd, family, target, port, dl, hop);
    if (ec) disconnect(fd, false);  // like the kernel's: the next connect() starts anew
    if (switch_mode) real::fn().fcntl(fd, F_SETFL, flags);
    return ec;
}

std::error_code establish(int fd, int family, const leakproof::address& target, std::uint16_t port,
                          std::size_t& hop) noexcept {
    int flags = real::fn().fcntl(fd, F_GETFL);
    hop = 0;
    return flags < 0 ? sys(errno) : establish(fd, family, flags, target, port, hop);
}

}  // namespace lp::tunnel
