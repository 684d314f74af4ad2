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
// Optimistic data (the last hop's ?optimistic=1): once the whole request is
// written the socket is reported connected (fdtable::reply_outstanding):
// writable, SO_ERROR 0, its registrations back without read interest, and
// the program's writes go behind the request. Its reads wait until the
// helper has consumed the reply; a failure reply then becomes the errno of
// the next read or write and of SO_ERROR, as above. A blocking connect()
// goes the same way (wanted_blocking): it waits here until the request is
// out and returns 0.
//
// The socket's state (pending, a kept errno, the handshake entry, the epoll
// registrations) lives in fdtable and every change to it is made under
// fdtable::guard(), which the helper thread holds while it steps; the hooks
// read the state lock-free, one atomic load when nothing is pending.
// Descriptors past fdtable's range keep the synchronous path.
// LEAKPROOF_ASYNC=0 turns the whole feature off (synchronous handshakes).
#pragma once

#include <sys/socket.h>

#include "runtime/policy.hpp"

namespace lp::async {

// Whether connect() on fd should go asynchronous: the feature is on, fd is
// in range and the socket is non-blocking (`flags`: its F_GETFL).
bool wanted(int fd, int flags) noexcept;
// Whether a blocking connect() on fd should be run by the helper thread
// too: some hop of its chain reads optimistic data, so the call may return
// 0 once the request is out and leave the reply to the helper.
bool wanted_blocking(int fd, const policy::decision& d) noexcept;
// Starts the proxied connect; false when the helper thread is unavailable
// (the caller then runs the handshake itself). Otherwise rc/errno are
// connect()'s answer: -1/EINPROGRESS, or -1 and the error when even the
// connection to the first proxy failed at once. `caller_waits`: a blocking
// connect() waits for the socket to be connected and answers 0 itself (a
// second connect() then says EISCONN).
bool start(int fd, const sockaddr* sa, socklen_t len, const policy::decision& d, int& rc,
           bool caller_waits = false) noexcept;
// Runs fd's handshake as far as it can go now. getsockopt(SO_ERROR) calls
// it: EPOLLHUP/EPOLLERR reach even a stripped epoll registration, and the
// program woken by them must learn the failure, not "in progress".
void settle(int fd) noexcept;
// shutdown() while pending: the kernel drops a connecting socket's connect
// (unconnected, SO_ERROR ECONNRESET) and so do we: 0, or -2 when fd has no
// handshake (any more).
int abandon(int fd) noexcept;
// Under fdtable::guard(), from fdtable: `copy` (dup*, F_DUPFD) names the
// socket of handshake `e`, and is held back and finished with it; false
// when e has no room for another copy (it is then not remembered).
struct entry;
bool share(entry* e, int copy) noexcept;
// Under fdtable::guard(), from fdtable::forget (close): `fd` no longer
// names e's socket. The handshake goes on while a copy does.
void release(entry* e, int fd) noexcept;
// Under fdtable::guard(): the handshake `e` is dropped, its socket gone.
void discard(entry* e) noexcept;

// fork() (interposer/fork.cpp): fdtable::guard() is held across it, and the
// child forgets the parent's handshakes and helper thread.
void before_fork() noexcept;
void after_fork_parent() noexcept;
void after_fork_child() noexcept;

// A poll/select call waiting while some of its fds are pending: `efd` is
// written whenever a handshake finishes. Added and removed under
// fdtable::guard().
struct waiter {
    int efd = -1;
    waiter* next = nullptr;
};
void add_waiter(waiter& w) noexcept;
void remove_waiter(waiter& w) noexcept;

}  // namespace lp::async
