#include "runtime/policy.hpp"

#include "runtime/config.hpp"
#include "runtime/placeholder.hpp"
#include "runtime/route.hpp"

namespace lp::policy {
namespace {

bool is_first_proxy(const net::endpoint& e) noexcept {
    const auto& cfg = config::get();
    return cfg.chain_len > 0 && cfg.error == nullptr && route::is_entry(cfg.routes, e);
}

// `dns_only`: only entries naming port 53 explicitly count, so that
// excluding a whole LAN does not also let programs query its resolver.
bool excluded(const net::endpoint& e, bool dns_only) noexcept {
    const auto& cfg = config::get();
    for (std::size_t i = 0; i < cfg.exclude_count; ++i) {
        const auto& x = cfg.excludes[i];
        if ((!dns_only || x.port == 53) && x.contains(e)) return true;
    }
    return false;
}

decision refuse(decision d, const char* why, int err = EPERM) noexcept {
    d.what = verdict::refuse;
    d.reason = why;
    d.error = err;
    return d;
}

decision placeholder_target(decision d, int sotype) noexcept {
    if (sotype != SOCK_STREAM) return refuse(d, "non-TCP socket to a proxied name refused");
    if (!placeholder::name_of(d.target.addr, d.name, d.name_len))
        return refuse(d, "unknown placeholder address (resolved in another session?)");
    d.by_name = true;
    d.what = verdict::proxy;
    route::apply(d, true);
    return d;
}

}  // namespace

decision decide(const sockaddr* sa, socklen_t len, int sotype) noexcept {
    decision d;
    if (sa == nullptr || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)) return d;
    // The kernel would reject it too; refusing here keeps us from guessing.
    if (!net::from_sockaddr(sa, len, d.target)) return refuse(d, "malformed address", EINVAL);
    if (is_first_proxy(d.target)) return d;
    if (placeholder::in_range(d.target.addr)) return placeholder_target(d, sotype);
    bool stream = sotype == SOCK_STREAM;
    if (d.target.port == 53 && !excluded(d.target, true))
        return refuse(d, stream ? "DNS over TCP refused (names go to the proxy)"
                                : "DNS over UDP refused (names go to the proxy)");
    if (route::apply(d, stream)) return d;
    if (excluded(d.target, false)) return d;
    if (!stream) {
        if (d.target.addr.is_loopback()) return d;
        return refuse(d, "non-TCP socket refused (only TCP can go through the proxy)");
    }
    if (d.target.addr.is_loopback() && !config::get().proxy_loopback) return d;
    d.what = verdict::proxy;
    return d;
}

}  // namespace lp::policy
