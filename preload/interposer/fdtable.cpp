#include "interposer/fdtable.hpp"

#include <netinet/in.h>

#include <atomic>
#include <cstring>

namespace lp::fdstate {
namespace {

constexpr int max_fd = 16384;

struct slot {
    std::atomic<socklen_t> len{0};  // 0 = nothing remembered; written last
    alignas(8) unsigned char addr[sizeof(sockaddr_in6)]{};
};

// constinit: zero pages from .bss, touched only when used. A run-time
// initializer would write all 512 KiB in every process at start.
constinit slot table[max_fd];

bool valid(int fd) noexcept {
    return fd >= 0 && fd < max_fd;
}

}  // namespace

void remember_peer(int fd, const sockaddr* sa, socklen_t len) noexcept {
    if (!valid(fd) || len > sizeof(sockaddr_in6)) return;
    table[fd].len.store(0, std::memory_order_relaxed);
    std::memcpy(table[fd].addr, sa, len);
    table[fd].len.store(len, std::memory_order_release);
}

bool peer(int fd, sockaddr* sa, socklen_t* len) noexcept {
    if (!valid(fd) || len == nullptr) return false;
    socklen_t n = table[fd].len.load(std::memory_order_acquire);
    if (n == 0) return false;
    std::memcpy(sa, table[fd].addr, *len < n ? *len : n);
    *len = n;  // like the kernel: the full size, even when truncated
    return true;
}

void forget(int fd) noexcept {
    if (valid(fd)) table[fd].len.store(0, std::memory_order_release);
}

void forget_range(unsigned first, unsigned last) noexcept {
    // The range is often [3, ~0U]: only our table's part of it matters.
    constexpr unsigned end = max_fd - 1;
    for (unsigned fd = first; fd <= last && fd <= end; ++fd) forget(static_cast<int>(fd));
}

void copy(int from, int to) noexcept {
    if (!valid(from) || !valid(to) || from == to) return;
    socklen_t n = table[from].len.load(std::memory_order_acquire);
    if (n == 0) {
        forget(to);
        return;
    }
    table[to].len.store(0, std::memory_order_relaxed);
    std::memcpy(table[to].addr, table[from].addr, n);
    table[to].len.store(n, std::memory_order_release);
}

}  // namespace lp::fdstate
