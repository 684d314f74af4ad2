// Names ↔ placeholder addresses.
//
// A name the application resolves is never looked up: it gets a placeholder
// address, and a later connect() to that address sends the name to the proxy.
// Placeholders come from ranges that can never be real destinations:
//   IPv4 240.0.0.0/4 ("reserved for future use", not routable; entry i is 240.0.0.0 + 1 + i)
//   IPv6 100::/64     (RFC 6666 discard-only prefix; entry i is 100:: + 1 + i)
// so a stray placeholder that escapes us goes nowhere.
//
// The map lives in a small file mmapped MAP_SHARED (created by the wrapper,
// path in LEAKPROOF_MAP, read by config.hpp), so every process of one wrapper invocation — across
// fork and exec — sees the same table: `getent hosts x` in one process and a
// connect to its answer in another work together. A process-shared robust
// mutex guards it (a process dying while holding it cannot wedge the others).
// Without LEAKPROOF_MAP the process uses an anonymous shared mapping (shared
// with its forks only).
//
// A name's entry is found from its hash (linear probing), so a lookup
// touches a page or two of the map, not all of it: a process's first lookup
// of a new name costs no more than its later ones.
//
// Bounded: 4096 entries; when full, the least recently used entry is reused,
// but never one used (resolved or connected to) in the last 30 seconds, so a
// placeholder is not handed to a second name while a program is still between
// its lookup and its connect. If every entry is that fresh, resolution fails
// (EAI_AGAIN) rather than aliasing two names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runtime/net.hpp"

namespace lp::placeholder {

inline constexpr std::uint32_t capacity = 4096;

// The placeholder index for `name`, creating an entry if needed. False when
// the map is unusable or full of fresh entries, or the name is unusable.
bool assign(std::string_view name, std::uint32_t& index) noexcept;

// Whether `a` lies in a placeholder range (whether or not it is assigned).
bool in_range(const net::ip& a) noexcept;

// The name behind a placeholder address, copied into `out` (256 bytes).
// False for addresses outside the ranges or unassigned entries.
bool name_of(const net::ip& a, char (&out)[256], std::size_t& len) noexcept;

// The placeholder addresses of entry `index`, in network byte order.
void v4_of(std::uint32_t index, std::uint8_t (&out)[4]) noexcept;
void v6_of(std::uint32_t index, std::uint8_t (&out)[16]) noexcept;

// The clock the 30-second rule reads: CLOCK_MONOTONIC in nanoseconds,
// unless a unit test replaces it to age entries without waiting.
using clock_fn = std::uint64_t (*)() noexcept;
void use_clock(clock_fn now) noexcept;

// For the wrapper: creates (mode 0600, exclusive) and initialises a map file.
// Returns 0 or an errno value.
int create_file(const char* path) noexcept;

}  // namespace lp::placeholder
