// Routes: which destinations take which chain, go direct, or are refused
// (--route 'PATTERN=TARGET', `route PATTERN TARGET` in the config file),
// first match wins. The wrapper hands them down in LEAKPROOF_ROUTES, one
// PATTERN=TARGET per word:
//
//   PATTERN  *                 everything
//            example.org       that name (any case), optionally :PORT
//            *.lab  .lab       names under lab (not "lab" itself), optionally :PORT
//            10.0.0.0/8:443    an address or network (CIDR[:PORT], [v6]/N:PORT)
//   TARGET   direct | refuse | URL[,URL...] | tor:URL[,URL...]
//
// Names are matched as the program gave them, before any lookup (a
// placeholder keeps its name); addresses match only address patterns. A
// name cannot go direct (that would take a local DNS lookup): refused. A
// .onion name is refused unless its route's target is marked as Tor
// (`tor:`, the explicit form): a proxy that is not Tor would only hand the
// name on to DNS, or fail. The table is parsed once and read without
// allocating; `policy` asks apply() (policy.hpp's rules say where).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "leakproof/proxy.hpp"
#include "runtime/net.hpp"
#include "runtime/path.hpp"

namespace lp::policy {
struct decision;
}

namespace lp::route {

inline constexpr std::size_t max_routes = 32;
inline constexpr std::size_t max_route_hops = 32;
inline constexpr std::size_t max_entries = 48;

enum class pattern_kind : std::uint8_t { any, name, suffix, network };
enum class action : std::uint8_t { chain, direct, refuse };

struct rule {
    pattern_kind kind = pattern_kind::any;
    leakproof::short_string name;  // lower case; a suffix keeps its leading '.'
    net::cidr network;
    std::uint16_t port = 0;  // names: 0 = any
    action what = action::refuse;
    bool tor = false;                           // the target was written tor:URL...
    std::uint8_t first_hop = 0, hop_count = 0;  // in table::hops
    leakproof::short_string pattern;            // as written, for log lines
};

struct table {
    rule rules[max_routes];
    std::size_t count = 0;
    leakproof::proxy hops[max_route_hops];
    std::size_t hop_count = 0;
    // The proxies programs may connect to directly (first hops; every hop
    // outside strict mode): the enforcement points let these through.
    net::endpoint entries[max_entries];
    std::size_t entry_count = 0;
};

// Parses LEAKPROOF_ROUTES into `out`: nullptr, or what is wrong.
const char* parse(std::string_view text, table& out) noexcept;
// One PATTERN into `r` (the wrapper checks --route with it): false if bad.
bool parse_pattern(std::string_view text, rule& r) noexcept;

// Fills out.entries from the default chain and the routes' chains: false
// when an entry hop is not an IP address (the wrapper resolves them).
bool index_entries(table& t, const path::chain& default_chain, path::mode m) noexcept;
bool is_entry(const table& t, const net::endpoint& e) noexcept;

// The first route for a name or an address, or nullptr.
const rule* match_name(const table& t, std::string_view name, std::uint16_t port) noexcept;
const rule* match_address(const table& t, const net::endpoint& e) noexcept;

bool is_onion(std::string_view name) noexcept;

// The chain of a route (its hops in t.hops).
path::chain chain_of(const table& t, const rule& r) noexcept;

// For `policy`, with the configured table: when a route matches `d`'s
// destination (its name when d.by_name), sets d's verdict, reason and
// route and returns true. `stream`: a TCP socket (only those are proxied).
bool apply(policy::decision& d, bool stream) noexcept;
// The chain a "proxy" decision takes: its route's, or the default one.
path::chain chain_for(const policy::decision& d) noexcept;
// The pattern of the route d took ("" for none), for log lines.
std::string_view pattern_of(const policy::decision& d) noexcept;

}  // namespace lp::route
