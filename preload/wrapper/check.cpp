#include "wrapper/check.hpp"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "runtime/config.hpp"
#include "runtime/tunnel.hpp"
#include "wrapper/report.hpp"

namespace lp::wrapper {
namespace {

struct kernel_facts {
    int notification = 0;  // 0: seccomp user notification works, else the errno
    int addfd = ENOTTY;    // 0: SECCOMP_IOCTL_NOTIF_ADDFD works, else the errno
    int getfd = 0;         // 0: pidfd_getfd of a non-descendant works, else the errno
    int named = 0;         // the same, of a non-descendant that named us its ptracer
    int memory = 0;        // 0: reading a non-descendant's memory (/proc/PID/mem) works
    int yama = -1;         // kernel.yama.ptrace_scope, -1 without Yama
};

// The child's side: a filter that stops getppid() for us, its listener sent
// up the socket (or the errno), then the stopped call.
[[noreturn]] void notifying_child(int sock) {
    int err = 0;
    int listener = -1;
#if defined(__x86_64__)
    sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof *code), code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) err = errno;
    if (!err) {
        long fd =
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
        if (fd < 0) err = errno;
        listener = static_cast<int>(fd);
    }
#else
    err = ENOTSUP;  // the supervisor's filter knows x86_64 only
#endif
    iovec iov{&err, sizeof err};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (listener >= 0) {
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &listener, sizeof(int));
    }
    if (::sendmsg(sock, &m, 0) < 0) _exit(1);
    if (listener >= 0) {
        ::close(listener);
        syscall(SYS_getppid);  // waits for the parent's answer
    }
    _exit(0);
}

// The listener (or -errno) the child sent.
int receive_listener(int sock) {
    int err = EIO;
    iovec iov{&err, sizeof err};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    if (::recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != static_cast<ssize_t>(sizeof err)) return -EIO;
    if (err != 0) return -err;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS) return -EIO;
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

// Receives the child's stopped getppid(), tries ADDFD on it, answers it.
void serve_one(int listener, kernel_facts& k) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) {
        k.notification = ETIMEDOUT;
        return;
    }
    seccomp_notif_sizes sizes{};
    std::size_t size = sizeof(seccomp_notif);
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) == 0 && sizes.seccomp_notif > size)
        size = sizes.seccomp_notif;
    std::vector<unsigned char> buf(size, 0);
    if (::ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, buf.data()) != 0) {
        k.notification = errno;
        return;
    }
    seccomp_notif n;
    std::memcpy(&n, buf.data(), sizeof n);
#ifdef SECCOMP_IOCTL_NOTIF_ADDFD
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    seccomp_notif_addfd add{};
    add.id = n.id;
    add.srcfd = static_cast<__u32>(null);
    add.newfd_flags = O_CLOEXEC;
    k.addfd = ::ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add) >= 0 ? 0 : errno;
    ::close(null);
#endif
    seccomp_notif_resp r{};
    r.id = n.id;
    (void)::ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
}

int probe_notification(kernel_facts& k) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return errno;
    pid_t child = ::fork();
    if (child < 0) return errno;
    if (child == 0) {
        ::close(sv[0]);
        notifying_child(sv[1]);
    }
    ::close(sv[1]);
    int listener = receive_listener(sv[0]);
    ::close(sv[0]);
    if (listener < 0) {
        k.notification = -listener;
    } else {
        serve_one(listener, k);
        ::close(listener);
    }
    ::kill(child, SIGKILL);  // if it still waits (a timeout)
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return 0;
}

// A descriptor of our parent, which is no descendant of ours: what Yama
// and container profiles refuse the supervisor.
int probe_getfd() {
    long pidfd = syscall(SYS_pidfd_open, ::getppid(), 0);
    if (pidfd < 0) return errno;
    long fd = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
    int err = fd < 0 ? errno : 0;
    if (fd < 0 && err == EBADF) {
        // The parent has no stdin: it let us try, that is the answer.
        err = 0;
    }
    if (fd >= 0) ::close(static_cast<int>(fd));
    ::close(static_cast<int>(pidfd));
    return err;
}

// Opening the memory of our parent: the ptrace check the supervisor's
// reads of a program's addresses pass (/proc/PID/mem, or process_vm_readv).
int probe_memory() {
    std::string path = "/proc/" + std::to_string(::getppid()) + "/mem";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ::close(fd);
    return 0;
}

