// The contract between the interposer and the supervisor's seccomp filter.
//
// A call the interposer has already judged — a direct connect (loopback,
// --exclude), a connect to the first proxy, a datagram the policy lets out,
// any connect or send on a socket of a local family — must not wait for the
// supervisor, nor depend on the kernel letting the supervisor take the
// program's socket (Yama's ptrace_scope, a container's seccomp profile, a
// non-dumpable process: README, "Not covered"). So the runtime makes these
// calls itself, with a mark in the upper half of one argument the kernel
// reads as a 32-bit int and so ignores: connect's and sendto's address
// length, sendmsg's and sendmmsg's flags. libc and Go pass those
// zero-extended; the filter (supervisor/filter.cpp) lets a call with the
// mark through without a notification. The address and the length the
// kernel reads are the caller's own, unchanged. A program that sets the
// mark on purpose is not stopped: leakproof is no sandbox for hostile
// programs (README, "Static programs").
//
// These are raw system calls, not libc's wrappers: they are no pthread
// cancellation points (a thread cancelled while blocked in one is cancelled
// at its next one).
#pragma once

#include <sys/socket.h>

#include <cstdint>

namespace lp::marker {

// The upper 32 bits of the marked argument.
inline constexpr std::uint32_t mark = 0x1eac9a55;

int connect(int fd, const sockaddr* sa, socklen_t len) noexcept;
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* sa,
               socklen_t len) noexcept;
ssize_t sendmsg(int fd, const msghdr* msg, int flags) noexcept;
int sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept;

}  // namespace lp::marker
