// The program's epoll registrations while a proxied connect is pending.
//
// epoll_ctl() keeps every registration the program makes (in fdtable), so
// that a socket's interest can be taken away while its proxied connect is
// pending and given back when it finishes.
//
// Masking goes through the kernel (EPOLL_CTL_MOD to no events) rather than
// filtering epoll_wait's results: an event carries the program's data, not
// the fd, and an edge-triggered or one-shot waiter would lose an event we
// filtered. Giving the interest back with EPOLL_CTL_MOD makes the kernel
// re-check readiness, which delivers a fresh edge and re-arms a one-shot.
//
// A record whose fd or epoll set was closed behind our back (fclose, a raw
// syscall) only makes a later MOD fail with ENOENT or EBADF.
#pragma once

namespace lp::epollreg {

// Under fdtable::guard(): strips or restores every recorded registration of
// fd; writes_only() gives back all but read interest (reply outstanding).
void mask(int fd) noexcept;
void writes_only(int fd) noexcept;
void restore(int fd) noexcept;

}  // namespace lp::epollreg
