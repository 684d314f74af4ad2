#include "supervise.hpp"

#include <errno.h>
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

#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "log.hpp"
#include "supervise_dns.hpp"
#include "supervise_handle.hpp"
#include "tunnel.hpp"

namespace lp::supervise {
namespace {

#if defined(__x86_64__)
constexpr std::uint32_t our_arch = AUDIT_ARCH_X86_64;
constexpr std::uint32_t x32_bit = 0x40000000;  // __X32_SYSCALL_BIT

constexpr std::uint32_t at(std::size_t off) {
    return static_cast<std::uint32_t>(off);
}

// Offsets in seccomp_data of the low 32 bits of argument i (x86_64 is
// little-endian) and of the high ones.
constexpr std::uint32_t arg_low(int i) {
    return at(offsetof(seccomp_data, args) + static_cast<std::size_t>(i) * sizeof(__u64));
}
constexpr std::uint32_t arg_high(int i) {
    return arg_low(i) + 4;
}

// The smallest address that can name an IPv4 or IPv6 destination: the
// kernel refuses shorter ones (EINVAL) for every IP socket, so calls with a
// shorter one (netlink's 12 bytes, most of all) run without a round trip.
constexpr std::uint32_t min_ip_addrlen = sizeof(sockaddr_in);

// Straight-line BPF with forward jumps to named places, resolved when the
// program is built, so that nobody counts instructions by hand.
class bpf {
public:
    enum place { allow, notify, enosys, eperm, kill, connect_len, sendto_addr, sendto_len, places };

    void load(std::uint32_t offset) { code_.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
    void mask(std::uint32_t k) { code_.push_back(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, k)); }
    // Go to `to` if A == k, A != k, A >= k; else on to the next instruction.
    void if_eq(std::uint32_t k, place to) { jump(BPF_JEQ, k, to, next); }
    void unless_eq(std::uint32_t k, place to) { jump(BPF_JEQ, k, next, to); }
    void if_ge(std::uint32_t k, place to) { jump(BPF_JGE, k, to, next); }
    void ret(std::uint32_t what) { code_.push_back(BPF_STMT(BPF_RET | BPF_K, what)); }
    void here(place p) { at_[p] = code_.size(); }

    std::vector<sock_filter> done() {
        for (auto [i, yes, no] : jumps_) {
            code_[i].jt = offset(i, yes);
            code_[i].jf = offset(i, no);
        }
        return code_;
    }

private:
    static constexpr int next = -1;

    struct fixup {
        std::size_t index;
        int yes, no;
    };

    void jump(std::uint16_t op, std::uint32_t k, int yes, int no) {
        jumps_.push_back({code_.size(), yes, no});
        code_.push_back(BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 0));
    }
    std::uint8_t offset(std::size_t from, int to) const {
        return to == next ? 0 : static_cast<std::uint8_t>(at_[to] - from - 1);
    }

    std::vector<sock_filter> code_;
    std::vector<fixup> jumps_;
    std::size_t at_[places] = {};
};

constexpr std::uint32_t sock_packet = 10;  // SOCK_PACKET: AF_INET's old name for packet sockets

// The filter. Every test reads registers the kernel copied, which the
// program cannot change after the check. sendto() without an address is a
// send on a connected socket, whose destination connect() already checked.
// Packet sockets (root only) would send frames past every check: refused.
std::vector<sock_filter> filter_program() {
    using p = bpf::place;
    bpf f;
    f.load(at(offsetof(seccomp_data, arch)));
    f.unless_eq(our_arch, p::kill);  // i386 calls through int 0x80
    f.load(at(offsetof(seccomp_data, nr)));
    f.if_ge(x32_bit, p::kill);  // x32 numbers
    f.if_eq(SYS_connect, p::connect_len);
    f.if_eq(SYS_sendto, p::sendto_addr);
    f.if_eq(SYS_sendmsg, p::notify);
    f.if_eq(SYS_sendmmsg, p::notify);
    f.if_eq(SYS_io_uring_setup, p::enosys);  // its submissions would bypass the filter
    f.unless_eq(SYS_socket, p::allow);
    f.load(arg_low(0));
    f.if_eq(AF_PACKET, p::eperm);
    f.load(arg_low(1));
    f.mask(0xf);  // the type without SOCK_NONBLOCK | SOCK_CLOEXEC
    f.if_eq(sock_packet, p::eperm);
    f.ret(SECCOMP_RET_ALLOW);

    f.here(p::sendto_addr);
    f.load(arg_low(4));
    f.unless_eq(0, p::sendto_len);
    f.load(arg_high(4));
    f.if_eq(0, p::allow);
    f.here(p::sendto_len);
    f.load(arg_low(5));  // the kernel reads addrlen as an int: the low half
    f.if_ge(min_ip_addrlen, p::notify);
    f.ret(SECCOMP_RET_ALLOW);

    f.here(p::connect_len);
    f.load(arg_low(2));
    f.if_eq(tunnel::own_connect_len, p::allow);  // the interposer's, to the proxy
    f.if_ge(min_ip_addrlen, p::notify);

    f.here(p::allow);
    f.ret(SECCOMP_RET_ALLOW);
    f.here(p::notify);
    f.ret(SECCOMP_RET_USER_NOTIF);
    f.here(p::enosys);
    f.ret(SECCOMP_RET_ERRNO | ENOSYS);
    f.here(p::eperm);
    f.ret(SECCOMP_RET_ERRNO | EPERM);
    f.here(p::kill);
    f.ret(SECCOMP_RET_KILL_PROCESS);
    return f.done();
}

// In the child: installs the filter, returns the listener fd or -errno.
// WAIT_KILLABLE_RECV: once we have taken a notification, a signal (Go
// preempts goroutines with SIGURG all the time) no longer interrupts and
// restarts the call half way through our handshake.
int install_filter(sock_fprog& fprog) noexcept {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    long fd =
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fprog);
    return fd < 0 ? -errno : static_cast<int>(fd);
}
#else
std::vector<sock_filter> filter_program() {
    return {};
}

