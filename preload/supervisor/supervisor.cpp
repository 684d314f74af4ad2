#include "supervisor/supervisor.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "runtime/log.hpp"
#include "runtime/tunnel.hpp"
#include "supervisor/dns_responder.hpp"
#include "supervisor/filter.hpp"
#include "supervisor/notification.hpp"

namespace lp::supervise {
namespace {

#if defined(__x86_64__)
// In the child: installs the filter, returns the listener fd or -errno.
// WAIT_KILLABLE_RECV: once we have taken a notification, a signal (Go
// preempts goroutines with SIGURG all the time) no longer interrupts and
// restarts the call half way through our handshake.
// Linux < 5.19 does not know that flag (EINVAL): there a signal can still
// restart a trapped call, which the supervisor answers again.
int install_filter(sock_fprog& fprog) noexcept {
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    long fd =
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fprog);
    if (fd < 0 && errno == EINVAL)
        fd =
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fprog);
    return fd < 0 ? -errno : static_cast<int>(fd);
}
#else
int install_filter(sock_fprog&) noexcept {
    return -ENOTSUP;  // the filter knows x86_64 system call numbers only
}
#endif

// Workers for the notifications: one slow proxy handshake must not hold
// up the other connects, so a notification waits for an idle worker or
// gets a new one (up to max_workers; past that they queue).
class pool {
public:
    explicit pool(const context& ctx) : ctx_{ctx} {}

    // `copy`: the program's socket, as handle_quick() left it. Never
    // throws: without memory for the queue, or a thread when there is
    // none, the call fails (refuse_unserved) and the supervisor goes on.
    void submit(const seccomp_notif& n, int copy) noexcept {
        std::unique_lock lk{m_};
        try {
            queue_.push_back({n, copy});
        } catch (...) {
            lk.unlock();
            refuse_unserved(ctx_, n, copy, ENOMEM);
            return;
        }
        if (queue_.size() > idle_ && workers_ < max_workers) {
            try {
                std::thread{&pool::work, this}.detach();  // it waits for the lock we hold
                ++workers_;
                return;
            } catch (...) {
                // The workers there are will get to it; with none, nobody would.
                if (workers_ == 0) {
                    queue_.pop_back();
                    lk.unlock();
                    refuse_unserved(ctx_, n, copy, EAGAIN);
                    return;
                }
            }
        }
        wake_.notify_one();
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
// Zero when it is larger than any we have room for (serve() then stops:
// the tree's calls fail, nothing passes unchecked).
constexpr std::size_t notif_room = 1024;

std::size_t notif_size() noexcept {
    seccomp_notif_sizes sizes{};
    if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) != 0) return sizeof(seccomp_notif);
    if (sizes.seccomp_notif > notif_room) return 0;
    return sizes.seccomp_notif > sizeof(seccomp_notif) ? sizes.seccomp_notif
                                                       : sizeof(seccomp_notif);
}

void reap(pid_t pid) noexcept {
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
}

