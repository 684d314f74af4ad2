#include "supervisor/unix_socket.hpp"

#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lp::supervise {
namespace {

// Asks sock_diag for the AF_UNIX socket of inode `ino`: true when it has one.
bool unix_diag_knows(std::uint64_t ino) noexcept {
    int nl = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (nl < 0) return false;
    struct {
        nlmsghdr h;
        unix_diag_req r;
    } q{};
    q.h.nlmsg_len = sizeof q;
    q.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    q.h.nlmsg_flags = NLM_F_REQUEST;
    q.r.sdiag_family = AF_UNIX;
    q.r.udiag_states = ~0U;
    q.r.udiag_ino = static_cast<__u32>(ino);
    q.r.udiag_cookie[0] = q.r.udiag_cookie[1] = ~0U;  // INET_DIAG_NOCOOKIE: any
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    bool found = false;
    if (::sendto(nl, &q, sizeof q, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) ==
        static_cast<ssize_t>(sizeof q)) {
        alignas(nlmsghdr) unsigned char buf[1024];
        ssize_t n = ::recv(nl, buf, sizeof buf, 0);
        auto* h = reinterpret_cast<const nlmsghdr*>(buf);
        found = n >= static_cast<ssize_t>(sizeof *h) && h->nlmsg_type == SOCK_DIAG_BY_FAMILY;
    }
    ::close(nl);
    return found;
}

}  // namespace

std::uint64_t socket_inode(pid_t tid, int fd) noexcept {
    char path[64], link[64];
    std::snprintf(path, sizeof path, "/proc/%d/fd/%d", static_cast<int>(tid), fd);
    ssize_t n = ::readlink(path, link, sizeof link - 1);
    if (n <= 0) return 0;
    link[n] = '\0';
    constexpr char prefix[] = "socket:[";
    if (std::strncmp(link, prefix, sizeof prefix - 1) != 0) return 0;
    return std::strtoull(link + sizeof prefix - 1, nullptr, 10);
}

bool is_unix_socket(pid_t tid, int fd) noexcept {
    std::uint64_t ino = socket_inode(tid, fd);
    return ino != 0 && ino <= 0xffffffffU && unix_diag_knows(ino);
}

}  // namespace lp::supervise
