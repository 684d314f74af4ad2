// The configuration: every LEAKPROOF_* setting (runtime/environment.hpp
// names them all), read from the environment the wrapper prepared by this
// module alone, parsed once (pthread_once) on the first call that needs it,
// then read-only: no lock and no allocation on the connect path. A bad
// value does not fall back to a guess: `error` says what, and every proxied
// connect fails closed with it.
#pragma once

#include <netinet/in.h>

#include <cstddef>

#include "leakproof/proxy.hpp"
#include "runtime/net.hpp"
#include "runtime/path.hpp"
#include "runtime/route.hpp"

namespace lp::config {

inline constexpr std::size_t max_chain = 8;
inline constexpr std::size_t max_excludes = 32;

struct settings {
    leakproof::proxy chain[max_chain];
    std::size_t chain_len = 0;
    sockaddr_in6 first_hop{};  // the first proxy as a v4-mapped or native IPv6 address
    net::endpoint first_hop_ep;
    int timeout_ms = 120000;
    net::cidr excludes[max_excludes];
    std::size_t exclude_count = 0;
    bool proxy_loopback = false;
    bool unsupervised = false;  // no supervisor: exec refuses what it cannot reach (hooks/exec.cpp)
    long supervisor_pid = 0;    // named the ptracer of every process (interposer/ptracer.hpp)
    // The supervisor's DNS responder on 127.0.0.1 (0: none): DNS clients'
    // queries reach it (interposer/dns_redirect.hpp).
    int dns_port = 0;
    // --udp: datagrams go through the first proxy's UDP ASSOCIATE relay
    // (interposer/udp_relay.hpp) instead of being refused.
    bool udp = false;
    // --inbound: a listening TCP socket gets a SOCKS BIND at the first proxy
    // (interposer/inbound.hpp).
    bool inbound = false;
    int log_level = 1;
    char log_file[256] = "";
    char map_path[256] = "";  // the shared placeholder map; "": none (placeholder.hpp)
    path::settings path;      // the chain mode (path.hpp)
    route::table routes;      // first match wins (route.hpp)
    bool tor = false;         // reverse lookups through the first proxy (interposer/reverse.hpp)
    bool async = true;        // non-blocking connects (interposer/pending.hpp)
    // Per-process isolation: the hops whose user is "BASE-<pid>", and BASE.
    bool isolated[max_chain] = {};
    leakproof::short_string isolate_base;
    // Set when the environment is unusable: every proxied connect then fails
    // closed with this message instead of guessing.
    const char* error = nullptr;
};

// This process's settings, read from its environment on the first call.
const settings& get() noexcept;

// How the environment is looked up: getenv() for get(), a table in tests.
using lookup = const char* (*)(const char* name);
// Parses the settings `source` gives into `out` (default-constructed): what
// get() does once, for tests that try one environment after another.
void read(settings& out, lookup source) noexcept;

// The PATH variable as it is at this call, or null: execvp() and
// posix_spawnp() search it (interposer/hooks/exec.cpp), and the program may
// have changed it since the settings were read. Not a setting: read anew
// each time, here because the environment is read in this module alone.
const char* search_path() noexcept;

// In a forked child (interposer/fork.cpp): values derived from the pid are
// derived again (the isolated hops' user names). A no-op before get() has
// read the settings; after exec() they are read anew anyway.
void after_fork_child() noexcept;

}  // namespace lp::config
