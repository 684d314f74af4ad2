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

// The filter. sendto() without an address (args[4] == NULL, both halves) is
// a send on a connected socket, whose destination connect() already
// checked: allowed here, without a round trip to the supervisor. Every test
// reads registers the kernel copied, which the program cannot change after
// the check. Jump offsets count instructions after the jump; the labels
// are the comments on the right.
std::vector<sock_filter> filter_program() {
    constexpr auto nr = at(offsetof(seccomp_data, nr));
    constexpr auto arch = at(offsetof(seccomp_data, arch));
    constexpr auto arg4 = at(offsetof(seccomp_data, args) + 4 * sizeof(__u64));
    return {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arch),                       // 0
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, our_arch, 1, 0),            // 1
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),            // 2 (i386 via int 0x80)
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, nr),                         // 3
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, x32_bit, 0, 1),             // 4
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),            // 5 (x32 numbers)
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_connect, 9, 0),         // 6 → notify
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmsg, 8, 0),         // 7 → notify
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendmmsg, 7, 0),        // 8 → notify
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_io_uring_setup, 7, 0),  // 9 → enosys
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_sendto, 0, 4),          // 10 → 11 or allow
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg4),                       // 11 low half
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),                   // 12 → 13 or notify
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg4 + 4),                   // 13 high half
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),                   // 14 → allow or notify
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),                   // 15 allow
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),              // 16 notify
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),          // 17 enosys
    };
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
        if (!handle_quick(ctx, n)) workers.submit(n);
    }
    workers.drain();
}

int wait_child(pid_t pid) noexcept {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
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
    started(pid);
    char go = 1;
    (void)!::write(sv[0], &go, 1);
    ::close(sv[0]);
    std::thread server{serve, std::cref(ctx)};
    int rc = wait_child(pid);
    server.join();
    ::close(ctx.listener);
    return rc;
}

}  // namespace lp::supervise
