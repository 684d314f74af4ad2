// Reverse lookups in Tor mode.
//
// Outside Tor mode a reverse lookup of a real address is simply "not found":
// asking local DNS would tell the resolver which destination the program is
// talking to. Tor, though, can answer it without any local query: its SOCKS5
// extension RESOLVE_PTR (command 0xF1) makes an exit do the PTR lookup. So
// when the program's environment has
//
//     LEAKPROOF_TOR=1      (set by `leakproof --tor`; may be set by hand)
//
// gethostbyaddr(_r) and getnameinfo ask the *first* proxy — Tor itself, not
// whatever it chains to — for addresses that are neither placeholders nor
// local (loopback/unspecified: no exit could know those). The request is
// built and its reply parsed by the core (client_handshake with
// command::resolve_ptr); this module only moves bytes, bounded by
// LEAKPROOF_TIMEOUT_MS like a proxied connect.
#pragma once

#include <cstddef>

#include "runtime/net.hpp"

namespace lp::reverse {

// True when LEAKPROOF_TOR=1 and `a` is an address Tor should be asked about.
bool wanted(const net::ip& a) noexcept;

// Asks the first proxy for the name of `a` (RESOLVE_PTR). On success the
// NUL-terminated name is in `out` and its length in `len`. Failures (proxy
// unreachable, no PTR record, timeout) are logged and return false: the
// caller reports "not found", never falls back to local DNS.
bool resolve_ptr(const net::ip& a, char (&out)[256], std::size_t& len) noexcept;

}  // namespace lp::reverse
