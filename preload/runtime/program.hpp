// Whether the interposer can reach a program: the one check the wrapper
// makes on its command and the interposer on every exec when no seccomp
// supervisor watches the tree (interposer/hooks/exec.cpp). It allocates
// nothing and calls only async-signal-safe functions: the interposer runs it
// between a fork (or vfork, or posix_spawn's clone) and the exec.
#pragma once

#include <cstddef>

namespace lp::program {

enum class verdict {
    interposable,  // a dynamic program (or a script run by one): LD_PRELOAD reaches it
    static_only,   // a static program of our architecture (gcc -static, Go with
                   // CGO_ENABLED=0): only the seccomp supervisor can cover it
    refused,       // setuid/setgid, file capabilities, another architecture,
                   // unreadable: the loader would ignore LD_PRELOAD, and the
                   // supervisor cannot stand in for a privileged program
};

struct check {
    verdict what = verdict::interposable;
    char why[320] = {};  // "is statically linked …", for the log and for refusals
};

// Examines `path` (an executable file); scripts are judged by their
// interpreter, `#!/usr/bin/env NAME` by NAME found through `search_path`.
void examine(const char* path, const char* search_path, check& out) noexcept;

// `name` found the way execvp finds it: itself if it has a slash (and is a
// file), else the first executable file of that name in `search_path`
// (null: the default one). False when there is none or it does not fit.
bool resolve(const char* name, const char* search_path, char* out, std::size_t cap) noexcept;

}  // namespace lp::program