int install_filter(sock_fprog&) noexcept {
    return -ENOTSUP;  // the filter knows x86_64 system call numbers only
}
#endif

// The wrapper and its supervisor, over a socketpair, in this order:
//   supervisor → wrapper   its pid (the wrapper lets it ptrace it: Yama)
//   wrapper → supervisor   the listener's number in the wrapper's table,
//                          or -errno if the filter could not be installed
//   supervisor → wrapper   0 once it holds its own copy (pidfd_getfd), or
//                          -errno; the wrapper then execs the program.
// Not sent with SCM_RIGHTS: the wrapper's sendmsg() would stop in its own
// filter, waiting for a supervisor that does not have the listener yet.
bool send_int(int sock, int v) noexcept {
    return ::write(sock, &v, sizeof v) == static_cast<ssize_t>(sizeof v);
}

bool receive_int(int sock, int& v) noexcept {
    ssize_t n;
    while ((n = ::read(sock, &v, sizeof v)) < 0 && errno == EINTR) {
    }
    return n == static_cast<ssize_t>(sizeof v);
}

// Workers for the notifications: one slow proxy handshake must not hold
// up the other connects, so a notification waits for an idle worker or
// gets a new one (up to max_workers; past that they queue).
class pool {
public:
    explicit pool(const context& ctx) : ctx_{ctx} {}

    // `copy`: the program's socket, as handle_quick() left it.
    void submit(const seccomp_notif& n, int copy) {
        std::lock_guard lk{m_};
        queue_.push_back({n, copy});
        if (queue_.size() > idle_ && workers_ < max_workers) {
            ++workers_;
            std::thread{&pool::work, this}.detach();
        } else {
            wake_.notify_one();
        }
    }

    // Lets the workers finish what is queued, then waits for them to end.
    void drain() {
        std::unique_lock lk{m_};
        stopping_ = true;
        wake_.notify_all();
        done_.wait(lk, [this] { return workers_ == 0; });
    }

private:
    static constexpr std::size_t max_workers = 256;

    void work() {
        std::unique_lock lk{m_};
        for (;;) {
            ++idle_;
            wake_.wait(lk, [this] { return !queue_.empty() || stopping_; });
            --idle_;
            if (queue_.empty()) break;
            auto [n, copy] = queue_.front();
            queue_.pop_front();
            lk.unlock();
            handle(ctx_, n, copy);
            lk.lock();
        }
        --workers_;
        done_.notify_all();
    }

    const context& ctx_;
    std::mutex m_;
    std::condition_variable wake_, done_;
    std::deque<std::pair<seccomp_notif, int>> queue_;
    std::size_t idle_ = 0;
    std::size_t workers_ = 0;
    bool stopping_ = false;
};

// The kernel's notification may be larger than our header's (a newer
// kernel): receive into a buffer of its size, zeroed as it requires.
std::size_t notif_size() noexcept {
    seccomp_notif_sizes sizes{};
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return sizeof(seccomp_notif);
    return sizes.seccomp_notif > sizeof(seccomp_notif) ? sizes.seccomp_notif
                                                       : sizeof(seccomp_notif);
}

void reap(pid_t pid) noexcept {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

// Serves notifications until every process under the filter has exited
// (the listener then reports POLLHUP).
void serve(const context& ctx) {
    pool workers{ctx};
    std::vector<unsigned char> buf(notif_size());
    for (;;) {
        pollfd p{ctx.listener, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (!(p.revents & POLLIN)) {
            if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) break;
            continue;
        }
        std::memset(buf.data(), 0, buf.size());
        // ENOENT: the caller was killed or interrupted meanwhile; nothing to answer.
        if (::ioctl(ctx.listener, SECCOMP_IOCTL_NOTIF_RECV, buf.data()) != 0) continue;
        seccomp_notif n;
        std::memcpy(&n, buf.data(), sizeof n);
        if (int copy; !handle_quick(ctx, n, copy)) workers.submit(n, copy);
    }
    workers.drain();
}

// The supervisor's own descriptors: only its end of the socketpair and
// stderr (for log lines). Anything else it inherited — the caller's
// pipes above all — would otherwise stay open until the whole tree exits.
void keep_only(int sock) noexcept {
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::close(null);
    }
    for (int fd = 3; fd < sock; ++fd) ::close(fd);
    ::close_range(static_cast<unsigned>(sock) + 1, ~0U, 0);
}

