// The seccomp filter program (supervisor/filter.hpp), run two ways:
//
// - by a small classic-BPF interpreter below, on seccomp_data the test
//   writes: every branch, including calls a test process cannot make
//   (another architecture, x32 numbers, the interposer's mark in the high
//   half of a length or flags, and values that only resemble it);
//   it knows only the instructions the filter uses and fails on any other,
//   so a new kind of instruction needs a new line here, not a silent pass;
// - by the kernel, in a forked child that installs it without a listener
//   (a "notify" verdict then fails with ENOSYS): proof that the kernel
//   accepts the program and reads the calls as the interpreter does.
#include <doctest/doctest.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/marker.hpp"
#include "supervisor/filter.hpp"

namespace {

constexpr std::uint32_t allow = SECCOMP_RET_ALLOW;
constexpr std::uint32_t notify = SECCOMP_RET_USER_NOTIF;
constexpr std::uint32_t killed = SECCOMP_RET_KILL_PROCESS;
constexpr std::uint32_t enosys = SECCOMP_RET_ERRNO | ENOSYS;
constexpr std::uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;
constexpr std::uint32_t broken = 0xdeadbeef;  // the interpreter refused the program

// Runs `prog` on `data` as the kernel would; `broken` (with a message) for
// anything outside the subset the filter is written in.
std::uint32_t run(const std::vector<sock_filter>& prog, const seccomp_data& data,
                  std::string& why) {
    std::uint32_t a = 0;
    unsigned char bytes[sizeof data];
    std::memcpy(bytes, &data, sizeof data);
    for (std::size_t pc = 0; pc < prog.size(); ++pc) {
        const sock_filter& in = prog[pc];
        switch (in.code) {
            case BPF_LD | BPF_W | BPF_ABS:
                if (in.k % 4 != 0 || in.k + 4 > sizeof data) {
                    why = "load outside seccomp_data at " + std::to_string(pc);
                    return broken;
                }
                std::memcpy(&a, bytes + in.k, 4);
                break;
            case BPF_ALU | BPF_AND | BPF_K: a &= in.k; break;
            case BPF_JMP | BPF_JEQ | BPF_K: pc += a == in.k ? in.jt : in.jf; break;
            case BPF_JMP | BPF_JGE | BPF_K: pc += a >= in.k ? in.jt : in.jf; break;
            case BPF_RET | BPF_K: return in.k;
            default:
                why =
                    "unknown instruction " + std::to_string(in.code) + " at " + std::to_string(pc);
                return broken;
        }
    }
    why = "ran off the end";
    return broken;
}

seccomp_data call(long nr, std::initializer_list<std::uint64_t> args = {}) {
    seccomp_data d{};
    d.nr = static_cast<int>(nr);
    d.arch = AUDIT_ARCH_X86_64;
    int i = 0;
    for (auto v : args) d.args[i++] = v;
    return d;
}

struct verdict_row {
    const char* what;
    seccomp_data data;
    std::uint32_t expected;
};

constexpr std::uint64_t some_address = 0x7ffd12345678;

}  // namespace

#if defined(__x86_64__)

