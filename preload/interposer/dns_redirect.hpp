// DNS clients in dynamic programs (dig, host, c-ares, any resolver library
// that sends its own queries): answered by the supervisor's responder, as a
// static program's are.
//
// A connect or a send to port 53 that the policy refuses as DNS goes, when
// the tree has a supervisor with a responder (LEAKPROOF_DNS), to libc
// unmarked: the supervisor's filter stops it, and the supervisor sends it
// to its responder on 127.0.0.1 (supervisor/notification.cpp), which
// answers from the shared placeholder map and asks nobody. The program
// then hears the responder, not the server it asked; resolvers check who
// answered (c-ares drops a datagram from anyone but its server), so the
// interposer remembers the server per socket (fdtable::dns_server) and
// gives every datagram from the responder that server as its source, and
// getpeername() on a connected socket that server as its peer. Without a
// supervisor (--env, no seccomp user notification) the policy's refusal
// stands.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include "runtime/policy.hpp"

namespace lp::dns_redirect {

// Whether `d`, a refusal, is a DNS query the responder answers instead.
bool to_responder(const policy::decision& d) noexcept;

// The call, unmarked (the supervisor's filter stops it); on success the
// server the program asked is remembered for fd.
int connect(int fd, const sockaddr* sa, socklen_t len) noexcept;
ssize_t sendmsg(int fd, const msghdr& msg, int flags) noexcept;
int sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept;

// Whether fd sent a query the responder answered: its receives need
// restore_source().
bool asked_dns(int fd) noexcept;

// After a receive on fd that filled (sa, *len) from a buffer of `capacity`
// bytes: a source that is the responder reads as the server asked.
void restore_source(int fd, sockaddr* sa, socklen_t* len, socklen_t capacity) noexcept;
// The same for the first `got` messages of a recvmmsg() batch, whose
// msg_namelen held the capacities in `capacity` before the call.
void restore_sources(int fd, mmsghdr* vec, int got, const socklen_t* capacity) noexcept;

}  // namespace lp::dns_redirect
