// Everything the interposer remembers about a file descriptor, in one table
// with one bound and one lock.
//
// Per descriptor number:
//   - the connection state of a proxied connect: idle, pending (the helper
//     thread runs its handshake, pending.hpp), reply outstanding (optimistic
//     data: the program may write, the proxy's reply is still to be read)
//     or the errno of a failed one that SO_ERROR has not reported yet;
//   - once established through the proxy: the address the program
//     connect()ed to (getpeername() answers with it, not the proxy's) and
//     what a further connect() must answer (the kernel's 0-then-EISCONN);
//   - the handshake under way (an entry owned by pending.cpp);
//   - the DNS server a query was sent to, which the supervisor's responder
//     answered instead (dns_redirect.hpp);
//   - the UDP relay association of a --udp socket (udp_relay.hpp), one
//     reference per descriptor that names the socket;
//   - the program's epoll registrations of the descriptor (hooks/epoll.cpp
//     strips them while it is pending), and whether it is an epoll set some
//     registration names.
// close()/close_range() forget a descriptor in one call (forget), dup*/
// fcntl(F_DUPFD*) copy what a copy of the descriptor shares (copy).
//
// A fixed table indexed by fd, constinit in .bss: pages are only touched
// when used. Descriptors past its end are not remembered: getpeername()
// then shows the proxy and a non-blocking connect runs synchronously.
//
// Reads of the state and the peer are lock-free (one atomic load on every
// hooked call when nothing is remembered). Every other change is made
// under guard(), which also serialises the helper thread's steps.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>

#include <mutex>
#include <vector>

namespace lp::async {
struct entry;  // a handshake under way (pending.cpp)
}
namespace lp::udp_relay {
struct association;  // a UDP socket's relay (udp_relay.cpp)
}
namespace lp::inbound {
struct listener;  // a listening socket's BIND (inbound.cpp)
}

namespace lp::fdtable {

inline constexpr int max_fd = 16384;

bool in_range(int fd) noexcept;

// ---- connection state ------------------------------------------------------

// status(): no handshake state, a handshake under way, the request sent
// and the socket reported connected but the reply not read yet (optimistic
// data: writes go to the kernel, reads wait), or (> 0) the errno of a
// failed one that SO_ERROR has not reported yet.
inline constexpr int idle = 0;
inline constexpr int pending = -1;
inline constexpr int reply_outstanding = -2;

// Some of the proxy's bytes are still to come on the socket: the program's
// reads and its readiness for reading are held back.
constexpr bool in_handshake(int st) noexcept {
    return st == pending || st == reply_outstanding;
}

int status(int fd) noexcept;
// True when some fd of this process is in_handshake: the hooks' fast path.
bool any_pending() noexcept;
// Under guard(): fd's state becomes `st` (keeps the pending count).
void set_status(int fd, int st) noexcept;
// The failure kept for fd, cleared (SO_ERROR semantics); 0 when none. The
// kernel's own SO_ERROR (ECONNRESET from tunnel::disconnect) is cleared
// with it. `by_connect`: connect() reports it, which makes the socket new
// again; any other call leaves it to answer the next connect() with
// ECONNABORTED, as the kernel's does.
int take_error(int fd, bool by_connect) noexcept;

// ---- established through the proxy ----------------------------------------

// fd's proxied connect succeeded: `sa` is what the program asked for.
// `reported`: connect() itself returned 0 (the kernel then answers a second
// connect() with EISCONN). Not reported (it said EINPROGRESS): the kernel
// answers the first connect() after completion with 0, later ones EISCONN.
void established(int fd, const sockaddr* sa, socklen_t len, bool reported) noexcept;
// An optimistic connect that was reported established failed: fd has no
// peer any more (getpeername() says ENOTCONN, like the kernel's after a reset).
void dissolved(int fd) noexcept;
// True and fills (sa, *len) like getpeername() when fd has a remembered peer.
bool peer(int fd, sockaddr* sa, socklen_t* len) noexcept;
// A connect() on fd when it is established through the proxy, or after its
// failure was reported: true with the kernel's answer in rc/errno (the
// tunnel is never started twice on one stream).
bool reconnect(int fd, int& rc) noexcept;

// ---- DNS answered by the supervisor's responder ----------------------------

// A query of fd's went to the DNS server `sa` and the supervisor sent it to
// its responder (interposer/dns_redirect.hpp). `connected`: by connect(),
// and getpeername() answers `sa`; by sendto(), and it answers as before.
void dns_server(int fd, const sockaddr* sa, socklen_t len, bool connected) noexcept;
// Whether fd asked a DNS server (one atomic load).
bool asked_dns(int fd) noexcept;
// True and fills (sa, *len) like getpeername() when fd asked a DNS server.
bool dns_server_of(int fd, sockaddr* sa, socklen_t* len) noexcept;

// ---- UDP through the first proxy's relay (--udp) --------------------------

// Whether fd's socket sends and receives through a relay (one atomic load:
// the I/O hooks' fast path).
bool relayed(int fd) noexcept;

// ---- the lock and what it guards ------------------------------------------

std::unique_lock<std::mutex> guard() noexcept;

// Under guard(): fd's relay association, or nullptr; and setting it (the
// slot then holds one of its references, which forget() gives back).
udp_relay::association* association(int fd) noexcept;
void set_association(int fd, udp_relay::association* a) noexcept;

// --inbound: a listening socket's BIND at the proxy. listening_fast() is one
// atomic load; the others under guard() (set_listening takes over one
// reference, and gives the old one back).
bool listening_fast(int fd) noexcept;
inbound::listener* listening(int fd) noexcept;
void set_listening(int fd, inbound::listener* l) noexcept;

// Under guard(): the handshake under way on fd, or nullptr.
async::entry* handshake(int fd) noexcept;
void set_handshake(int fd, async::entry* e) noexcept;

// One epoll registration, as the program's epoll_ctl() made it.
struct epoll_record {
    int epfd;
    epoll_event ev;
};
// Under guard(): keeps the program's epoll_ctl(epfd, op, fd, ev) that the
// kernel accepted.
void record_epoll(int epfd, int op, int fd, const epoll_event& ev) noexcept;
// Under guard(): fd's registrations (nullptr when none).
const std::vector<epoll_record>* epoll_records(int fd) noexcept;

// ---- descriptor lifetime ---------------------------------------------------

// close(): everything about fd goes, before the kernel frees the number
// (another thread may get it at once). A pending handshake is dropped
// (pending.cpp), fd's epoll records go, and when fd is an epoll set so do
// the records made in it.
void forget(int fd) noexcept;
// Forgets every fd in [first, last] (close_range).
void forget_range(unsigned first, unsigned last) noexcept;
// dup*(), fcntl(F_DUPFD*): `to` now names the same socket as `from`.
void copy(int from, int to) noexcept;

}  // namespace lp::fdtable
