#include "interposer/pending.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cstdint>
#include <new>
#include <optional>

#include "interposer/fdtable.hpp"
#include "interposer/hooks.hpp"
#include "interposer/hooks/epoll.hpp"
#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "runtime/config.hpp"
#include "runtime/path.hpp"
#include "runtime/real.hpp"
#include "runtime/route.hpp"
#include "runtime/tunnel.hpp"

namespace lp::async {
namespace {

using leakproof::action_kind;

constexpr int max_fd = 16384;  // the same range fdstate remembers peers for

std::atomic<int> table[max_fd];  // idle, pending or a kept errno
std::atomic<int> pending_count{0};
std::mutex mu;
waiter* waiters = nullptr;

bool in_range(int fd) noexcept {
    return fd >= 0 && fd < max_fd;
}

// One handshake under way. Heap-allocated and never moved: the handshake
// and its request hold views into `d` (the target name).
struct entry {
    entry* prev = nullptr;  // in the list of handshakes under way, or of spares
    entry* next = nullptr;
    int fd = -1;
    std::uint64_t gen = 0;  // tells this entry's epoll events from a reused fd's
    dev_t dev = 0;          // the socket's identity, checked before touching
    ino_t ino = 0;          //   the fd from a timeout (it may have been reused)
    policy::decision d;
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    path::chain chain;       // the decision's route's, or the default one
    path::walk walk;         // the chain mode's choice of hops, attempt by attempt
    path::selection sel;     // this attempt's hops
    std::size_t hop = 0;     // position in `sel` of the hop being talked to
    bool connecting = true;  // waiting for the TCP connect to the first proxy
    std::size_t sent = 0;    // bytes of the current send action already written
    std::optional<leakproof::client_handshake> hs;
    tunnel::deadline whole{0};     // the whole connect's
    tunnel::deadline deadline{0};  // this attempt's (path.hpp: hop timeout)
};

// The helper thread's epoll set and its wake-up eventfd (new entries change
// the earliest deadline). Reset in a forked child, which has no helper.
struct driver {
    int ep = -1;
    int wake = -1;
    bool running = false;
};

driver drv;
std::uint64_t next_gen = 1;

// The handshakes under way, by fd and as a list (for the deadlines). An
// entry that is done goes to the spares and is used again: a connect
// allocates only while the number under way grows past its earlier peak.
// All under mu.
entry* by_fd[max_fd];
entry* under_way = nullptr;
entry* spares = nullptr;

entry* find(int fd) noexcept {
    return in_range(fd) ? by_fd[fd] : nullptr;
}

void add(entry* e) noexcept {
    by_fd[e->fd] = e;
    e->prev = nullptr;
    e->next = under_way;
    if (under_way != nullptr) under_way->prev = e;
    under_way = e;
}

void remove(entry* e) noexcept {
    if (by_fd[e->fd] == e) by_fd[e->fd] = nullptr;
    (e->prev != nullptr ? e->prev->next : under_way) = e->next;
    if (e->next != nullptr) e->next->prev = e->prev;
}

entry* take_spare() noexcept {
    entry* e = spares;
    if (e == nullptr) return new (std::nothrow) entry;
    spares = e->next;
    e->~entry();
    return new (e) entry{};
}

void keep_spare(entry* e) noexcept {
    e->next = spares;
    spares = e;
}

constexpr std::uint64_t wake_tag = 0;

std::uint64_t tag(const entry& e) noexcept {
    return (e.gen << 16) | static_cast<std::uint64_t>(e.fd);
}

void poke(int efd) noexcept {
    std::uint64_t one = 1;
    (void)!real::fn().write(efd, &one, sizeof one);
}

void wake_waiters() noexcept {
    for (waiter* w = waiters; w != nullptr; w = w->next) poke(w->efd);
}

// ---- finishing -------------------------------------------------------------

bool same_socket(const entry& e) noexcept {
    struct stat st;
    return fstat(e.fd, &st) == 0 && st.st_dev == e.dev && st.st_ino == e.ino;
}

int errno_of(std::error_code ec) noexcept {
    int e = leakproof::to_errno(ec);
    return e > 0 ? e : ECONNREFUSED;
}

// Ends a handshake: the state the program will see is in place before its
// epoll registrations come back and its poll/select waiters wake. The log
// line comes first: a program may exit the moment it sees the outcome.
void finish(entry* e, std::error_code ec) noexcept {
    tunnel::report(e->d, e->sel, ec, e->hop);
    remove(e);
    pending_count.fetch_sub(1, std::memory_order_relaxed);
    bool ours = same_socket(*e);
    if (ours) {
        real::fn().epoll_ctl(drv.ep, EPOLL_CTL_DEL, e->fd, nullptr);
        if (!ec) fdstate::remember_peer(e->fd, reinterpret_cast<sockaddr*>(&e->peer), e->peer_len);
        // Before the shutdown: its EPOLLHUP reaches even a stripped
        // registration, and the woken program must find the errno.
        table[e->fd].store(ec ? errno_of(ec) : idle, std::memory_order_release);
        // Readable, writable and hung up for every readiness API, like a
        // kernel connect that failed; SO_ERROR then says why.
        if (ec) shutdown(e->fd, SHUT_RDWR);
        epollreg::restore(e->fd);
    } else {
        table[e->fd].store(idle, std::memory_order_release);
    }
    wake_waiters();
    keep_spare(e);
}

void fail(entry* e, int err) noexcept {
    finish(e, {err, std::generic_category()});
}

// ---- stepping --------------------------------------------------------------

void arm(entry* e, std::uint32_t events) noexcept;

// Starts the TCP connect of e's next attempt; the error when even that
// failed at once for every hop the walk offers.
std::error_code begin_attempt(entry* e) noexcept {
    std::error_code ec = leakproof::error::no_proxy;
    while (e->walk.next(e->sel)) {
        e->hop = 0;
        e->hs.reset();
        e->connecting = true;
        e->sent = 0;
        e->deadline = tunnel::attempt_deadline(e->whole, e->sel);
        ec = tunnel::connect_hop(e->fd, e->peer.ss_family, e->chain.hops[e->sel.hop[0]]);
        if (!ec || config::get().path.how == path::mode::strict) return ec;
        tunnel::report_down(e->d, e->chain, e->sel, 0, ec);
        e->walk.down(e->sel, 0);
        if (auto dc = tunnel::disconnect(e->fd)) return dc;
    }
    return ec;
}

// A failed step: the next attempt without the hop that is down, when the
// chain mode allows one and a hop is left; otherwise the end.
void give_up(entry* e, std::error_code ec) noexcept {
    if (config::get().path.how == path::mode::strict || e->whole.remaining_ms() == 0)
        return finish(e, ec);
    int down = path::blame(e->sel, e->hop, ec);
    if (down < 0) return finish(e, ec);
    tunnel::report_down(e->d, e->chain, e->sel, static_cast<std::size_t>(down), ec);
    e->walk.down(e->sel, static_cast<std::size_t>(down));
    if (auto dc = tunnel::disconnect(e->fd)) return finish(e, dc);
    if (auto again = begin_attempt(e))
        return finish(e, again == leakproof::error::no_proxy ? ec : again);
    arm(e, EPOLLOUT);
}

void give_up(entry* e, int err) noexcept {
    give_up(e, {err, std::generic_category()});
}

// Waits (in the helper's epoll set) for `events`, once.
void arm(entry* e, std::uint32_t events) noexcept {
    epoll_event ev{};
    ev.events = events | EPOLLONESHOT;
    ev.data.u64 = tag(*e);
    if (real::fn().epoll_ctl(drv.ep, EPOLL_CTL_MOD, e->fd, &ev) != 0) fail(e, errno);
}

// The TCP connect to the first proxy has finished one way or the other.
bool connected(entry* e) noexcept {
    int err = 0;
    socklen_t len = sizeof err;
    if (real::fn().getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
        give_up(e, err);
        return false;
    }
    e->connecting = false;
    return true;
}

// Next hop's request, or the end of the chain. False when finished.
bool next_hop(entry* e) noexcept {
    if (e->hs) ++e->hop;
    if (e->hop == e->sel.len) {
        finish(e, {});
        return false;
    }
    e->hs.emplace(
        tunnel::hop_request(e->chain, e->sel, e->hop, tunnel::target_of(e->d), e->d.target.port));
    e->sent = 0;
    return true;
}

enum class progress { more, wait, ended };

progress do_send(entry* e, std::span<const std::uint8_t> bytes) noexcept {
    auto rest = bytes.subspan(e->sent);
    // MSG_DONTWAIT: the program may make the socket blocking meanwhile.
    ssize_t n = real::fn().send(e->fd, rest.data(), rest.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        arm(e, EPOLLOUT);
        return progress::wait;
    }
    if (n < 0) {
        give_up(e, errno);
        return progress::ended;
    }
    e->sent += static_cast<std::size_t>(n);
    if (e->sent == bytes.size()) {
        e->sent = 0;
        e->hs->sent();
    }
    return progress::more;
}

progress do_receive(entry* e, std::span<std::uint8_t> space) noexcept {
    ssize_t n = real::fn().recv(e->fd, space.data(), space.size(), MSG_DONTWAIT);
    if (n > 0) {
        e->hs->received(static_cast<std::size_t>(n));
    } else if (n == 0 || errno == ECONNRESET) {
        e->hs->closed();
    } else if (errno == EAGAIN || errno == EINTR) {
        arm(e, EPOLLIN);
        return progress::wait;
    } else {
        give_up(e, errno);
        return progress::ended;
    }
    return progress::more;
}

progress act(entry* e) noexcept {
    auto a = e->hs->next();
    switch (a.kind) {
        case action_kind::send: return do_send(e, a.bytes);
        case action_kind::receive: return do_receive(e, a.space);
        case action_kind::done: return next_hop(e) ? progress::more : progress::ended;
        case action_kind::failed: give_up(e, a.error); return progress::ended;
    }
    return progress::ended;
}

// Runs the handshake as far as the socket allows without blocking.
void step(entry* e) noexcept {
    if (e->connecting && !(connected(e) && next_hop(e))) return;
    while (act(e) == progress::more) {
    }
}

// ---- the helper thread -----------------------------------------------------

int next_timeout_ms() noexcept {
    long best = -1;
    for (entry* e = under_way; e != nullptr; e = e->next) {
        long ms = e->deadline.remaining_ms();
        if (best < 0 || ms < best) best = ms;
    }
    return best > 1000000 ? 1000000 : static_cast<int>(best);
}

void expire() noexcept {
    for (entry* e = under_way; e != nullptr;) {
        entry* next = e->next;  // finishing takes e off the list
        if (e->deadline.remaining_ms() == 0) give_up(e, ETIMEDOUT);
        e = next;
    }
}

void dispatch(std::uint64_t data) noexcept {
    if (data == wake_tag) {
        std::uint64_t n;
        (void)!real::fn().read(drv.wake, &n, sizeof n);
        return;
    }
    entry* e = find(static_cast<int>(data & 0xffff));
    if (e != nullptr && tag(*e) == data) step(e);
}

void* run(void*) {
    epoll_event evs[64];
    for (;;) {
        int timeout, ep;
        {
            std::lock_guard lk{mu};
            timeout = next_timeout_ms();
            ep = drv.ep;
        }
        int n = epoll_wait(ep, evs, 64, timeout);
        std::lock_guard lk{mu};
        for (int i = 0; i < n; ++i) dispatch(evs[i].data.u64);
        expire();
    }
    return nullptr;
}

// The program's signals must never land on our thread.
bool spawn_helper() noexcept {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t;
    bool ok = pthread_create(&t, &attr, run, nullptr) == 0;
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return ok;
}

void close_driver_fds() noexcept {
    if (drv.ep >= 0) real::fn().close(drv.ep);
    if (drv.wake >= 0) real::fn().close(drv.wake);
    drv = driver{};
}

// Under mu. The epoll set, eventfd and thread, made on first use.
bool ensure_driver() noexcept {
    if (drv.running) return true;
    drv.ep = epoll_create1(EPOLL_CLOEXEC);
    drv.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_tag;
    if (drv.ep < 0 || drv.wake < 0 ||
        real::fn().epoll_ctl(drv.ep, EPOLL_CTL_ADD, drv.wake, &ev) != 0 || !spawn_helper()) {
        close_driver_fds();
        return false;
    }
    drv.running = true;
    return true;
}

// ---- starting --------------------------------------------------------------

entry* make_entry(int fd, const sockaddr* sa, socklen_t len, const policy::decision& d) noexcept {
    struct stat st;
    if (len > sizeof(sockaddr_storage) || fstat(fd, &st) != 0) return nullptr;
    entry* e = take_spare();
    if (e == nullptr) return nullptr;
    e->fd = fd;
    e->gen = next_gen++;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->d = d;
    memcpy(&e->peer, sa, len);
    e->peer_len = len;
    e->whole = tunnel::deadline{config::get().timeout_ms};
    e->chain = route::chain_for(d);
    e->walk = path::walk{e->chain, config::get().path};
    e->sel.len = 0;
    return e;
}

// The non-blocking connect to the attempt's first proxy: 0 when under way.
// The socket's family is that of the program's address (the kernel refuses
// any other).
int connect_first_hop(entry& e) noexcept {
    auto ec = begin_attempt(&e);
    return ec ? errno_of(ec) : 0;
}

// Under mu: registers e and masks fd; on failure undoes everything.
int begin(entry* e) noexcept {
    table[e->fd].store(pending, std::memory_order_release);
    pending_count.fetch_add(1, std::memory_order_relaxed);
    add(e);
    epollreg::mask(e->fd);
    int err = connect_first_hop(*e);
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLONESHOT;
    ev.data.u64 = tag(*e);
    if (err == 0 && real::fn().epoll_ctl(drv.ep, EPOLL_CTL_ADD, e->fd, &ev) != 0) err = errno;
    if (err != 0) {
        remove(e);
        pending_count.fetch_sub(1, std::memory_order_relaxed);
        table[e->fd].store(idle, std::memory_order_release);
        epollreg::restore(e->fd);
    }
    return err;
}

}  // namespace

int status(int fd) noexcept {
    return in_range(fd) ? table[fd].load(std::memory_order_acquire) : idle;
}

bool any_pending() noexcept {
    return pending_count.load(std::memory_order_relaxed) > 0;
}

bool wanted(int fd, int flags) noexcept {
    return in_range(fd) && (flags & O_NONBLOCK) && config::get().async;
}

bool start(int fd, const sockaddr* sa, socklen_t len, const policy::decision& d, int& rc) noexcept {
    std::lock_guard lk{mu};
    if (!ensure_driver()) return false;
    entry* e = make_entry(fd, sa, len, d);
    if (e == nullptr) return false;
    int err = begin(e);
    if (err != 0) {
        tunnel::report(e->d, e->sel, {err, std::generic_category()}, e->hop);
        keep_spare(e);
        errno = err;
    } else {
        poke(drv.wake);  // the helper recomputes its earliest deadline
        errno = EINPROGRESS;
    }
    rc = -1;
    return true;
}

int take_error(int fd) noexcept {
    if (!in_range(fd)) return 0;
    int st = table[fd].load(std::memory_order_acquire);
    // Only a kept errno is cleared, and only once when threads race for it.
    if (st <= 0 || !table[fd].compare_exchange_strong(st, idle, std::memory_order_acq_rel))
        return 0;
    return st;
}

void forget(int fd) noexcept {
    if (status(fd) == idle) return;
    std::lock_guard lk{mu};
    if (entry* e = find(fd)) {
        real::fn().epoll_ctl(drv.ep, EPOLL_CTL_DEL, fd, nullptr);
        pending_count.fetch_sub(1, std::memory_order_relaxed);
        remove(e);
        keep_spare(e);
        wake_waiters();  // a poll() on this fd must now see POLLNVAL
    }
    table[fd].store(idle, std::memory_order_release);
}

void settle(int fd) noexcept {
    if (status(fd) != pending) return;
    std::lock_guard lk{mu};
    entry* e = find(fd);
    if (e == nullptr) return;
    pollfd p{fd, POLLOUT, 0};
    if (e->connecting && real::fn().poll(&p, 1, 0) != 1) return;  // still connecting
    step(e);
}

// fork(): the child has no helper thread. Handshakes under way stay the
// parent's (the socket is shared); the child forgets them and makes its own
// helper when it needs one.
void before_fork() noexcept {
    mu.lock();
}

void after_fork_parent() noexcept {
    mu.unlock();
}

void after_fork_child() noexcept {
    while (under_way != nullptr) {
        entry* e = under_way;
        table[e->fd].store(idle, std::memory_order_relaxed);
        remove(e);
        keep_spare(e);
    }
    pending_count.store(0);
    waiters = nullptr;
    close_driver_fds();
    mu.unlock();
}

std::unique_lock<std::mutex> guard() noexcept {
    return std::unique_lock<std::mutex>{mu};
}

void add_waiter(waiter& w) noexcept {
    w.next = waiters;
    waiters = &w;
}

void remove_waiter(waiter& w) noexcept {
    for (waiter** p = &waiters; *p != nullptr; p = &(*p)->next) {
        if (*p == &w) {
            *p = w.next;
            return;
        }
    }
}

}  // namespace lp::async