// The same of a process that named the taker its ptracer (PR_SET_PTRACER),
// as every process of the tree names the supervisor: two siblings, so that
// the taker is no ancestor of the target, as the supervisor is none.
int probe_named_getfd() {
    int ready[2], done[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return errno;
    if (::pipe2(done, O_CLOEXEC) != 0) return errno;
    pid_t target = ::fork();
    if (target == 0) {
        ::close(ready[1]);  // EOF once the parent is done
        char pid_text[16] = {};
        ssize_t n = ::read(ready[0], pid_text, sizeof pid_text - 1);  // the taker's pid
        if (n > 0) (void)prctl(PR_SET_PTRACER, std::strtoul(pid_text, nullptr, 10), 0, 0, 0);
        (void)!::write(done[1], "n", 1);
        char c;
        (void)!::read(ready[0], &c, 1);  // until the taker is done (EOF)
        _exit(0);
    }
    int result[2];
    if (target < 0 || ::pipe2(result, O_CLOEXEC) != 0) return errno;
    pid_t taker = ::fork();
    if (taker == 0) {
        char c;
        int err = ::read(done[0], &c, 1) == 1 ? 0 : EIO;
        long pidfd = err ? -1 : syscall(SYS_pidfd_open, target, 0);
        if (!err && pidfd < 0) err = errno;
        if (!err && syscall(SYS_pidfd_getfd, pidfd, ready[0], 0) < 0) err = errno;
        (void)!::write(result[1], &err, sizeof err);
        _exit(0);
    }
    std::string pid_text = std::to_string(taker);
    (void)!::write(ready[1], pid_text.data(), pid_text.size());
    int err = EIO;
    ::close(result[1]);
    if (taker < 0 || ::read(result[0], &err, sizeof err) != static_cast<ssize_t>(sizeof err))
        err = EIO;
    for (int fd : {ready[0], ready[1], done[0], done[1], result[0]}) ::close(fd);
    for (pid_t p : {target, taker})
        while (p > 0 && ::waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
        }
    return err;
}

int read_yama() {
    int fd = ::open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char c = 0;
    ssize_t n = ::read(fd, &c, 1);
    ::close(fd);
    return n == 1 && c >= '0' && c <= '9' ? c - '0' : -1;
}

std::string yes_or(int err) {
    return err == 0 ? "yes" : std::string{"no ("} + std::strerror(err) + ")";
}

std::string yama_text(int scope) {
    switch (scope) {
        case -1: return "no Yama";
        case 0: return "0 (classic: same user, dumpable)";
        case 1: return "1 (only ancestors, or CAP_SYS_PTRACE)";
        case 2: return "2 (only CAP_SYS_PTRACE)";
        default: return std::to_string(scope) + " (nobody)";
    }
}

// Why the supervisor cannot take a program's socket, and the fix.
std::string copy_refusal(const kernel_facts& k) {
    if (k.yama >= 1)
        return "kernel.yama.ptrace_scope is " + std::to_string(k.yama) +
               ": run as root, or sysctl kernel.yama.ptrace_scope=0";
    return "pidfd_getfd is refused (" + std::string{std::strerror(k.getfd)} +
           "): in a container, give it CAP_SYS_PTRACE";
}

// The mode each kind of command would run in; false when it leaves
// something uncovered.
bool report_modes(const kernel_facts& k) {
    if (k.notification != 0) {
        say(stdout,
            "dynamic command: interposer alone (no seccomp user notification); raw system calls "
            "(Go with cgo) are not checked, static and setuid programs below are refused\n"
            "static command: refused (exit 126): LD_PRELOAD cannot reach it and nothing can "
            "supervise it here\n");
        return false;
    }
    if (k.getfd != 0 && k.named == 0) {
        say(stdout,
            "dynamic command: interposer + supervisor: covered (every process names the "
            "supervisor its ptracer)\n"
            "static command: supervised: covered when the wrapper or a dynamic program starts "
            "it; one started by another static program or by posix_spawn cannot connect: " +
                copy_refusal(k) + "\n");
        return false;
    }
    if (k.getfd != 0 && k.addfd == 0 && k.memory == 0) {
        say(stdout,
            "dynamic command: interposer + supervisor: covered\n"
            "static command: supervised: covered (without pidfd_getfd: sockets of the "
            "supervisor's own stand in for the program's, which keeps O_NONBLOCK and "
            "FD_CLOEXEC, not options set before connect)\n");
        return true;
    }
    if (k.getfd != 0) {
        say(stdout,
            "dynamic command: interposer + supervisor: covered (the interposer's own calls pass "
            "the filter); what libc calls internally and raw system calls (Go with cgo) to the "
            "network are refused, local sockets run\n"
            "static command: supervised, but its connects and DNS queries fail: " +
                copy_refusal(k) + "\n");
        return false;
    }
    say(stdout,
        "dynamic command: interposer + supervisor: covered\n"
        "static command: supervised: covered\n");
    return true;
}

// A socket through hops 0..k-1, connected to hop k; the error, if any. The
// configured chain in order, whatever the chain mode: each proxy is asked.
std::error_code reach_hop(int fd, int family, std::size_t k, const tunnel::deadline& dl) {
    const auto& cfg = config::get();
    path::chain c{cfg.chain, cfg.chain_len};
    path::selection in_order;
    for (; in_order.len < cfg.chain_len; ++in_order.len)
        in_order.hop[in_order.len] = static_cast<std::uint8_t>(in_order.len);
    if (auto ec = tunnel::connect_first_hop(fd, family)) return ec;
    for (std::size_t i = 0; i < k; ++i) {
        leakproof::client_handshake hs{tunnel::hop_request(c, in_order, i, {}, 0)};
        if (auto ec = tunnel::drive(fd, hs, dl)) return ec;
    }
    return {};
}

// What hop k said: `reach`, the error on the way to it (the connect to the
// first proxy, or a hop before it refusing the CONNECT); `reply`, its own
// answer to `cmd` on 127.0.0.1:9 (port 0 for RESOLVE).
struct hop_answer {
    std::error_code reach, reply;
};

hop_answer ask_hop(std::size_t k, leakproof::command cmd) {
    const auto& cfg = config::get();
    int family = cfg.first_hop_ep.addr.is_v4() ? AF_INET : AF_INET6;
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return {{errno, std::generic_category()}, {}};
    tunnel::deadline dl{cfg.timeout_ms < 10000 ? cfg.timeout_ms : 10000};
    hop_answer a{reach_hop(fd, family, k, dl), {}};
    if (!a.reach) {
        auto target = leakproof::address::ipv4({127, 0, 0, 1});
        bool resolve = cmd == leakproof::command::resolve;
        leakproof::client_handshake hs{cfg.chain[k].make_request(
            resolve ? leakproof::address::host_name("127.0.0.1") : target, resolve ? 0 : 9, cmd)};
        a.reply = tunnel::drive(fd, hs, dl);
        // The first proxy's connect may fail only at the first send.
        if (k == 0 && a.reply.category() == std::generic_category()) std::swap(a.reach, a.reply);
    }
    ::close(fd);
    return a;
}

// A reply of the proxy's own (it refused or failed the request): it speaks SOCKS.
bool is_socks_reply(std::error_code ec) {
    using leakproof::error;
    if (ec.category() != leakproof::error_category()) return false;
    auto e = static_cast<error>(ec.value());
    return (e >= error::general_failure && e <= error::onion_introduction_timeout);
}

std::string url_of(const leakproof::proxy& p) {
    char text[512];
    std::size_t n = leakproof::format_redacted(p, text, sizeof text);
    return {text, n};
}

bool report_proxies() {
    const auto& cfg = config::get();
    if (cfg.error) {
        say(stdout, std::string{"proxies: "} + cfg.error + "\n");
        return false;
    }
    bool all = true;
    for (std::size_t k = 0; k < cfg.chain_len; ++k) {
        auto a = ask_hop(k, leakproof::command::connect);
        bool answers = !a.reach && (!a.reply || is_socks_reply(a.reply));
        all = all && answers;
        std::string line = "proxy " + url_of(cfg.chain[k]) + ": ";
        if (a.reach)
            line += std::string{k == 0 ? "does not answer: "
                                       : "cannot be reached through the "
                                         "hops before it: "} +
                    tunnel::describe(a.reach);
        else if (!answers)
            line += std::string{"does not answer SOCKS: "} + tunnel::describe(a.reply);
        else
            line += "answers SOCKS";
        if (k == 0 && answers && cfg.chain[0].version == leakproof::socks_version::v5) {
            auto r = ask_hop(0, leakproof::command::resolve);
            line += !r.reach && !r.reply ? "; RESOLVE works (looks like Tor)"
                                         : "; no RESOLVE (not Tor)";
        }
        say(stdout, line + "\n");
    }
    return all;
}

}  // namespace

int check_machine(const options&) {
    kernel_facts k;
    k.yama = read_yama();
    if (int err = probe_notification(k)) k.notification = err;
    k.getfd = probe_getfd();
    k.named = probe_named_getfd();
    k.memory = probe_memory();
    say(stdout, "seccomp user notification: " + yes_or(k.notification) + "\n");
    say(stdout, "pidfd_getfd of a process that is no descendant: " + yes_or(k.getfd) + "\n");
    say(stdout, "pidfd_getfd of one that named us its ptracer: " + yes_or(k.named) + "\n");
    say(stdout,
        "reading the memory of a process that is no descendant: " + yes_or(k.memory) + "\n");
    say(stdout, "Yama ptrace_scope: " + yama_text(k.yama) + "\n");
    say(stdout, "SECCOMP_IOCTL_NOTIF_ADDFD: " +
                    (k.notification ? std::string{"unknown (no notification)"} : yes_or(k.addfd)) +
                    "\n");
    bool covered = report_modes(k);
    bool proxies = report_proxies();
    return covered && proxies ? 0 : 1;
}

}  // namespace lp::wrapper
