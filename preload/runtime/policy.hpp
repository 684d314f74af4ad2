// The single place that decides what a connect() does.
//
// Rules, in order (connect(), and the destination of sendto/sendmsg/sendmmsg):
//   1. not AF_INET/AF_INET6 (Unix sockets…)                  → direct
//      an AF_INET/AF_INET6 address too short to read          → refuse (EINVAL)
//   2. the first proxy itself (any entry hop of a chain, route.hpp) → direct
//   3. a placeholder address: its name through the proxy, or what the
//      first route for the name says (route.hpp); an unknown
//      placeholder (stale, or from another invocation), or a
//      non-TCP socket                                          → refuse
//   4. port 53, TCP or UDP, any address — loopback included, since
//      127.0.0.53 (systemd-resolved) would send the name on — unless an
//      --exclude entry names port 53 explicitly (ADDR:53)     → refuse
//   5. the first route for the address (route.hpp)            → its target
//      an --exclude CIDR[:PORT]                                → direct
//   6. not SOCK_STREAM: loopback                               → direct
//      anything else (UDP cannot be proxied: it would leak)    → refuse
//   7. loopback (127/8, ::1, 0.0.0.0, ::), unless --proxy-loopback → direct
//   8. everything else                                         → proxy (by IP)
// Port 53 is refused even through the proxy: a program that does its own
// DNS sidesteps the proxy's name resolution, which is what we promise.
// An IPv4 address on a dual-stack AF_INET6 socket arrives v4-mapped; it is
// judged as the IPv4 address it is.
#pragma once

#include <errno.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "runtime/net.hpp"

namespace lp::policy {

enum class verdict { direct, proxy, refuse };

struct decision {
    verdict what = verdict::direct;
    net::endpoint target;  // the destination the program asked for
    bool by_name = false;  // a placeholder: `name` is what the proxy gets
    char name[256] = "";
    std::size_t name_len = 0;
    const char* reason = "";  // for refusals: a one-line why
    std::uint8_t route = 0;   // 1 + the index of the route that matched; 0: none
    int error = EPERM;        // for refusals: the errno the program gets
};

// `sotype` is the socket's SO_TYPE.
decision decide(const sockaddr* sa, socklen_t len, int sotype) noexcept;

}  // namespace lp::policy
