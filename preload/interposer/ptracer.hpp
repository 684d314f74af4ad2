// Yama's exception for the supervisor. With kernel.yama.ptrace_scope = 1
// (Ubuntu's and Arch's default) only an ancestor may take a process's
// descriptors or read its memory — or the process that the target named
// with prctl(PR_SET_PTRACER). The supervisor is no ancestor of the tree, so
// every process of it names the supervisor (LEAKPROOF_SUPERVISOR_PID,
// runtime/config.hpp): the wrapper before it execs the command, the
// interposer when it is loaded, in the child of every fork, and in an exec
// hook just before the exec — which keeps the declaration, so a static
// program started by a dynamic one is covered too. What stays uncovered:
// a static program started by another static one (nothing of ours runs in
// between), or by posix_spawn (libc's child execs without a hook), and
// scopes 2 and 3, where only CAP_SYS_PTRACE helps. Without Yama the call
// fails (EINVAL) and nothing changes. Yama forgets the declaration when the
// supervisor exits, so its pid, once reused, gains nothing.
#pragma once

namespace lp::ptracer {

// Names the supervisor as this process's ptracer, if there is one.
void declare() noexcept;

}  // namespace lp::ptracer
