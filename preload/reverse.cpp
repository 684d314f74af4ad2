#include "reverse.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <string_view>
#include <system_error>

#include "config.hpp"
#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "log.hpp"
#include "real.hpp"
#include "tunnel.hpp"

namespace lp::reverse {
namespace {

using leakproof::action_kind;

std::error_code sys(int e) noexcept {
    return {e, std::generic_category()};
}

// Read once: the environment is fixed for the life of the process as far as
// we are concerned (the wrapper set it before exec), and getenv on every
// lookup would race with a program calling setenv in another thread.
bool tor_mode() noexcept {
    static const bool on = [] {
        const char* v = std::getenv("LEAKPROOF_TOR");
        return v != nullptr && std::strcmp(v, "1") == 0;
    }();
    return on;
}

long now_ms() noexcept {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

// Waits for `events` until the absolute monotonic deadline `end_ms`.
std::error_code wait_for(int fd, short events, long end_ms) noexcept {
    for (;;) {
        long left = end_ms - now_ms();
        if (left <= 0) return sys(ETIMEDOUT);
        pollfd p{fd, events, 0};
        int rc = real::fn().poll(&p, 1, static_cast<int>(left));
        if (rc > 0) return {};
        if (rc < 0 && errno != EINTR) return sys(errno);
    }
}

std::error_code connect_proxy(int fd, int family, long end_ms) noexcept {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (auto ec = tunnel::first_hop_address(family, ss, len)) return ec;
    if (real::fn().connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) return {};
    if (errno != EINPROGRESS && errno != EINTR) return sys(errno);
    if (auto ec = wait_for(fd, POLLOUT, end_ms)) return ec;
    int err = 0;
    socklen_t elen = sizeof err;
    if (real::fn().getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return sys(errno);
    return err ? sys(err) : std::error_code{};
}

// The same loop as tunnel.cpp's CONNECT handshake, on our own private socket
// (so, unlike there, reading past the reply could not hurt anyone).
std::error_code drive(int fd, leakproof::client_handshake& hs, long end_ms) noexcept {
    for (;;) {
        auto act = hs.next();
        if (act.kind == action_kind::done) return {};
        if (act.kind == action_kind::failed) return act.error;
        if (act.kind == action_kind::send) {
            auto bytes = act.bytes;
            while (!bytes.empty()) {
                ssize_t n = real::fn().send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
                if (n > 0) {
                    bytes = bytes.subspan(static_cast<std::size_t>(n));
                } else if (errno == EAGAIN || errno == EINTR) {
                    if (auto ec = wait_for(fd, POLLOUT, end_ms)) return ec;
                } else {
                    return sys(errno);
                }
            }
            hs.sent();
            continue;
        }
        ssize_t n = real::fn().recv(fd, act.space.data(), act.space.size(), 0);
        if (n > 0) {
            hs.received(static_cast<std::size_t>(n));
        } else if (n == 0 || errno == ECONNRESET) {
            hs.closed();
        } else if (errno == EAGAIN || errno == EINTR) {
            if (auto ec = wait_for(fd, POLLIN, end_ms)) return ec;
        } else {
            return sys(errno);
        }
    }
}

// Runs RESOLVE_PTR for `text` (the address as a literal) against the first
// proxy; on success copies the name into `out`.
std::error_code ask(std::string_view text, char (&out)[256], std::size_t& len) noexcept {
    const auto& cfg = config::get();
    if (cfg.error != nullptr || cfg.chain_len == 0) return sys(ENETUNREACH);
    long end_ms = now_ms() + cfg.timeout_ms;
    int family = cfg.first_hop_ep.addr.is_v4() ? AF_INET : AF_INET6;
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return sys(errno);
    auto req = cfg.chain[0].make_request(leakproof::address::parse(text), 0,
                                         leakproof::command::resolve_ptr);
    leakproof::client_handshake hs{req};
    auto ec = connect_proxy(fd, family, end_ms);
    if (!ec) ec = drive(fd, hs, end_ms);
    real::fn().close(fd);
    if (ec) return ec;
    const auto& name = hs.result().bound;
    // Anything but a sane host name (Tor answers with one) is no answer.
    if (name.type != leakproof::address::kind::name || name.name.empty() ||
        name.name.size() >= sizeof out || name.name.find('\0') != std::string_view::npos)
        return leakproof::error::bad_address_type;
    std::memcpy(out, name.name.data(), name.name.size());
    out[name.name.size()] = '\0';
    len = name.name.size();
    return {};
}

const char* describe(std::error_code ec) noexcept {
    if (ec.category() == leakproof::error_category())
        return leakproof::message_of(static_cast<leakproof::error>(ec.value()));
    const char* s = strerrordesc_np(ec.value());
    return s ? s : "unknown error";
}

}  // namespace

// Private ranges are asked too: Tor refuses what it will not look up
// (ClientDNSRejectInternalAddresses), and that refusal is the answer.
bool wanted(const net::ip& a) noexcept {
    return tor_mode() && !a.is_loopback();
}

bool resolve_ptr(const net::ip& a, char (&out)[256], std::size_t& len) noexcept {
    char text[INET6_ADDRSTRLEN];
    if (a.is_v4())
        inet_ntop(AF_INET, a.b.data() + 12, text, sizeof text);
    else
        inet_ntop(AF_INET6, a.b.data(), text, sizeof text);
    auto ec = ask(text, out, len);
    // A missing PTR record is an ordinary answer; only say so at -v. Not
    // reaching the proxy at all is a failure worth reporting by default.
    auto lvl = !ec || ec.category() == leakproof::error_category() ? log::level::verbose
                                                                   : log::level::normal;
    if (log::enabled(lvl)) {
        auto ln = log::start();
        ln << "reverse lookup " << text << " via ";
        ln.proxy(config::get().chain[0]);
        ln << ": ";
        if (ec)
            ln << describe(ec);
        else
            ln << std::string_view{out, len};
        log::emit(lvl, ln);
    }
    return !ec;
}

}  // namespace lp::reverse
