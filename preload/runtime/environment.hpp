// Every LEAKPROOF_* environment variable, in one place: its name, what it
// means, who writes it and who reads it.
//
// The wrapper (wrapper/environment.cpp, wrapper/main.cpp) writes the
// settings; the runtime reads them in one module, runtime/config, once per
// process (config.hpp), for the interposer and the supervisor alike. No
// other module calls getenv() for them (tests/unit/interposer/symbols_test.py
// checks libleakproof.so's objects for it). Programs may set them by hand
// too: `leakproof --env` prints them, and the tests set some directly.
#pragma once

namespace lp::env {

// Read by runtime/config, written by wrapper/environment.cpp:
//
// Proxy URLs separated by spaces: a chain, first hop first. The first hop's
// host must be an IP literal (the wrapper resolves it). Default
// socks5h://127.0.0.1:9050.
inline constexpr char proxies[] = "LEAKPROOF_PROXIES";
// The whole connect()+handshake budget in milliseconds, default 120000.
inline constexpr char timeout_ms[] = "LEAKPROOF_TIMEOUT_MS";
// CIDR[:PORT] list (spaces or commas) connected directly (--exclude).
inline constexpr char exclude[] = "LEAKPROOF_EXCLUDE";
// "1": loopback destinations go through the proxy too (--proxy-loopback).
inline constexpr char proxy_loopback[] = "LEAKPROOF_PROXY_LOOPBACK";
// "1": Tor mode, reverse lookups are asked of the first proxy with
// RESOLVE_PTR (--tor; interposer/reverse.hpp).
inline constexpr char tor[] = "LEAKPROOF_TOR";
// 0 quiet, 1 refusals and failures (default), 2 every connection (-v).
inline constexpr char log_level[] = "LEAKPROOF_LOG_LEVEL";
// Append log lines to this file instead of stderr (--log-file).
inline constexpr char log_file[] = "LEAKPROOF_LOG_FILE";
// process[:BASE]: per-process stream isolation (-i): every SOCKS5 hop
// without a user name authenticates as "BASE-<pid>" (password BASE; BASE
// defaults to "leakproof"), re-derived in a forked child. Empty: off.
inline constexpr char isolate[] = "LEAKPROOF_ISOLATE";

// Outside strict mode (path.hpp): strict (default), dynamic, random[:N],
// round-robin[:N] — how a connection picks its hops from the chain (--chain).
inline constexpr char chain[] = "LEAKPROOF_CHAIN";
// Outside strict mode: how long a hop may take before it counts as down, in
// milliseconds (--hop-timeout; the wrapper's default is 10 s).
inline constexpr char hop_timeout_ms[] = "LEAKPROOF_HOP_TIMEOUT_MS";
// PATTERN=TARGET words, first match wins (route.hpp; --route, and the
// routes of a peer config file).
inline constexpr char routes[] = "LEAKPROOF_ROUTES";

// Read by runtime/config, written by wrapper/environment.cpp (name_map):
// the path the shared placeholder map opens by, /proc/<holder>/fd/<n>
// (runtime/placeholder.hpp). The holder is the supervisor
// (LEAKPROOF_SUPERVISOR_PID) when the tree has one of its own; the wrapper,
// which waits for the command then, under an outer supervisor or none.
// Empty in --env's output: each process then keeps a map of its own.
inline constexpr char map[] = "LEAKPROOF_MAP";
// Read by runtime/config, written by wrapper/environment.cpp: the hops
// (0 = first; commas) whose user and password are in the map, not in
// LEAKPROOF_PROXIES, so that no secret travels in the environment. Always
// set, so that an outer run's value is not inherited.
inline constexpr char credentials[] = "LEAKPROOF_CREDENTIALS";

// Read by runtime/config, written by nobody but a user or a test: "0" turns
// the interposer's non-blocking connects off (interposer/pending.hpp).
inline constexpr char async[] = "LEAKPROOF_ASYNC";
// Read by runtime/config, written by nobody but a user or a test: "0" turns
// optimistic data off (every hop's ?optimistic=1 is read as ?pipeline=1),
// whatever the URLs in LEAKPROOF_PROXIES say.
inline constexpr char optimistic[] = "LEAKPROOF_OPTIMISTIC";

// Read by runtime/config, written by wrapper/environment.cpp
// (set_unsupervised; "0" otherwise, so that an outer run's value is not
// inherited; "1" in --env's output): "1" when no seccomp supervisor watches
// the tree (the kernel offers no user notification), and the interposer
// then refuses to exec a program it cannot reach (interposer/hooks/exec.cpp).
inline constexpr char unsupervised[] = "LEAKPROOF_UNSUPERVISED";
// Read by runtime/config, written by wrapper/environment.cpp
// (set_supervisor): the supervisor's pid, which every process names as its
// ptracer, for Yama's ptrace_scope 1 (interposer/ptracer.hpp).
inline constexpr char supervisor_pid[] = "LEAKPROOF_SUPERVISOR_PID";
// Read by runtime/config, written by wrapper/environment.cpp
// (set_supervisor; "" otherwise, so that an outer run's value is not
// inherited): the port of the supervisor's DNS responder on 127.0.0.1, to
// which the supervisor sends every DNS client's queries; the interposer
// gives their answers the source the program asked (interposer/dns_redirect.hpp).
inline constexpr char dns[] = "LEAKPROOF_DNS";
// Read by runtime/config, written by wrapper/environment.cpp (--udp, config
// key udp): "1" when datagrams go through the first proxy's UDP relay.
inline constexpr char udp[] = "LEAKPROOF_UDP";
// Read by runtime/config, written by wrapper/environment.cpp (--inbound,
// config key inbound): "1" when a listening socket gets a SOCKS BIND.
inline constexpr char inbound[] = "LEAKPROOF_INBOUND";

// The wrapper's own input, written by the user and read by wrapper/options
// before any of the above exists: the proxies when no -p is given.
inline constexpr char user_proxy[] = "LEAKPROOF_PROXY";

}  // namespace lp::env
