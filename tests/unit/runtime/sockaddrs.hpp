// Socket addresses for the runtime's tests, written as text.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace lp::unit {

struct address {
    sockaddr_storage ss{};
    socklen_t len = 0;
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

inline address v4(const char* ip, std::uint16_t port) {
    address a;
    auto* in = reinterpret_cast<sockaddr_in*>(&a.ss);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &in->sin_addr) != 1) throw std::invalid_argument{ip};
    a.len = sizeof *in;
    return a;
}

inline address v6(const char* ip, std::uint16_t port) {
    address a;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip, &in6->sin6_addr) != 1) throw std::invalid_argument{ip};
    a.len = sizeof *in6;
    return a;
}

// The same bytes with another family (AF_UNSPEC) or length.
inline address with_family(address a, sa_family_t family) {
    a.ss.ss_family = family;
    return a;
}

inline address with_len(address a, socklen_t len) {
    a.len = len;
    return a;
}

inline address unix_path(const char* path) {
    address a;
    auto* un = reinterpret_cast<sockaddr_un*>(&a.ss);
    un->sun_family = AF_UNIX;
    std::strncpy(un->sun_path, path, sizeof un->sun_path - 1);
    a.len = sizeof *un;
    return a;
}

}  // namespace lp::unit
