// What the wrapper hands down to every process of the tree: the LEAKPROOF_*
// settings the interposer and the supervisor read, LD_PRELOAD, and the
// shared placeholder map.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "leakproof/proxy.hpp"
#include "wrapper/options.hpp"

namespace lp::wrapper {

using environment = std::vector<std::pair<std::string, std::string>>;

// The variables for `chain` and the options; `lib` is the interposer's path.
// The proxies' credentials are not among them (LEAKPROOF_CREDENTIALS only
// says which hops have some in the map), except in --env mode, where only
// -i's can be there (refuse_env_secrets).
environment interposer_env(const options& o, const std::vector<leakproof::proxy>& chain,
                           const std::string& lib);

// No seccomp supervisor will watch the tree: tells the interposer to refuse
// to exec what it cannot reach (runtime/config.hpp, LEAKPROOF_UNSUPERVISED).
void set_unsupervised();

// The supervisor `pid` watches the tree: every process names it as its
// ptracer, for Yama's ptrace_scope 1 (LEAKPROOF_SUPERVISOR_PID), and opens
// the map as the descriptor `map_fd` the supervisor keeps (LEAKPROOF_MAP);
// its DNS responder listens on 127.0.0.1:`dns_port` (0: none; LEAKPROOF_DNS).
void set_supervisor(pid_t pid, int map_fd, int dns_port);

// This wrapper keeps the map for the tree, waiting for the command (under
// an outer supervisor, or none): LEAKPROOF_MAP names our descriptor.
void hold_map(int map_fd);

// Creates an empty placeholder map holding the chain's credentials and
// returns its descriptor (close-on-exec); dies on failure.
int create_map(const std::vector<leakproof::proxy>& chain);

// --env prints lines for later shells, with no process to hold a map: a
// user or password given on the command line, in LEAKPROOF_PROXY or the
// configuration file would have to be printed, so it is refused.
void refuse_env_secrets(const options& o);

// --env: the settings as shell `export` lines on stdout (no map: each
// process then keeps its own, shared with its forks).
int print_env(const environment& env);

}  // namespace lp::wrapper