// Serves notifications until every process under the filter has exited
// (the listener then reports POLLHUP).
void serve(const context& ctx) noexcept {
    pool workers{ctx};
    alignas(seccomp_notif) unsigned char buf[notif_room];
    std::size_t size = notif_size();
    while (size > 0) {
        pollfd p{ctx.listener, POLLIN, 0};
        if (::poll(&p, 1, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (!(p.revents & POLLIN)) {
            if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) break;
            continue;
        }
        std::memset(buf, 0, size);
        // ENOENT: the caller was killed or interrupted meanwhile; nothing to answer.
        if (::ioctl(ctx.listener, SECCOMP_IOCTL_NOTIF_RECV, buf) != 0) continue;
        seccomp_notif n;
        std::memcpy(&n, buf, sizeof n);
        if (int copy; !handle_quick(ctx, n, copy)) workers.submit(n, copy);
    }
    workers.drain();
}

// The supervisor's own descriptors: the listener, the placeholder map
// (whose /proc/<pid>/fd/<n> path the tree opens the map by), the DNS
// responder's two sockets and stderr (for log lines). Everything else the
// wrapper had — the caller's pipes above all — would otherwise stay open
// until the whole tree exits. Returns the listener's number, moved above
// stderr if it was below (the others are above already: they were made
// while stdin, stdout and stderr were open).
int keep_only(int listener, int map_fd) noexcept {
    if (listener <= STDERR_FILENO) {
        int moved = ::fcntl(listener, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        ::close(listener);
        listener = moved;
    }
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::close(null);
    }
    auto [udp, tcp] = dns::descriptors();
    std::array<int, 4> keep{listener, map_fd, udp, tcp};
    std::sort(keep.begin(), keep.end());
    int below = STDERR_FILENO;  // every descriptor in (below, next kept) goes
    for (int fd : keep) {
        if (fd <= below) continue;  // none (-1), or kept already
        if (fd - below > 1)
            ::close_range(static_cast<unsigned>(below + 1), static_cast<unsigned>(fd - 1), 0);
        below = fd;
    }
    ::close_range(static_cast<unsigned>(below) + 1, ~0U, 0);
    return listener;
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

// The DNS responder's sockets are bound before the wrapper's exec, so that
// the tree learns its port (LEAKPROOF_DNS: dynamic programs' DNS clients
// reach it too, interposer/dns_redirect.hpp); the supervisor serves them
// (in the descriptor table it shares with the wrapper until then). Without
// it, DNS queries fail (admit_to_responder); nothing else does.
void bind_responder(sockaddr_in& where) noexcept {
    if (dns::start(where)) return;
    int err = errno;
    where.sin_port = 0;
    auto ln = log::start();
    ln << "supervisor: cannot start the DNS responder: " << std::strerror(err)
       << " (DNS queries will fail)";
    log::emit(log::level::normal, ln);
}

// How the supervisor starts. The wrapper clones it with CLONE_VM |
// CLONE_FILES: it gets no copy of the wrapper's memory or descriptor table
// (on a VM every page table copy and copy-on-write fault counts), and it
// already holds the filter's listener, which the wrapper creates in the
// table they share — nothing to hand over, nothing to wait for. It runs
// only once the wrapper is gone: the wrapper's exec gives the wrapper a
// table and memory of its own (the listener is close-on-exec there) and
// leaves these to the supervisor, which the kernel then wakes through the
// futex below (set_tid_address: cleared and woken when a task leaves its
// memory). In between, the supervisor touches nothing the wrapper uses.
// Not for ThreadSanitizer, which handles clone() as a fork: the wrapper is
// never built with it.
struct shared_start {
    int map_fd = -1;                   // the placeholder map, kept open while the tree lives
    sockaddr_in dns{};                 // the responder's address (bind_responder)
    sigset_t mask{};                   // the wrapper's, for the supervisor once it runs
    int listener = -EIO;               // the filter's listener in the shared table, or -errno
    pid_t supervisor = -1;             // its pid, or -errno: from the middle
    char* supervisor_stack = nullptr;  // its top
    // The futex the supervisor waits on: 1 while the wrapper runs, 0 once
    // its exec (or exit) left, or it gave up (`listener` says why).
    std::uint32_t wrapper_running = 1;
    alignas(16) char middle_stack[64 * 1024];
};

constexpr std::size_t supervisor_stack_size = 8 << 20;  // a main thread's; touched on demand

// FUTEX_WAIT as a bare system call: glibc's syscall() would set errno on
// failure, and errno is the wrapper's while we share its memory.
void wait_while_one(std::uint32_t* word) noexcept {
    while (__atomic_load_n(word, __ATOMIC_ACQUIRE) == 1) {
#if defined(__x86_64__)
        long ret = SYS_futex;
        asm volatile("xor %%r10d, %%r10d\n\tsyscall"  // r10: no timeout
                     : "+a"(ret)
                     : "D"(word), "S"(long{FUTEX_WAIT}), "d"(1L)
                     : "rcx", "r10", "r11", "memory");
#endif  // elsewhere there is no filter, and so no supervisor (hand_over)
    }
}

void wake_supervisor(shared_start& s) noexcept {
    __atomic_store_n(&s.wrapper_running, 0, __ATOMIC_RELEASE);
    syscall(SYS_futex, &s.wrapper_running, FUTEX_WAKE, 1);
}

// The supervisor, once the wrapper is gone, in a session of its own (no
// terminal, nobody's child to wait for): serves the tree. The placeholder
// map goes with the last process that holds it: nothing to remove.
[[noreturn]] void supervisor_main(const shared_start& s) {
    ::setsid();
    // What a terminal sent the wrapper's group while we were in it waits
    // blocked; it was not meant for us.
    for (int sig : {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGHUP}) ::signal(sig, SIG_IGN);
    ::sigprocmask(SIG_SETMASK, &s.mask, nullptr);
    context ctx;
    ctx.listener = keep_only(s.listener, s.map_fd);
    ctx.dns = s.dns;
    if (ctx.listener >= 0) {
        ask_for_sync_wake_up(ctx.listener);
        serve(ctx);
    }
    _exit(0);
}

int supervisor_entry(void* arg) {
    auto& s = *static_cast<shared_start*>(arg);
    wait_while_one(&s.wrapper_running);
    if (s.listener < 0) _exit(0);  // the wrapper could not install the filter: it says why
    supervisor_main(s);
}

// The middle process only starts the supervisor and exits, so that the
// supervisor is not the command's child once the wrapper has become the
// command. The wrapper waits meanwhile (CLONE_VFORK).
int middle_entry(void* arg) {
    auto& s = *static_cast<shared_start*>(arg);
    pid_t pid = ::clone(supervisor_entry, s.supervisor_stack, CLONE_VM | CLONE_FILES | SIGCHLD, &s);
    s.supervisor = pid < 0 ? -errno : pid;
    return 0;
}

// Returns 0 once the supervisor waits for the wrapper's exec, or an errno.
// Signals stay blocked in both new processes until the supervisor runs.
int start_supervisor(shared_start& s) noexcept {
    void* stack = ::mmap(nullptr, supervisor_stack_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) return errno;
    s.supervisor_stack = static_cast<char*>(stack) + supervisor_stack_size;
    sigset_t all;
    ::sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, &s.mask);
    pid_t middle = ::clone(middle_entry, s.middle_stack + sizeof s.middle_stack,
                           CLONE_VM | CLONE_FILES | CLONE_VFORK | SIGCHLD, &s);
    int err = middle < 0 ? errno : 0;
    ::sigprocmask(SIG_SETMASK, &s.mask, nullptr);
    if (middle > 0) reap(middle);
    if (!err && s.supervisor < 0) err = -s.supervisor;
    if (err) ::munmap(stack, supervisor_stack_size);
    return err;
}

std::string setup_error(int err) {
    std::string why = std::string{"cannot install the seccomp supervisor: "} + std::strerror(err);
    // The kernel allows one notifying filter per process tree.
    if (err == EBUSY) why += " (already under a seccomp supervisor: a nested leakproof?)";
    return why;
}

}  // namespace

