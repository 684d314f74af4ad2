// Which hops carry one connection: the chain mode (--chain) applied to a
// chain, and what to do when a hop is down. The blocking tunnel, the
// non-blocking helper (interposer/pending) and the supervisor all walk a
// chain through this module, so that they choose alike. No allocation, no
// lock: a walk lives on the caller's stack or in its pending entry.
//
//   strict          every hop, in order; any failure fails the connect
//   dynamic         every hop that is up, in order: a hop that refuses, times
//                   out or answers with a failure is left out and the connect
//                   starts again with the rest (at least one hop)
//   random:N        N hops picked at random for each connection, in random
//                   order; a hop that is down is replaced by another one
//   round-robin:N   N consecutive hops, starting one further for each
//                   connection of the process; a hop that is down likewise
// When no hop is left the connect fails: never a direct connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "leakproof/proxy.hpp"

namespace lp::path {

inline constexpr std::size_t max_hops = 8;

enum class mode : std::uint8_t { strict, dynamic, random, round_robin };

struct settings {
    mode how = mode::strict;
    std::size_t count = 1;  // random and round-robin: hops per connection
    // Outside strict mode: how long one hop may take to connect and answer
    // before it counts as down (0: only the connect's whole deadline).
    int hop_timeout_ms = 0;
};

// "strict", "dynamic", "random[:N]", "round-robin[:N]" (N from 1 to 8,
// default 1). False for anything else.
bool parse_mode(std::string_view text, settings& out) noexcept;
// The same text back ("random:2"), for logs and --print-config.
std::string_view mode_name(mode m) noexcept;

// A chain as configured, first hop first.
struct chain {
    const leakproof::proxy* hops = nullptr;
    std::size_t len = 0;
};

// The hops of one attempt, as positions in the chain, first hop first.
struct selection {
    std::uint8_t hop[max_hops]{};
    std::size_t len = 0;
};

// One connection's walk through `c`: next() gives the hops of the next
// attempt, down() says which hop of it failed. At most one attempt per hop
// of the chain, plus one.
class walk {
public:
    walk() noexcept = default;
    walk(const chain& c, const settings& s) noexcept : c_{c}, s_{s} {}
    // The next attempt's hops; false (and `chosen` unchanged) when the chain
    // has none left to offer.
    bool next(selection& chosen) noexcept;
    // The hop at `position` of the last selection is down.
    void down(const selection& last, std::size_t position) noexcept;

private:
    bool pick(selection& out) noexcept;
    bool alive(std::size_t hop) const noexcept { return !(down_ >> hop & 1); }
    std::size_t alive_count() const noexcept;

    chain c_;
    settings s_;
    std::uint32_t down_ = 0;  // a bit per hop of the chain
    std::uint32_t start_ = 0;
    int attempts_ = 0;
};

// After the handshake with the hop at `position` of `sel` failed with `ec`:
// the position of the hop that is down, or -1 when the failure is the
// destination's own answer (another hop would get the same).
//   - the hop could not be reached, hung up, timed out, broke the protocol,
//     refused our credentials, or answered "general failure" / "not
//     allowed"                                         → that hop
//   - a hop asked to reach the next hop answered "refused" / "unreachable"
//                                                      → the next hop
//   - the last hop answered that about the destination → -1
int blame(const selection& sel, std::size_t position, std::error_code ec) noexcept;

}  // namespace lp::path
