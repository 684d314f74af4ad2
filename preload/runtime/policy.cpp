#include "runtime/policy.hpp"

#include <netinet/in.h>

#include <cstring>

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

decision direct(decision d, rule r) noexcept {
    d.what = verdict::direct;
    d.rule = r;
    return d;
}

decision proxy(decision d, rule r) noexcept {
    d.what = verdict::proxy;
    d.rule = r;
    return d;
}

decision refuse(decision d, rule r, const char* why, int err = EPERM) noexcept {
    d.what = verdict::refuse;
    d.rule = r;
    d.reason = why;
    d.error = err;
    return d;
}

decision placeholder_target(decision d, int sotype) noexcept {
    bool relayed = sotype == SOCK_DGRAM && config::get().udp;  // --udp: the first proxy's relay
    if (sotype != SOCK_STREAM && !relayed)
        return refuse(d, rule::placeholder_non_tcp, "non-TCP socket to a proxied name refused");
    if (!placeholder::name_of(d.target.addr, d.name, d.name_len))
        return refuse(d, rule::unknown_placeholder,
                      "unknown placeholder address (resolved in another session?)");
    d.by_name = true;
    if (relayed) return proxy(d, rule::placeholder);
    if (route::apply(d, true)) return d;
    return proxy(d, rule::placeholder);
}

// The shortest address of `domain` the kernel reads a destination from.
socklen_t min_len(int domain) noexcept {
    return domain == AF_INET ? sizeof(sockaddr_in) : offsetof(sockaddr_in6, sin6_scope_id);
}

}  // namespace

decision decide(const sockaddr* sa, socklen_t len, int sotype) noexcept {
    decision d;
    if (sa == nullptr || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return direct(d, rule::not_ip);
    // The kernel would reject it too; refusing here keeps us from guessing.
    if (!net::from_sockaddr(sa, len, d.target))
        return refuse(d, rule::malformed, "malformed address", EINVAL);
    if (is_first_proxy(d.target)) return direct(d, rule::first_proxy);
    if (placeholder::in_range(d.target.addr)) return placeholder_target(d, sotype);
    bool stream = sotype == SOCK_STREAM;
    if (d.target.port == 53 && !excluded(d.target, true))
        return refuse(d, rule::dns,
                      stream ? "DNS over TCP refused (names go to the proxy)"
                             : "DNS over UDP refused (names go to the proxy)");
    if (route::apply(d, stream)) return d;
    if (excluded(d.target, false)) return direct(d, rule::excluded);
    if (!stream) {
        const auto& cfg = config::get();
        // --udp: UDP through the first proxy's relay (interposer/udp_relay.hpp).
        bool relayed = cfg.udp && sotype == SOCK_DGRAM;
        if (d.target.addr.is_loopback() && !(relayed && cfg.proxy_loopback))
            return direct(d, rule::loopback);
        if (relayed) return proxy(d, rule::proxied);
        return refuse(d, rule::non_tcp,
                      "non-TCP socket refused (only TCP can go through the proxy; --udp relays "
                      "datagrams)");
    }
    if (d.target.addr.is_loopback() && !config::get().proxy_loopback)
        return direct(d, rule::loopback);
    return proxy(d, rule::proxied);
}

decision decide_send(const sockaddr* sa, socklen_t len, int domain, int sotype) noexcept {
    bool ip_socket = domain == AF_INET || domain == AF_INET6;
    if (sa == nullptr || sa->sa_family != AF_UNSPEC || !ip_socket) return decide(sa, len, sotype);
    if (len < min_len(domain)) return direct(decision{}, rule::not_ip);
    sockaddr_storage as_read;
    socklen_t n = len < sizeof as_read ? len : sizeof as_read;
    std::memcpy(&as_read, sa, n);
    as_read.ss_family = static_cast<sa_family_t>(domain);
    return decide(reinterpret_cast<const sockaddr*>(&as_read), n, sotype);
}

}  // namespace lp::policy
