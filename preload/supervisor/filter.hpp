// The seccomp filter the supervised tree runs under (supervisor.hpp): a
// classic BPF program over struct seccomp_data that stops connect, sendto
// with an address of 16 bytes or more, sendmsg and sendmmsg for the
// supervisor (SECCOMP_RET_USER_NOTIF), lets every call the interposer has
// judged through (the mark in the upper half of a 32-bit argument:
// runtime/marker.hpp), refuses io_uring_setup (ENOSYS) and
// packet sockets (EPERM), kills calls of another ABI (i386, x32) and
// allows everything else. Built here, installed by supervisor.cpp, run on
// sample calls by tests/unit/supervisor/test_filter.cpp.
#pragma once

#include <linux/filter.h>

#include <vector>

namespace lp::supervise {

// The program; empty where the filter does not know the system call
// numbers (anything but x86_64), and the supervisor then refuses to run.
std::vector<sock_filter> filter_program();

}  // namespace lp::supervise