// Linux 6.6: the kernel wakes the supervisor on the CPU of the task that
// stopped, and that task's CPU goes to it at once — one switch instead of a
// wake-up on another CPU each way (tens of µs on a VM). Older kernels
// refuse the flag; the notifications then work as before.
void ask_for_sync_wake_up(int listener) noexcept {
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
    constexpr unsigned long SECCOMP_IOCTL_NOTIF_SET_FLAGS = _IOW(SECCOMP_IOC_MAGIC, 4, __u64);
#endif
    constexpr unsigned long sync_wake_up = 1;  // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
    (void)::ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, sync_wake_up);
}

// The DNS responder is started once the wrapper is on its way: the
// program's calls wait in the kernel until we serve. Without it, the
// queries of static programs fail (admit_to_responder); nothing else does.
void start_responder(context& ctx) noexcept {
    if (dns::start(ctx.dns)) return;
    int err = errno;
    ctx.dns.sin_port = 0;
    auto ln = log::start();
    ln << "supervisor: cannot start the DNS responder: " << std::strerror(err)
       << " (the DNS queries of static programs will fail)";
    log::emit(log::level::normal, ln);
}

// The supervisor: a grandchild of the wrapper in a session of its own
// (no terminal signals, nobody's child to wait for). Takes the wrapper's
// listener, serves the tree, removes the placeholder map when it is gone.
[[noreturn]] void supervisor_main(int sock, pid_t wrapper, const std::string& map) {
    ::setsid();
    keep_only(sock);
    int listener = -1;
    if (!receive_int(sock, listener) || listener < 0)
        _exit(0);  // the wrapper could not install the filter: it says why
    // The wrapper waits from here to its exec: only the copy of the listener.
    context ctx;
    ctx.listener = copy_fd(wrapper, listener);
    send_int(sock, ctx.listener >= 0 ? 0 : ctx.listener);
    ::close(sock);
    if (ctx.listener >= 0) {
        ask_for_sync_wake_up(ctx.listener);
        start_responder(ctx);
        serve(ctx);
    }
    if (!map.empty()) ::unlink(map.c_str());
    _exit(0);
}

// Starts the supervisor: a grandchild, so that it is not the command's
// child once the wrapper has become the command. The middle process is a
// vfork child: it borrows the wrapper's memory instead of copying it (so the
// wrapper's pages are copied once, for the supervisor; on a VM every page
// table copy and copy-on-write fault counts), forks the supervisor, writes
// its pid into the socketpair and exits, which is when the wrapper resumes
// (it reaps the middle later, once the supervisor is ready). The pid goes
// through the socket, not the shared memory: under ThreadSanitizer vfork
// is a plain fork. Returns our end of the socketpair, or -errno.
int start_supervisor(const std::string& map, pid_t& middle, pid_t& supervisor) noexcept {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -errno;
    const pid_t wrapper = ::getpid();
    middle = ::vfork();
    if (middle == 0) {
        pid_t grandchild = ::fork();
        if (grandchild == 0) supervisor_main(sv[1], wrapper, map);
        send_int(sv[1], grandchild < 0 ? -errno : grandchild);
        _exit(0);
    }
    int err = middle < 0 ? errno : 0;
    ::close(sv[1]);
    if (middle > 0 && !receive_int(sv[0], supervisor)) err = EIO;
    if (!err && supervisor < 0) err = -supervisor;
    if (err) {
        if (middle > 0) reap(middle);
        ::close(sv[0]);
        return -err;
    }
    return sv[0];
}

std::string setup_error(int err) {
    std::string why = std::string{"cannot install the seccomp supervisor: "} + std::strerror(err);
    // The kernel allows one notifying filter per process tree.
    if (err == EBUSY) why += " (already under a seccomp supervisor: a nested leakproof?)";
    return why;
}

}  // namespace

int hand_over(const std::string& map, std::string& error) {
    auto prog = filter_program();
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    pid_t middle = -1, supervisor = -1;
    int sock = start_supervisor(map, middle, supervisor);
    if (sock < 0) {
        error = "cannot start the supervisor: " + std::string{std::strerror(-sock)};
        return sock;
    }
    // Yama (ptrace_scope 1) lets only ancestors take our descriptors, and
    // the supervisor is a descendant: name it as the one exception.
    ::prctl(PR_SET_PTRACER, supervisor, 0, 0, 0);
    int listener = install_filter(fprog);
    int ready = listener;
    if (!send_int(sock, listener) || (listener >= 0 && !receive_int(sock, ready))) ready = -EIO;
    ::close(sock);
    ::prctl(PR_SET_PTRACER, 0, 0, 0, 0);
    if (listener >= 0) ::close(listener);  // the supervisor's copy is the one that serves
    reap(middle);                          // the program must not inherit it
    if (ready < 0) error = setup_error(-ready);
    return ready < 0 ? ready : 0;
}

}  // namespace lp::supervise
