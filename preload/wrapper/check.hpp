// leakproof --check: what this machine lets leakproof do, in a few lines —
// what a user runs first when something does not work. The kernel's part is
// asked, not guessed: a child installs a notifying filter, the wrapper
// receives its notification (and tries SECCOMP_IOCTL_NOTIF_ADDFD on it), and
// takes a descriptor of its own parent, which is no descendant of it — as
// the supervisor is none of the program's — and one child takes a
// descriptor of its sibling after the sibling named it its ptracer (what
// every process of the tree does for Yama, interposer/ptracer.hpp).
//
// Each proxy of the chain is asked for a CONNECT to 127.0.0.1:9 through the
// hops before it (any SOCKS reply is an answer; nothing leaves the proxies'
// hosts), the first also for a Tor RESOLVE of 127.0.0.1, which only Tor
// answers (the runtime's tunnel drives the core: no SOCKS byte is made
// here).
#pragma once

#include "wrapper/options.hpp"

namespace lp::wrapper {

// Prints the report on stdout; returns 0 when everything would be
// covered and every proxy answers, 1 otherwise. The LEAKPROOF_* variables
// for the chain must be set already (the runtime reads them).
int check_machine(const options& o);

}  // namespace lp::wrapper
