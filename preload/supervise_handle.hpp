// leakproof wrapper — answering one seccomp notification (supervise.hpp).
#pragma once

#include <linux/seccomp.h>
#include <netinet/in.h>

namespace lp::supervise {

struct context {
    int listener = -1;  // the seccomp notification fd
    sockaddr_in dns{};  // our DNS responder (supervise_dns.hpp), 127.0.0.1
};

// Decides and answers `n` (connect, sendto, sendmsg or sendmmsg). Runs on a
// worker thread; may block for a whole proxy handshake.
void handle(const context& ctx, const seccomp_notif& n) noexcept;

// Answers `n` at once if that cannot wait on the network (refusals, sends,
// DNS redirects, direct connects to loopback or on non-blocking sockets:
// the interposer's connect to a local proxy, most of all) and returns
// true; false leaves `n` unanswered, for handle() on a worker. Saves the
// hand-over to another thread on the common path.
bool handle_quick(const context& ctx, const seccomp_notif& n) noexcept;

}  // namespace lp::supervise
