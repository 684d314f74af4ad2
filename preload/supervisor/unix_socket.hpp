// Whether a program's descriptor is an AF_UNIX socket, asked without
// taking it: for a call the supervisor cannot take the socket of (Yama's
// ptrace_scope, a container's seccomp profile), a local socket still needs
// no decision and runs; any other stays refused.
//
// /proc/PID/fd/N names the socket's inode (ptrace "read" access, which Yama
// does not restrict and no container profile filters), and the kernel's
// sock_diag answers for an AF_UNIX socket of that inode only. The program
// could swap the descriptor between this check and the kernel's run of
// its call — the window every "continue" of a local socket has (README,
// "Static programs").
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace lp::supervise {

bool is_unix_socket(pid_t tid, int fd) noexcept;

// The inode of the socket descriptor `fd` of `tid` names, or 0.
std::uint64_t socket_inode(pid_t tid, int fd) noexcept;

}  // namespace lp::supervise
