#include "policy.hpp"

#include "config.hpp"
#include "placeholder.hpp"

namespace lp::policy {
namespace {

bool is_first_proxy(const net::endpoint& e) noexcept {
    const auto& cfg = config::get();
    return cfg.chain_len > 0 && cfg.error == nullptr && e.port == cfg.first_hop_ep.port &&
           e.addr.b == cfg.first_hop_ep.addr.b;
}

bool excluded(const net::endpoint& e) noexcept {
    const auto& cfg = config::get();
    for (std::size_t i = 0; i < cfg.exclude_count; ++i)
        if (cfg.excludes[i].contains(e)) return true;
    return false;
}

decision refuse(decision d, const char* why) noexcept {
    d.what = verdict::refuse;
    d.reason = why;
    return d;
}

decision non_stream(decision d) noexcept {
    if (d.target.port == 53) return refuse(d, "DNS over UDP refused (names go to the proxy)");
    if (d.target.addr.is_loopback()) return d;
    return refuse(d, "non-TCP socket refused (only TCP can go through the proxy)");
}

}  // namespace

decision decide(const sockaddr* sa, socklen_t len, int sotype) noexcept {
    decision d;
    if (!net::from_sockaddr(sa, len, d.target)) return d;
    if (is_first_proxy(d.target)) return d;
    if (placeholder::in_range(d.target.addr)) {
        if (sotype != SOCK_STREAM) return refuse(d, "non-TCP socket to a proxied name refused");
        if (!placeholder::name_of(d.target.addr, d.name, d.name_len))
            return refuse(d, "unknown placeholder address (resolved in another session?)");
        d.by_name = true;
        d.what = verdict::proxy;
        return d;
    }
    if (sotype != SOCK_STREAM) return non_stream(d);
    if (excluded(d.target)) return d;
    if (d.target.addr.is_loopback() && !config::get().proxy_loopback) {
        if (d.target.port == 53) return refuse(d, "DNS over TCP to a local resolver refused");
        return d;
    }
    d.what = verdict::proxy;
    return d;
}

}  // namespace lp::policy
