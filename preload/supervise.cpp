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
#include <vector>

#include "supervise_dns.hpp"
#include "supervise_handle.hpp"

namespace lp::supervise {
namespace {

constexpr int exit_not_found = 127;
constexpr int exit_cannot_run = 126;

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

// What the child tells the parent before exec: the listener's number in
// its own table (the parent takes a copy with pidfd_getfd), or -errno. Not
// sent with SCM_RIGHTS: the child's sendmsg() would already stop in the
// filter and wait for a supervisor that does not have the listener yet.
struct hello {
    int listener;
};

// The child, between fork and exec: async-signal-safe calls only (the
// parent may have threads). `sock` is its end of a socketpair.
[[noreturn]] void child_main(int sock, sock_fprog& prog, const char* path, char** argv) {
    hello h{install_filter(prog)};
    if (::write(sock, &h, sizeof h) != sizeof h || h.listener < 0) _exit(exit_cannot_run);
    char go = 0;
    // Waits until the parent holds its copy: the listener is O_CLOEXEC and
    // closes at exec, and with it the only way to answer the filter.
    if (::read(sock, &go, 1) != 1) _exit(exit_cannot_run);
    ::close(sock);
    ::execv(path, argv);
    int err = errno;
    const char* what = std::strerror(err);
    (void)!::write(2, "leakproof: ", 11);
    (void)!::write(2, path, std::strlen(path));
    (void)!::write(2, ": ", 2);
    (void)!::write(2, what, std::strlen(what));
    (void)!::write(2, "\n", 1);
    _exit(err == ENOENT ? exit_not_found : exit_cannot_run);
}

// The parent's copy of the child's listener, or -errno.
int take_listener(pid_t child, int sock) noexcept {
    hello h{};
    ssize_t n;
    while ((n = ::read(sock, &h, sizeof h)) < 0 && errno == EINTR) {
    }
    if (n != sizeof h) return -EIO;
    if (h.listener < 0) return h.listener;
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
    if (pidfd < 0) return -errno;
    int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, h.listener, 0));
    int err = errno;
    ::close(pidfd);
    return fd < 0 ? -err : fd;
}

// Workers for the notifications: one slow proxy handshake must not hold
// up the other connects, so a notification waits for an idle worker or
// gets a new one (up to max_workers; past that they queue).
class pool {
public:
    explicit pool(const context& ctx) : ctx_{ctx} {}

    void submit(const seccomp_notif& n) {
        std::lock_guard lk{m_};
        queue_.push_back(n);
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
            seccomp_notif n = queue_.front();
            queue_.pop_front();
            lk.unlock();
            handle(ctx_, n);
            lk.lock();
        }
        --workers_;
        done_.notify_all();
    }

    const context& ctx_;
    std::mutex m_;
    std::condition_variable wake_, done_;
    std::deque<seccomp_notif> queue_;
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

int wait_child(pid_t pid) noexcept {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

// Serves notifications until every process under the filter has exited
// (the listener then reports POLLHUP), and reaps the child on the way: a
// zombie still holds the filter, so waiting for POLLHUP first would hang.
// Returns the child's exit code.
int serve(const context& ctx, pid_t child, int child_fd) {
    pool workers{ctx};
    std::vector<unsigned char> buf(notif_size());
    int rc = -1;
    for (;;) {
        pollfd p[2] = {{ctx.listener, POLLIN, 0}, {rc < 0 ? child_fd : -1, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;  // a signal we forward to the child
            break;
        }
        if (p[1].revents & POLLIN) rc = wait_child(child);
        if (!(p[0].revents & POLLIN)) {
            if (p[0].revents & (POLLHUP | POLLERR | POLLNVAL)) break;
            continue;
        }
        std::memset(buf.data(), 0, buf.size());
        // ENOENT: the caller was killed or interrupted meanwhile; nothing to answer.
        if (::ioctl(ctx.listener, SECCOMP_IOCTL_NOTIF_RECV, buf.data()) != 0) continue;
        seccomp_notif n;
        std::memcpy(&n, buf.data(), sizeof n);
        if (!handle_quick(ctx, n)) workers.submit(n);
    }
    workers.drain();
    return rc < 0 ? wait_child(child) : rc;
}

std::string setup_error(int err) {
    std::string why = std::string{"cannot install the seccomp supervisor: "} + std::strerror(err);
    // The kernel allows one notifying filter per process tree.
    if (err == EBUSY) why += " (already under a seccomp supervisor: a nested leakproof?)";
    return why;
}

}  // namespace

int run(const std::string& path, const std::vector<std::string>& args, void (*started)(pid_t),
        std::string& error) {
    context ctx;
    if (!dns::start(ctx.dns)) {
        int err = errno;
        error = "cannot start the supervisor's DNS responder: " + std::string{std::strerror(err)};
        return -err;
    }
    // Everything the child needs is built before fork: it may not allocate.
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    auto prog = filter_program();
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        int err = errno;
        error = setup_error(err);
        return -err;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        int err = errno;
        error = std::string{"fork: "} + std::strerror(err);
        ::close(sv[0]);
        ::close(sv[1]);
        return -err;
    }
    if (pid == 0) child_main(sv[1], fprog, path.c_str(), argv.data());
    ::close(sv[1]);
    ctx.listener = take_listener(pid, sv[0]);
    if (ctx.listener < 0) {
        // The child has not exec'd: closing our end makes it exit.
        ::close(sv[0]);
        wait_child(pid);
        error = setup_error(-ctx.listener);
        return ctx.listener;
    }
    // Readable once the child has exited (our child: its pid cannot be reused
    // before we reap it).
    int child_fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (child_fd < 0) {
        int err = errno;
        ::close(sv[0]);  // the child has not exec'd: it exits
        wait_child(pid);
        error = setup_error(err);
        return -err;
    }
    started(pid);
    char go = 1;
    (void)!::write(sv[0], &go, 1);
    ::close(sv[0]);
    int rc = serve(ctx, pid, child_fd);
    ::close(child_fd);
    ::close(ctx.listener);
    return rc;
}

}  // namespace lp::supervise
