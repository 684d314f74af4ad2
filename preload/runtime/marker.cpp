#include "runtime/marker.hpp"

#include <sys/syscall.h>

#include "runtime/real.hpp"

namespace lp::marker {
namespace {

// `v` (a length or flags, 32 bits to the kernel) with the mark above it.
long marked(unsigned v) noexcept {
    return static_cast<long>((std::uint64_t{mark} << 32) | v);
}

}  // namespace

int connect(int fd, const sockaddr* sa, socklen_t len) noexcept {
    return static_cast<int>(real::fn().syscall(SYS_connect, fd, sa, marked(len)));
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* sa,
               socklen_t len) noexcept {
    return real::fn().syscall(SYS_sendto, fd, buf, n, flags, sa, marked(len));
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) noexcept {
    return real::fn().syscall(SYS_sendmsg, fd, msg, marked(static_cast<unsigned>(flags)));
}

int sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept {
    return static_cast<int>(
        real::fn().syscall(SYS_sendmmsg, fd, vec, n, marked(static_cast<unsigned>(flags))));
}

}  // namespace lp::marker
