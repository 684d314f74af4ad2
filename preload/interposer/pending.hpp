// Non-blocking connect() through the proxy.
//
// connect() on a non-blocking socket starts the connection to the first
// proxy and returns -1/EINPROGRESS; a per-process helper thread, with its own
// epoll set, runs the SOCKS handshake on the program's own descriptor. Until
// the proxy's last reply byte has been consumed the socket is "pending" and
// the program must not see it ready:
//   - epoll: the program's registrations of a pending fd are stripped to no
//     events in the kernel (hooks/epoll.cpp) and put back when it finishes;
//     that EPOLL_CTL_MOD re-evaluates readiness, so level-triggered,
//     edge-triggered and EPOLLONESHOT waiters all get their event then.
//   - poll/ppoll/select/pselect (hooks/poll.cpp): a pending fd is left out of
//     the real call and a per-call eventfd, woken by every finished
//     handshake, is added instead.
//   - getsockopt(SO_ERROR), a second connect(), read/write and friends
//     (hooks/io.cpp) answer like the kernel for a connecting socket.
// A failed handshake shuts the socket down (so every readiness API reports
// it) and keeps the mapped errno for SO_ERROR, which reports it once.
//
// All state changes happen under one lock; status() reads a lock-free
// per-fd table so that the hooks cost one atomic load when nothing is
// pending. Descriptors past fdstate's range keep the synchronous path.
// LEAKPROOF_ASYNC=0 (config.hpp) turns the whole feature off (synchronous
// handshakes).
#pragma once

#include <sys/socket.h>

#include <mutex>

#include "runtime/policy.hpp"

namespace lp::async {

// status(): no handshake state, a handshake under way, or (> 0) the errno
// of a failed one that SO_ERROR has not reported yet.
inline constexpr int idle = 0;
inline constexpr int pending = -1;

int status(int fd) noexcept;
// True when some fd of this process is pending: the hooks' fast path.
bool any_pending() noexcept;

// Whether connect() on fd should go asynchronous: the feature is on, fd is
// in range and the socket is non-blocking (`flags`: its F_GETFL).
bool wanted(int fd, int flags) noexcept;
// Starts the proxied connect; false when the helper thread is unavailable
// (the caller then runs the handshake itself). Otherwise rc/errno are
// connect()'s answer: -1/EINPROGRESS, or -1 and the error when even the
// connection to the first proxy failed at once.
bool start(int fd, const sockaddr* sa, socklen_t len, const policy::decision& d, int& rc) noexcept;
// The failure kept for fd, cleared (SO_ERROR semantics); 0 when none.
int take_error(int fd) noexcept;
// Runs fd's handshake as far as it can go now. getsockopt(SO_ERROR) calls
// it: EPOLLHUP/EPOLLERR reach even a stripped epoll registration, and the
// program woken by them must learn the failure, not "in progress".
void settle(int fd) noexcept;
// close(): drops any handshake or kept error of fd.
void forget(int fd) noexcept;

// fork() (interposer/fork.cpp): the lock is held across it, and the child
// forgets the parent's handshakes and helper thread.
void before_fork() noexcept;
void after_fork_parent() noexcept;
void after_fork_child() noexcept;

// The lock every change to handshake or epoll-registration state is made
// under (hooks/epoll.cpp takes it around the program's epoll_ctl).
std::unique_lock<std::mutex> guard() noexcept;

// A poll/select call waiting while some of its fds are pending: `efd` is
// written whenever a handshake finishes. Added and removed under guard().
struct waiter {
    int efd = -1;
    waiter* next = nullptr;
};
void add_waiter(waiter& w) noexcept;
void remove_waiter(waiter& w) noexcept;

}  // namespace lp::async
