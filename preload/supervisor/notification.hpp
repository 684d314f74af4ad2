// Answering one seccomp notification (supervisor.hpp).
#pragma once

#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/types.h>

namespace lp::supervise {

struct context {
    int listener = -1;  // the seccomp notification fd
    sockaddr_in dns{};  // our DNS responder (supervisor/dns_responder.hpp), 127.0.0.1; port 0: none
};

// Answers `n` at once if that cannot wait on the network (refusals, sends,
// DNS redirects, direct connects to loopback or on non-blocking sockets:
// the interposer's connect to a local proxy, most of all) and returns
// true. False leaves `n` unanswered, for handle() on a worker, and hands
// over in `copy` the copy of the program's socket already taken. Saves the
// hand-over to another thread on the common path.
bool handle_quick(const context& ctx, const seccomp_notif& n, int& copy) noexcept;

// Decides and answers a notification handle_quick() left, with its `copy`
// (closed here). Runs on a worker thread; may block for a whole proxy
// handshake.
void handle(const context& ctx, const seccomp_notif& n, int copy) noexcept;

// Answers `n` with `err` and a log line, and closes `copy`: for a
// notification the supervisor has no room to serve (no memory for its
// queue, no thread to run it), which the program hears as a failed call.
void refuse_unserved(const context& ctx, const seccomp_notif& n, int copy, int err) noexcept;

// A copy of descriptor `fd` of thread (or process) `tid`, or -errno.
int copy_fd(pid_t tid, int fd) noexcept;

}  // namespace lp::supervise
