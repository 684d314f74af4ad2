// leakproof preload — drives the core handshake on the application's own
// socket: connect it to the first proxy, then CONNECT each next hop over the
// previous one, the last one to the real destination. No SOCKS byte is
// built or parsed here: that is client_handshake's job. This module only
// moves bytes with the real send/recv/poll, bounded by one deadline.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <system_error>

#include "leakproof/handshake.hpp"
#include "policy.hpp"

namespace lp::tunnel {

// Runs the whole connect. `family` is the socket's domain. The socket is put
// in non-blocking mode while we work and its flags are restored before
// returning, whatever happens. A system error comes back in
// std::generic_category (leakproof::to_errno passes it through).
std::error_code establish(int fd, int family, const leakproof::address& target,
                          std::uint16_t port) noexcept;

// The pieces the non-blocking path (async.hpp) shares with establish():

// The first proxy as an address a socket of `family` can reach.
std::error_code first_hop_address(int family, sockaddr_storage& out, socklen_t& len) noexcept;
// The CONNECT request for hop `i` of the chain: the next proxy, or for the
// last hop the program's destination. Views point into the configuration
// and into `target`.
leakproof::request hop_request(std::size_t i, const leakproof::address& target,
                               std::uint16_t port) noexcept;
// The destination the proxy gets for a "proxy" decision (a view into `d`).
leakproof::address target_of(const policy::decision& d) noexcept;
// Logs the outcome of a proxied connect: failures always, successes at -v.
void report(const policy::decision& d, std::error_code ec) noexcept;

}  // namespace lp::tunnel
