// leakproof preload — drives the core handshake on the application's own
// socket: connect it to the first proxy, then CONNECT each next hop over the
// previous one, the last one to the real destination. No SOCKS byte is
// built or parsed here: that is client_handshake's job. This module only
// moves bytes with the real send/recv/poll, bounded by one deadline.
#pragma once

#include <system_error>

#include "leakproof/handshake.hpp"

namespace lp::tunnel {

// Runs the whole connect. `family` is the socket's domain. The socket is put
// in non-blocking mode while we work and its flags are restored before
// returning, whatever happens. A system error comes back in
// std::generic_category (leakproof::to_errno passes it through).
std::error_code establish(int fd, int family, const leakproof::address& target,
                          std::uint16_t port) noexcept;

}  // namespace lp::tunnel
