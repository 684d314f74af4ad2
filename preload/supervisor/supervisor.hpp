// The seccomp supervisor.
//
// LD_PRELOAD cannot reach a static program (or a Go CGO_ENABLED=0 one): it
// makes its system calls itself, and may be started anywhere below the
// command (a script running a Go tool). So the wrapper runs the whole
// process tree under a seccomp filter too: connect, sendto (with an address
// of 16 bytes or more), sendmsg and sendmmsg stop in the kernel and wait for
// the supervisor — a detached process the wrapper leaves behind — which
// decides with the interposer's policy (policy.hpp) and does the work on a
// duplicate of the program's socket (pidfd_getfd):
//   proxy   → connect the duplicate to the first proxy, run the handshake
//             (tunnel.hpp), answer 0 or the error;
//   direct  → connect/send on the duplicate with the address we checked;
//   DNS     → connect/send to our own responder (supervisor/dns_responder.hpp), which
//             answers A/AAAA with placeholders, so no query leaves;
//   refuse  → EPERM (or the policy's errno).
// The kernel never runs the program's own call with an address we did not
// check: only sockets of other families (AF_UNIX, AF_NETLINK...), which
// cannot reach the network, and TCP sends (whose address the kernel
// ignores) are let through (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
// In a dynamic program the interposer has already done the work: every
// connect and send it has judged carries a mark the kernel ignores
// (runtime/marker.hpp), which the filter lets through, so neither a proxied
// nor a direct connect costs a notification, nor needs the socket copy the
// kernel may refuse us. What still reaches the supervisor from a dynamic
// program is what libc makes internally (syslog's, nscd's connects) and raw
// system calls (Go with cgo). That mark lets the interposer through, not a
// program written to evade leakproof: the filter keeps unmodified programs
// from leaking (static and Go ones above all); it is not a sandbox (see the
// README).
// io_uring_setup fails with ENOSYS: its submissions would bypass the filter;
// packet sockets fail with EPERM: their frames carry no address to check.
#pragma once

#include <sys/types.h>

#include <string>

namespace lp::supervise {

// Puts this process — and so everything it execs and starts — under the
// filter, served by a new supervisor process (a detached grandchild) that
// keeps descriptor `map_fd` (the placeholder map)
// open for as long as the tree lives, under the same number. The caller
// then execs the program in place: it keeps the wrapper's pid, and nothing
// waits in between. Returns 0, or -errno with `error` set: with
// -EBUSY this tree already has a supervisor (an outer leakproof) and
// nothing changed; after any other failure the caller must not run the
// program (the filter may be installed, with nobody to answer it).
// On success `by` says who serves the tree.
struct started {
    pid_t pid = 0;     // the supervisor (LEAKPROOF_SUPERVISOR_PID)
    int dns_port = 0;  // its DNS responder on 127.0.0.1, 0 when it has none (LEAKPROOF_DNS)
};
int hand_over(int map_fd, std::string& error, started& by);

// Whether hand_over's -errno means this kernel, or a sandbox around us,
// offers no seccomp user notification (ENOSYS: no seccomp(); EINVAL: no
// listener flag; ENOTSUP: an architecture the filter does not know). No
// filter was installed then: the program may run with the interposer
// alone.
bool unavailable(int err) noexcept;

}  // namespace lp::supervise
