// Names ↔ placeholder addresses.
//
// A name the application resolves is never looked up: it gets a placeholder
// address, and a later connect() to that address sends the name to the proxy.
// Placeholders come from ranges that can never be real destinations:
//   IPv4 240.0.0.0/4 ("reserved for future use", not routable; entry i is 240.0.0.0 + 1 + i)
//   IPv6 100::/64     (RFC 6666 discard-only prefix; entry i is 100:: + 1 + i)
// so a stray placeholder that escapes us goes nowhere.
//
// The map is an unlinked memory file (memfd_create) mmapped MAP_SHARED, so
// every process of one wrapper invocation — across fork and exec — sees the
// same table: `getent hosts x` in one process and a connect to its answer in
// another work together. It has no name in any file system: the wrapper
// creates it, the supervisor keeps its descriptor for as long as the tree
// lives, and LEAKPROOF_MAP (read by config.hpp) names it as
// /proc/<supervisor>/fd/<n>, a path that exists only while the supervisor
// holds it (the wrapper holds it instead when it waits for the command:
// runtime/environment.hpp). A process that closed every inherited descriptor (closefrom,
// Python's close_fds, a re-exec'ing daemon) still finds the same map there;
// the kernel frees the memory when the last process that holds or maps it
// is gone, however it ended: nothing is left to remove. A process-shared
// robust mutex guards it (a process dying while holding it cannot wedge the
// others). Without LEAKPROOF_MAP, or when the path no longer opens (the
// supervisor is gone), the process uses an anonymous shared mapping (shared
// with its forks only).
//
// The map also holds the proxy chain's credentials, so that they never travel
// in the environment (LEAKPROOF_CREDENTIALS lists the hops that have some).
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

#include "leakproof/proxy.hpp"
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

inline constexpr std::size_t max_credentials = 8;  // config::max_chain

// One hop's credentials, as the wrapper stores them in the map.
struct credentials {
    bool present = false;
    leakproof::short_string user;
    leakproof::short_string password;
};

// For the wrapper: creates and initialises a map holding `creds` (one per
// hop, at most max_credentials), as a close-on-exec descriptor above 2 in
// `fd`. Returns 0 or an errno value.
int create(const credentials* creds, std::size_t count, int& fd) noexcept;

// The credentials stored in the map that opens at `path` (config reads
// them once, apart from the map this process attaches to, which needs the
// settings first). False when there is no such map: none given, or its
// holder is gone.
bool read_credentials(const char* path, credentials (&out)[max_credentials]) noexcept;

}  // namespace lp::placeholder
