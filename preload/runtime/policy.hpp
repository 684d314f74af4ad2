// The single place that decides what a connect() does.
//
// Rules, in order (connect(), and the destination of sendto/sendmsg/sendmmsg),
// each with the tag a decision carries (`rule`):
//   1. not AF_INET/AF_INET6 (Unix sockets…)                  → direct   not_ip
//      an AF_INET/AF_INET6 address too short to read          → refuse   malformed (EINVAL)
//   2. the first proxy itself (any entry hop of a chain,
//      route.hpp)                                              → direct   first_proxy
//   3. a placeholder address: what the first route for its
//      name says (route.hpp)                                   → its target routed
//      otherwise its name through the proxy                    → proxy    placeholder
//      an unknown placeholder (stale, or from another
//      invocation)                                             → refuse   unknown_placeholder
//      a placeholder on a non-TCP socket                       → refuse   placeholder_non_tcp
//   4. port 53, TCP or UDP, any address — loopback included, since
//      127.0.0.53 (systemd-resolved) would send the name on — unless an
//      --exclude entry names port 53 explicitly (ADDR:53)     → refuse   dns
//   5. the first route for the address (route.hpp)            → its target routed
//      an --exclude CIDR[:PORT]                                → direct   excluded
//   6. not SOCK_STREAM: loopback                               → direct   loopback
//      anything else (UDP cannot be proxied: it would leak)    → refuse   non_tcp
//   7. loopback (127/8, ::1, 0.0.0.0, ::), unless --proxy-loopback → direct loopback
//   8. everything else                                         → proxy    proxied (by IP)
// Port 53 is refused even through the proxy: a program that does its own
// DNS sidesteps the proxy's name resolution, which is what we promise. (The
// supervisor answers a `dns` refusal with its own responder instead.)
// An IPv4 address on a dual-stack AF_INET6 socket arrives v4-mapped; it is
// judged as the IPv4 address it is.
//
// The address of a datagram (decide_send) is first read the way the kernel
// reads it: an AF_UNSPEC address is one of the socket's own family (the
// kernel's rule for IPv4 UDP and raw sockets; an IPv6 raw socket does the
// same, IPv6 UDP takes it as "no address" and sends to the connected peer,
// for which the stricter reading is judged), and one too short to hold such
// an address names no destination (the kernel refuses or ignores it). Both
// enforcement points use it, so they cannot judge one spelling differently.
#pragma once

#include <errno.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "runtime/net.hpp"

namespace lp::policy {

enum class verdict { direct, proxy, refuse };

// Which rule above decided.
enum class rule {
    not_ip,
    malformed,
    first_proxy,
    placeholder,
    unknown_placeholder,
    placeholder_non_tcp,
    dns,
    excluded,
    loopback,
    non_tcp,
    proxied,
    routed,  // a route (route.hpp) decided: `route` says which
};

struct decision {
    verdict what = verdict::direct;
    policy::rule rule = policy::rule::not_ip;
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
// The address of a send on a non-TCP socket of `domain` (SO_DOMAIN), read
// as the kernel reads it (see above), then decided.
decision decide_send(const sockaddr* sa, socklen_t len, int domain, int sotype) noexcept;

}  // namespace lp::policy
