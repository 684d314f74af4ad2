// The supervisor's DNS responder.
//
// A supervised program's DNS traffic (anything to port 53) is redirected
// here. The responder never asks anyone: A and AAAA queries get the name's
// placeholder address from the shared map (placeholder.hpp), exactly what
// the interposer's getaddrinfo() hands out, so a later connect() to it
// sends the name to the proxy; PTR queries for a placeholder get its name;
// a name that does not exist gets NXDOMAIN and any other query REFUSED.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace lp::supervise::dns {

// Binds the UDP and TCP sockets the responder serves on one port of
// 127.0.0.1 (its threads start with the first admit()). False, with errno,
// when it cannot.
bool start(sockaddr_in& where) noexcept;

// Closes them: the wrapper's, when no supervisor will serve them.
void stop() noexcept;

// The descriptors of those two sockets (-1 before start()).
std::pair<int, int> descriptors() noexcept;

// The responder answers only queries from the local ports of sockets the
// supervisor sent to it (for ten minutes after): it listens on 127.0.0.1,
// where any local user could otherwise ask it which names the program
// looked up (PTR of each placeholder) or fill the map.
void admit(std::uint16_t port) noexcept;

// The response to one DNS message, written to `out`; its length, or 0 when
// the message deserves no answer (too short, or itself a response).
std::size_t answer(std::span<const std::uint8_t> query, std::span<std::uint8_t> out) noexcept;

}  // namespace lp::supervise::dns
