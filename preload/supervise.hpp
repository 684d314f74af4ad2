// leakproof wrapper — the seccomp supervisor (issue 8).
//
// LD_PRELOAD cannot reach a static program (or a Go CGO_ENABLED=0 one): it
// makes its system calls itself, and may be started anywhere below the
// command (a script running a Go tool). So the wrapper runs the whole
// process tree under a seccomp filter too: connect, sendto (with an address),
// sendmsg and sendmmsg stop in the kernel and wait for this process, which
// decides with the interposer's policy (policy.hpp) and does the work on a
// duplicate of the program's socket (pidfd_getfd):
//   proxy   → connect the duplicate to the first proxy, run the handshake
//             (tunnel.hpp), answer 0 or the error;
//   direct  → connect/send on the duplicate with the address we checked;
//   DNS     → connect/send to our own responder (supervise_dns.hpp), which
//             answers A/AAAA with placeholders, so no query leaves;
//   refuse  → EPERM (or the policy's errno).
// The kernel never runs the program's own call with an address we did not
// check: only sockets of other families (AF_UNIX, AF_NETLINK...), which
// cannot reach the network, and TCP sends (whose address the kernel
// ignores) are let through (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
// In a dynamic program the interposer has already done the work: what
// reaches the filter is its connect to the first proxy (rule 2: direct) or
// a destination the policy sends direct; the supervisor makes that connect
// on its copy, so the cost is one notification per connect.
// io_uring_setup fails with ENOSYS: its submissions would bypass the filter.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace lp::supervise {

// Runs `path` with `args` under the supervisor and waits for it and every
// process it starts. `started` is called with the child's pid once it runs
// (the wrapper forwards signals to it). Returns the exit code like a shell
// (128 + signal), or -errno with `error` set when the filter could not be
// installed: the program has then not run at all. -EBUSY: this process
// tree is already under a supervisor (an outer leakproof).
int run(const std::string& path, const std::vector<std::string>& args, void (*started)(pid_t),
        std::string& error);

}  // namespace lp::supervise
