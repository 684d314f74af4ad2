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
environment interposer_env(const options& o, const std::vector<leakproof::proxy>& chain,
                           const std::string& lib);

// No seccomp supervisor will watch the tree: tells the interposer to refuse
// to exec what it cannot reach (runtime/config.hpp, LEAKPROOF_UNSUPERVISED).
void set_unsupervised();

// The supervisor watches the tree: every process names it as its ptracer,
// for Yama's ptrace_scope 1 (LEAKPROOF_SUPERVISOR_PID).
void set_supervisor(pid_t pid);

// Creates an empty placeholder map and returns its path; dies on failure.
std::string create_map();

// --env: the settings as shell `export` lines on stdout.
int print_env(const environment& env);

}  // namespace lp::wrapper
