#include "runtime/net.hpp"

#include <arpa/inet.h>

#include <cstddef>
#include <cstring>

namespace lp::net {
namespace {

constexpr std::uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool parse_uint(std::string_view s, unsigned max, unsigned& out) noexcept {
    if (s.empty() || s.size() > 5) return false;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > max) return false;
    out = v;
    return true;
}

}  // namespace

bool ip::is_v4() const noexcept {
    return std::memcmp(b.data(), mapped_prefix, 12) == 0;
}

std::uint32_t ip::v4() const noexcept {
    return static_cast<std::uint32_t>(b[12]) << 24 | static_cast<std::uint32_t>(b[13]) << 16 |
           static_cast<std::uint32_t>(b[14]) << 8 | b[15];
}

bool ip::is_loopback() const noexcept {
    if (is_v4()) return b[12] == 127 || b[12] == 0;
    for (int i = 0; i < 15; ++i)
        if (b[i] != 0) return false;
    return b[15] <= 1;
}

bool from_sockaddr(const sockaddr* sa, socklen_t len, endpoint& out) noexcept {
    if (sa == nullptr) return false;
    if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
        auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        out.addr.b = {};
        std::memcpy(out.addr.b.data(), mapped_prefix, 12);
        std::memcpy(out.addr.b.data() + 12, &in->sin_addr, 4);
        out.port = ntohs(in->sin_port);
        return true;
    }
    // The kernel takes a sockaddr_in6 without its scope id (RFC 2133's
    // 24 bytes): so must we, or such an address would slip past the policy.
    if (sa->sa_family == AF_INET6 && len >= offsetof(sockaddr_in6, sin6_scope_id)) {
        auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        std::memcpy(out.addr.b.data(), &in6->sin6_addr, 16);
        out.port = ntohs(in6->sin6_port);
        return true;
    }
    return false;
}

bool parse_ip(std::string_view text, ip& out) noexcept {
    char tmp[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof tmp) return false;
    std::memcpy(tmp, text.data(), text.size());
    tmp[text.size()] = '\0';
    in_addr a4;
    if (inet_pton(AF_INET, tmp, &a4) == 1) {
        out.b = {};
        std::memcpy(out.b.data(), mapped_prefix, 12);
        std::memcpy(out.b.data() + 12, &a4, 4);
        return true;
    }
    return inet_pton(AF_INET6, tmp, out.b.data()) == 1;
}

bool parse_cidr(std::string_view text, cidr& out) noexcept {
    std::string_view net = text;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return false;
        net = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
            if (port.empty()) return false;
        }
    } else if (auto colon = text.find(':'); colon != std::string_view::npos &&
                                            text.find(':', colon + 1) == std::string_view::npos) {
        net = text.substr(0, colon);  // exactly one colon: IPv4 with a port
        port = text.substr(colon + 1);
        if (port.empty()) return false;
    }
    std::string_view addr = net;
    std::string_view len;
    if (auto slash = net.find('/'); slash != std::string_view::npos) {
        addr = net.substr(0, slash);
        len = net.substr(slash + 1);
    }
    if (!parse_ip(addr, out.base)) return false;
    unsigned max = out.base.is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (!len.empty() && !parse_uint(len, max, prefix)) return false;
    if (len.empty() && net.find('/') != std::string_view::npos) return false;
    out.prefix = static_cast<int>(out.base.is_v4() ? prefix + 96 : prefix);
    unsigned p = 0;
    if (!port.empty() && (!parse_uint(port, 65535, p) || p == 0)) return false;
    out.port = static_cast<std::uint16_t>(p);
    return true;
}

bool cidr::contains(const endpoint& e) const noexcept {
    if (port != 0 && e.port != port) return false;
    int full = prefix / 8;
    if (std::memcmp(base.b.data(), e.addr.b.data(), static_cast<std::size_t>(full)) != 0)
        return false;
    int rest = prefix % 8;
    if (rest == 0) return true;
    auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (base.b[full] & mask) == (e.addr.b[full] & mask);
}

}  // namespace lp::net