TEST_CASE("filter: each call's verdict") {
    auto prog = lp::supervise::filter_program();
    REQUIRE(!prog.empty());
    REQUIRE(prog.size() < BPF_MAXINSNS);
    // An argument the interposer has judged, as lp::marker passes it.
    auto marked = [](std::uint64_t v) { return (std::uint64_t{lp::marker::mark} << 32) | v; };
    auto i386 = call(SYS_connect, {3, some_address, 16});
    i386.arch = AUDIT_ARCH_I386;
    const verdict_row rows[] = {
        {"another architecture (i386's int 0x80)", i386, killed},
        {"an x32 system call number", call(SYS_connect | 0x40000000, {3, some_address, 16}),
         killed},
        {"connect, sockaddr_in", call(SYS_connect, {3, some_address, sizeof(sockaddr_in)}), notify},
        {"connect, sockaddr_in6", call(SYS_connect, {3, some_address, sizeof(sockaddr_in6)}),
         notify},
        {"connect, sockaddr_storage", call(SYS_connect, {3, some_address, 128}), notify},
        {"connect, marked", call(SYS_connect, {3, some_address, marked(sizeof(sockaddr_in))}),
         allow},
        {"connect, marked, sockaddr_in6",
         call(SYS_connect, {3, some_address, marked(sizeof(sockaddr_in6))}), allow},
        {"connect, the mark in the low half only",
         call(SYS_connect, {3, some_address, lp::marker::mark}), notify},
        {"connect, another value in the high half",
         call(SYS_connect, {3, some_address, (1ULL << 32) | 16}), notify},
        {"connect, the mark one off",
         call(SYS_connect, {3, some_address, marked(16) + (1ULL << 32)}), notify},
        {"connect, the old marker length 127 (no longer one)",
         call(SYS_connect, {3, some_address, 127}), notify},
        {"connect, shorter than any IP address (netlink)", call(SYS_connect, {3, some_address, 12}),
         allow},
        {"connect, length 15", call(SYS_connect, {3, some_address, 15}), allow},
        {"connect, AF_UNSPEC's 16 bytes", call(SYS_connect, {3, some_address, 16}), notify},
        {"sendto without an address", call(SYS_sendto, {3, some_address, 10, 0, 0, 0}), allow},
        {"sendto without an address, a length given",
         call(SYS_sendto, {3, some_address, 10, 0, 0, 16}), allow},
        {"sendto to an address", call(SYS_sendto, {3, some_address, 10, 0, some_address, 16}),
         notify},
        {"sendto, an address in the high half only",
         call(SYS_sendto, {3, some_address, 10, 0, 1ULL << 32, 16}), notify},
        {"sendto, an address too short for IP",
         call(SYS_sendto, {3, some_address, 10, 0, some_address, 8}), allow},
        {"sendto to an address, marked",
         call(SYS_sendto, {3, some_address, 10, 0, some_address, marked(16)}), allow},
        {"sendto to an address, the mark on the flags instead",
         call(SYS_sendto, {3, some_address, 10, marked(0), some_address, 16}), notify},
        {"sendmsg", call(SYS_sendmsg, {3, some_address, 0}), notify},
        {"sendmsg, flags given", call(SYS_sendmsg, {3, some_address, MSG_NOSIGNAL}), notify},
        {"sendmsg, marked", call(SYS_sendmsg, {3, some_address, marked(MSG_NOSIGNAL)}), allow},
        {"sendmsg, the mark in the low half only",
         call(SYS_sendmsg, {3, some_address, lp::marker::mark}), notify},
        {"sendmmsg", call(SYS_sendmmsg, {3, some_address, 1, 0}), notify},
        {"sendmmsg, marked", call(SYS_sendmmsg, {3, some_address, 1, marked(0)}), allow},
        {"sendmmsg, the mark on the count instead",
         call(SYS_sendmmsg, {3, some_address, marked(1), 0}), notify},
        {"io_uring_setup", call(SYS_io_uring_setup, {8, some_address}), enosys},
        {"socket(AF_PACKET)", call(SYS_socket, {AF_PACKET, SOCK_RAW, 0x0300}), eperm},
        {"socket(AF_INET, SOCK_PACKET)", call(SYS_socket, {AF_INET, 10, 0x0300}), eperm},
        {"socket(AF_INET, SOCK_PACKET | SOCK_CLOEXEC)",
         call(SYS_socket, {AF_INET, 10 | SOCK_CLOEXEC, 0x0300}), eperm},
        {"socket(AF_INET, SOCK_STREAM)", call(SYS_socket, {AF_INET, SOCK_STREAM, 0}), allow},
        {"socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK)",
         call(SYS_socket, {AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0}), allow},
        {"socket(AF_INET, SOCK_RAW)", call(SYS_socket, {AF_INET, SOCK_RAW, IPPROTO_ICMP}), allow},
        {"read", call(SYS_read, {0, some_address, 1}), allow},
        {"recvfrom", call(SYS_recvfrom, {3, some_address, 1, 0, some_address, some_address}),
         allow},
        {"bind", call(SYS_bind, {3, some_address, 16}), allow},
        {"execve", call(SYS_execve, {some_address, some_address, some_address}), allow},
    };
    for (const auto& r : rows) {
        std::string what = r.what;
        CAPTURE(what);
        std::string why;
        auto got = run(prog, r.data, why);
        CAPTURE(why);
        CHECK(got == r.expected);
    }
}

TEST_CASE("filter: every jump lands inside the program, forward") {
    auto prog = lp::supervise::filter_program();
    for (std::size_t pc = 0; pc < prog.size(); ++pc) {
        CAPTURE(pc);
        if (BPF_CLASS(prog[pc].code) != BPF_JMP) continue;
        CHECK(pc + 1 + prog[pc].jt < prog.size());
        CHECK(pc + 1 + prog[pc].jf < prog.size());
    }
    CHECK(BPF_CLASS(prog.back().code) == BPF_RET);
}

namespace {

// In the child, under the filter: 1 bit per expectation that failed (the
// low six), or 0x40, 0x80, 0xc0 when the probe could not run at all.
int probe_under_filter(std::vector<sock_filter>& prog) {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 0x80;
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return 0x40;
    int bad = 0;
    errno = 0;
    if (socket(AF_PACKET, SOCK_RAW, 0) != -1 || errno != EPERM) bad |= 1;
    errno = 0;
    if (syscall(SYS_io_uring_setup, 8, nullptr) != -1 || errno != ENOSYS) bad |= 2;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) return 0xc0;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(1);  // nothing listens there
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // With no listener, a "notify" verdict fails with ENOSYS.
    errno = 0;
    if (connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != -1 || errno != ENOSYS) bad |= 4;
    // A marked connect runs in the kernel, which reads the length's low
    // half: port 1 on loopback refuses.
    errno = 0;
    if (lp::marker::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != -1 ||
        errno != ECONNREFUSED)
        bad |= 8;
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    if (u < 0) return 0xc0;
    errno = 0;
    if (sendto(u, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != -1 || errno != ENOSYS)
        bad |= 16;
    // Marked datagrams go out: sendto's length, sendmsg's flags.
    if (lp::marker::sendto(u, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != 1)
        bad |= 32;
    char byte = 'x';
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_name = &to;
    msg.msg_namelen = sizeof to;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (lp::marker::sendmsg(u, &msg, 0) != 1) bad |= 32;
    errno = 0;
    if (sendmsg(u, &msg, 0) != -1 || errno != ENOSYS) bad |= 16;
    return bad;
}

}  // namespace

TEST_CASE("filter: the kernel accepts it and agrees") {
    auto prog = lp::supervise::filter_program();
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) _exit(probe_under_filter(prog));
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    // 0x40: the kernel refused the program; 0x80: no no_new_privs; 0xc0: no socket.
    CHECK(WEXITSTATUS(status) == 0);
}

#endif