bool unavailable(int err) noexcept {
    return err == ENOSYS || err == EINVAL || err == ENOTSUP;
}

int hand_over(int map_fd, std::string& error, started& by) {
    auto prog = filter_program();
    if (prog.empty()) {
        error = setup_error(ENOTSUP);  // the filter knows x86_64 system call numbers only
        return -ENOTSUP;
    }
    sock_fprog fprog{static_cast<unsigned short>(prog.size()), prog.data()};
    // Never freed: from our exec on it is the supervisor's.
    auto* s = new (std::nothrow) shared_start;
    if (!s) {
        error = "cannot start the supervisor: " + std::string{std::strerror(ENOMEM)};
        return -ENOMEM;
    }
    s->map_fd = map_fd;
    bind_responder(s->dns);
    if (int err = start_supervisor(*s)) {
        dns::stop();
        delete s;
        error = "cannot start the supervisor: " + std::string{std::strerror(err)};
        return -err;
    }
    s->listener = install_filter(fprog);
    if (s->listener < 0) {
        int err = -s->listener;
        wake_supervisor(*s);  // it reads the error and exits
        dns::stop();          // the supervisor touches nothing once told to exit
        error = setup_error(err);
        return -err;
    }
    // The kernel clears the word and wakes the supervisor when our exec
    // (or exit, if the exec fails) leaves the memory we share.
    syscall(SYS_set_tid_address, &s->wrapper_running);
    by.pid = s->supervisor;
    by.dns_port = ntohs(s->dns.sin_port);
    return 0;
}

}  // namespace lp::supervise
