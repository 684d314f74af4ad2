// Network addresses: CIDR exclusions and sockaddr helpers.
// Shared by the interposer (matching) and the wrapper (validating --exclude).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <string_view>

namespace lp::net {

// An IPv4 address is kept as its v4-mapped IPv6 form, so one comparison
// covers AF_INET sockets and dual-stack AF_INET6 sockets alike.
struct ip {
    std::array<std::uint8_t, 16> b{};
    bool is_v4() const noexcept;
    bool is_loopback() const noexcept;  // 127/8, ::1, and 0/8, :: (connect treats them as local)
    std::uint32_t v4() const noexcept;  // host byte order; only when is_v4()
};

struct endpoint {
    ip addr;
    std::uint16_t port = 0;  // host byte order
};

// AF_INET / AF_INET6 only; false for anything else or a short length.
bool from_sockaddr(const sockaddr* sa, socklen_t len, endpoint& out) noexcept;
bool parse_ip(std::string_view text, ip& out) noexcept;

// CIDR[:PORT]: 10.0.0.0/8, 192.168.1.5:8080, ::1, [fd00::/8]:443. Port 0 = any.
struct cidr {
    ip base;
    int prefix = 0;  // over the 128-bit (mapped) form
    std::uint16_t port = 0;
    bool contains(const endpoint& e) const noexcept;
};

bool parse_cidr(std::string_view text, cidr& out) noexcept;

}  // namespace lp::net
