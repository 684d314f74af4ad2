// Listening through the proxy (--inbound): SOCKS BIND for a program that
// waits for the server to call back (active-mode FTP).
//
// When a TCP socket of the program listens (or, bound and not yet
// listening, is asked its address, as curl does before listen()) while the
// program has proxied
// connections, the first proxy is asked to listen for it: BIND, on a
// connection of our own, with the peer of the program's most recent
// proxied connection as the expected host (what FTP needs: the server it
// talks to is the one that connects). Then:
//   - getsockname() of the listening socket answers the address the proxy
//     announced, so a PORT/EPRT command carries it;
//   - once the proxy's second reply says the peer connected, a helper
//     thread connects the listening socket to itself (from loopback): its
//     readiness (poll, select, epoll) is then the kernel's own;
//   - accept()/accept4() take that wake-up connection, close it and return
//     our connection to the proxy, which now carries the peer's stream,
//     with the peer's address (getpeername answers it too).
// One connection per BIND; the listening socket is an ordinary one after
// it. A BIND the proxy refuses fails listen() with the mapped errno and
// one log line: the program's own address never goes into a PORT command.
// Without a proxied connection yet (nothing to name), or without
// --inbound, listen() is the kernel's.
#pragma once

#include <sys/socket.h>

#include "runtime/policy.hpp"

namespace lp::inbound {

struct listener;

// A proxied connect succeeded: its destination is the peer a later BIND
// expects.
void note_proxied(const policy::decision& d) noexcept;

// The hooks' work: true when the call was handled here (result in rc).
bool listen(int fd, int backlog, int& rc) noexcept;
bool accept(int fd, sockaddr* sa, socklen_t* len, int flags, int& rc) noexcept;
bool sockname(int fd, sockaddr* sa, socklen_t* len) noexcept;
// connect() on a socket whose BIND getsockname() asked for ahead of a
// listen() that did not come: the BIND is given up.
void forget_unused(int fd) noexcept;

// References, under fdtable::guard(): each descriptor's of the listening
// socket, the helper thread's, an accept() under way. dropped(): a
// descriptor's goes, and a BIND still waiting is given up.
listener* share(listener* l) noexcept;
void release(listener* l) noexcept;
void dropped(listener* l) noexcept;

}  // namespace lp::inbound
