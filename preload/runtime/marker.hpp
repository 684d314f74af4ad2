// The contract between the interposer and the supervisor's seccomp filter.
//
// Every connect the runtime makes to the first proxy passes this address
// length, whatever the family: one no program passes (odd, so the size of no
// address structure), which the filter (supervisor/filter.cpp) lets
// through without stopping for the supervisor. That is safe because the
// address is ours (the configured proxy, in our memory), and it spares every
// proxied connect of a dynamic program a round trip through the supervisor
// (two context switches: as much CPU as the rest of the connect when both
// share a CPU). A program that passes it on purpose is not stopped: leakproof
// is no sandbox for hostile programs (README, "Static programs").
#pragma once

#include <sys/socket.h>

namespace lp::tunnel {

inline constexpr socklen_t own_connect_len = 127;

}  // namespace lp::tunnel
