// leakproof preload — the single place that decides what a connect() does.
//
// Rules, in order:
//   1. not AF_INET/AF_INET6 (Unix sockets…)                  → direct
//   2. the first proxy itself                                  → direct
//   3. a placeholder address: its name through the proxy; an unknown
//      placeholder (stale, or from another invocation)         → refuse
//   4. not SOCK_STREAM: port 53 (a resolver of its own)        → refuse
//      loopback                                                → direct
//      anything else (UDP cannot be proxied: it would leak)    → refuse
//   5. an --exclude CIDR[:PORT]                                → direct
//   6. loopback (127/8, ::1, 0.0.0.0, ::), unless --proxy-loopback:
//      TCP port 53 (a local resolver would leak the name)      → refuse
//      otherwise                                               → direct
//   7. everything else                                         → proxy (by IP)
// An IPv4 address on a dual-stack AF_INET6 socket arrives v4-mapped; it is
// judged as the IPv4 address it is.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "net.hpp"

namespace lp::policy {

enum class verdict { direct, proxy, refuse };

struct decision {
    verdict what = verdict::direct;
    net::endpoint target;  // the destination the program asked for
    bool by_name = false;  // a placeholder: `name` is what the proxy gets
    char name[256] = "";
    std::size_t name_len = 0;
    const char* reason = "";  // for refusals: a one-line why
};

// `sotype` is the socket's SO_TYPE.
decision decide(const sockaddr* sa, socklen_t len, int sotype) noexcept;

}  // namespace lp::policy
