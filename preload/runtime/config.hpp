// Configuration, read from the environment the wrapper
// prepared, parsed once (pthread_once) on the first hooked call, then
// read-only: no lock and no allocation on the connect path.
//
//   LEAKPROOF_PROXIES      proxy URLs separated by spaces: a chain, first hop first.
//                          The first hop's host must be an IP literal (the
//                          wrapper resolves it); default socks5h://127.0.0.1:9050
//   LEAKPROOF_TIMEOUT_MS   whole connect()+handshake budget, default 120000
//   LEAKPROOF_EXCLUDE      CIDR[:PORT] list (spaces or commas) connected directly
//   LEAKPROOF_PROXY_LOOPBACK=1   loopback destinations go through the proxy too
//   LEAKPROOF_LOG_LEVEL    0 quiet, 1 refusals/failures (default), 2 every connection
//   LEAKPROOF_LOG_FILE     append log lines there instead of stderr
//   LEAKPROOF_MAP          path of the shared placeholder map (see placeholder.hpp)
//   LEAKPROOF_ISOLATE=process[:BASE]   per-process stream isolation: every
//                          SOCKS5 hop without a user name authenticates as
//                          "BASE-<pid>" (password BASE; BASE defaults to
//                          "leakproof"), so Tor (IsolateSOCKSAuth) gives each
//                          process its own circuits. Re-derived in a forked
//                          child; empty or unset: off.
//   LEAKPROOF_CHAIN        strict (default), dynamic, random[:N], round-robin[:N] (path.hpp)
//   LEAKPROOF_HOP_TIMEOUT_MS  outside strict mode, when a hop counts as down
//   LEAKPROOF_ROUTES       PATTERN=TARGET words, first match wins (route.hpp)
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
    int log_level = 1;
    char log_file[256] = "";
    char map_path[256] = "";
    path::settings path;
    route::table routes;
    // Set when the environment is unusable: every proxied connect then fails
    // closed with this message instead of guessing.
    const char* error = nullptr;
};

const settings& get() noexcept;

}  // namespace lp::config
