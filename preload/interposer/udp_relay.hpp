// UDP through the first proxy's relay (--udp): SOCKS5 UDP ASSOCIATE.
//
// A UDP socket's first datagram (or connect) to a destination the policy
// sends to the proxy sets up one association for that socket: a TCP
// connection of our own to the first proxy (the control connection: the
// relay lives as long as it does) that asked UDP ASSOCIATE, and the relay's
// address from its reply. From then on, on the program's own socket:
//   - every datagram out goes to the relay with the RFC 1928 header naming
//     its destination (a placeholder's name, for the proxy to resolve);
//   - every datagram in is read from the relay only, unwrapped, and handed
//     over with its real sender as the source address (a name the relay
//     gives is turned into a placeholder);
//   - connect() connects the kernel's socket to the relay (so nothing else
//     is received) and remembers the program's destination, which
//     getpeername() answers and every unaddressed send (write, send, …)
//     goes to.
// Readiness is the kernel's: the relay's datagrams arrive on the socket. A
// datagram that is not the relay's, or that the relay sent malformed or
// fragmented, is dropped, as the kernel drops one with a bad checksum.
// The association ends with the last descriptor of the socket (close,
// close_range, dup copies: fdtable). A relay that refuses or is gone fails
// the send with the mapped errno and one log line; nothing ever leaves
// directly. No SOCKS byte is built or parsed here: the core's
// encode_udp_header / parse_udp_datagram do it.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "runtime/policy.hpp"

namespace lp::udp_relay {

struct association;

// Whether a datagram of `d` (a socket of SO_TYPE `sotype`) goes through the
// relay: --udp, and the policy said "proxy".
bool carries(const policy::decision& d, int sotype) noexcept;

// An addressed send (sendto, sendmsg) of `msg` to the destination `d`.
ssize_t send_to(int fd, const msghdr& msg, int flags, const policy::decision& d) noexcept;
// connect() of a UDP socket to the destination `d` (the program's `sa`).
int connect(int fd, const sockaddr* sa, socklen_t len, const policy::decision& d) noexcept;

// On a relayed socket (fdtable::relayed): an unaddressed send (write,
// writev, send, sendmsg without a name) to the connected destination, and
// every receive. `name`/`name_len` may be null (read, recv).
ssize_t send_connected(int fd, const iovec* iov, std::size_t count, int flags) noexcept;
ssize_t receive(int fd, const iovec* iov, std::size_t count, int flags, sockaddr* name,
                socklen_t* name_len, int* msg_flags) noexcept;
// getpeername() of a relayed, connected socket: true with the destination.
bool peer(int fd, sockaddr* sa, socklen_t* len) noexcept;

// References, under fdtable::guard(): one per descriptor of the socket.
association* share(association* a) noexcept;
void release(association* a) noexcept;

}  // namespace lp::udp_relay
