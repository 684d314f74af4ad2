#include "interposer/reverse.hpp"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>
#include <system_error>

#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "runtime/config.hpp"
#include "runtime/log.hpp"
#include "runtime/real.hpp"
#include "runtime/tunnel.hpp"

namespace lp::reverse {
namespace {

std::error_code sys(int e) noexcept {
    return {e, std::generic_category()};
}

// Runs RESOLVE_PTR for `text` (the address as a literal) against the first
// proxy; on success copies the name into `out`.
std::error_code ask(std::string_view text, char (&out)[256], std::size_t& len) noexcept {
    const auto& cfg = config::get();
    if (cfg.error != nullptr || cfg.chain_len == 0) return sys(ENETUNREACH);
    tunnel::deadline dl{cfg.timeout_ms};
    int family = cfg.first_hop_ep.addr.is_v4() ? AF_INET : AF_INET6;
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return sys(errno);
    auto req = cfg.chain[0].make_request(leakproof::address::parse(text), 0,
                                         leakproof::command::resolve_ptr);
    leakproof::client_handshake hs{req};
    // The same connect and handshake loop as a proxied connect, on a private
    // socket of ours.
    auto ec = tunnel::connect_first_hop(fd, family);
    if (!ec) ec = tunnel::drive(fd, hs, dl);
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

}  // namespace

// Private ranges are asked too: Tor refuses what it will not look up
// (ClientDNSRejectInternalAddresses), and that refusal is the answer.
bool wanted(const net::ip& a) noexcept {
    return config::get().tor && !a.is_loopback();
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
            tunnel::put_error(ln, ec, &config::get().chain[0]);
        else
            ln << std::string_view{out, len};
        log::emit(lvl, ln);
    }
    return !ec;
}

}  // namespace lp::reverse
