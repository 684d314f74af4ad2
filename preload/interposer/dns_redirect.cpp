#include "interposer/dns_redirect.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "interposer/fdtable.hpp"
#include "runtime/config.hpp"
#include "runtime/real.hpp"

namespace lp::dns_redirect {
namespace {

// Whether `sa` is the responder, 127.0.0.1:port, as an IPv4 or a v4-mapped
// IPv6 address.
bool is_responder(const sockaddr* sa, socklen_t len, int port) noexcept {
    const auto want_port = htons(static_cast<std::uint16_t>(port));
    const auto loopback = htonl(INADDR_LOOPBACK);
    if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        return in->sin_port == want_port && in->sin_addr.s_addr == loopback;
    }
    if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        if (in6->sin6_port != want_port || !IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return false;
        return std::memcmp(&in6->sin6_addr.s6_addr[12], &loopback, 4) == 0;
    }
    return false;
}

void remember(int fd, const void* name, socklen_t len, bool connected) noexcept {
    fdtable::dns_server(fd, static_cast<const sockaddr*>(name), len, connected);
}

}  // namespace

bool to_responder(const policy::decision& d) noexcept {
    return d.rule == policy::rule::dns && config::get().dns_port != 0;
}

int connect(int fd, const sockaddr* sa, socklen_t len) noexcept {
    int rc = real::fn().connect(fd, sa, len);
    if (rc == 0 || errno == EINPROGRESS) {
        int saved = errno;
        remember(fd, sa, len, true);
        errno = saved;
    }
    return rc;
}

ssize_t sendmsg(int fd, const msghdr& msg, int flags) noexcept {
    ssize_t n = real::fn().sendmsg(fd, &msg, flags);
    if (n >= 0) remember(fd, msg.msg_name, msg.msg_namelen, false);
    return n;
}

int sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept {
    int sent = real::fn().sendmmsg(fd, vec, n, flags);
    for (int i = sent - 1; i >= 0; --i) {
        const msghdr& m = vec[i].msg_hdr;
        if (m.msg_name == nullptr || m.msg_namelen == 0) continue;
        if (to_responder(policy::decide_send(static_cast<const sockaddr*>(m.msg_name),
                                             m.msg_namelen, AF_UNSPEC, SOCK_DGRAM))) {
            remember(fd, m.msg_name, m.msg_namelen, false);
            break;
        }
    }
    return sent;
}

bool asked_dns(int fd) noexcept {
    return fdtable::asked_dns(fd);
}

void restore_source(int fd, sockaddr* sa, socklen_t* len, socklen_t capacity) noexcept {
    if (sa == nullptr || len == nullptr || !fdtable::asked_dns(fd)) return;
    int port = config::get().dns_port;
    if (port == 0 || !is_responder(sa, *len < capacity ? *len : capacity, port)) return;
    sockaddr_storage asked;
    socklen_t asked_len = sizeof asked;
    if (!fdtable::dns_server_of(fd, reinterpret_cast<sockaddr*>(&asked), &asked_len)) return;
    std::memcpy(sa, &asked, capacity < asked_len ? capacity : asked_len);
    *len = asked_len;  // like the kernel: the full size, even when truncated
}

void restore_sources(int fd, mmsghdr* vec, int got, const socklen_t* capacity) noexcept {
    for (int i = 0; i < got; ++i) {
        msghdr& m = vec[i].msg_hdr;
        restore_source(fd, static_cast<sockaddr*>(m.msg_name), &m.msg_namelen, capacity[i]);
    }
}

}  // namespace lp::dns_redirect
