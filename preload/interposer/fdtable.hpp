// What we remember per file descriptor.
//
// Today: the address a proxied socket was connect()ed to, so getpeername()
// answers with it (the placeholder or IP the program asked for) instead of
// the proxy's address. close()/close_range() forget it; dup()/dup2()/
// dup3()/fcntl(F_DUPFD*) copy it.
//
// A fixed table indexed by fd (in .bss: pages are only touched when used);
// descriptors past its end are simply not remembered (getpeername then
// shows the proxy).
#pragma once

#include <sys/socket.h>

namespace lp::fdstate {

void remember_peer(int fd, const sockaddr* sa, socklen_t len) noexcept;
// True and fills (sa, *len) like getpeername() when fd has a remembered peer.
bool peer(int fd, sockaddr* sa, socklen_t* len) noexcept;
void forget(int fd) noexcept;
// Forgets every fd in [first, last] (close_range).
void forget_range(unsigned first, unsigned last) noexcept;
void copy(int from, int to) noexcept;

}  // namespace lp::fdstate
