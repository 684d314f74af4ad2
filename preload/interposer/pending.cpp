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
#include "interposer/inbound.hpp"
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

using fdtable::idle;

waiter* waiters = nullptr;  // under fdtable::guard()

// One handshake under way. Heap-allocated and never moved: the handshake
// and its request hold views into `d` (the target name).
}  // namespace

struct entry {
    entry* prev = nullptr;  // in the list of handshakes under way, or of spares
    entry* next = nullptr;
    int fd = -1;  // the number the handshake runs on
    // Copies of fd (dup while pending): held back like fd, finished with it.
    int copies[3] = {-1, -1, -1};
    int n_copies = 0;
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
    // Optimistic data: the request is out and the socket was reported
    // connected; only the reply is left to read, and no other attempt may
    // follow (the program's bytes went with this one).
    bool early = false;
    bool caller_waits = false;  // a blocking connect() waits for us (returns 0 itself)
    tunnel::step_state io;
    std::optional<leakproof::client_handshake> hs;
    tunnel::deadline whole{0};     // the whole connect's
    tunnel::deadline deadline{0};  // this attempt's (path.hpp: hop timeout)
};

namespace {

// The helper thread's epoll set and its wake-up eventfd (new entries change
// the earliest deadline). Reset in a forked child, which has no helper.
struct driver {
    int ep = -1;
    int wake = -1;
    bool running = false;
};

driver drv;
std::uint64_t next_gen = 1;

// The handshakes under way, as a list (for the deadlines; by fd they are in
// fdtable). An entry that is done goes to the spares and is used again: a
// connect allocates only while the number under way grows past its earlier
// peak. All under fdtable::guard().
entry* under_way = nullptr;
entry* spares = nullptr;

entry* find(int fd) noexcept {
    return fdtable::handshake(fd);
}

void add(entry* e) noexcept {
    fdtable::set_handshake(e->fd, e);
    e->prev = nullptr;
    e->next = under_way;
    if (under_way != nullptr) under_way->prev = e;
    under_way = e;
}

// f(fd) for the handshake's fd and each copy of it.
template <typename F>
void each_fd(const entry& e, F f) noexcept {
    f(e.fd);
    for (int i = 0; i < e.n_copies; ++i) f(e.copies[i]);
}

void remove(entry* e) noexcept {
    each_fd(*e, [e](int fd) {
        if (fdtable::handshake(fd) == e) fdtable::set_handshake(fd, nullptr);
    });
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

void established(const entry& e, int fd) noexcept {
    inbound::note_proxied(e.d);
    fdtable::established(fd, reinterpret_cast<const sockaddr*>(&e.peer), e.peer_len,
                         e.caller_waits);
}

// Ends a handshake: the state the program will see is in place before its
// epoll registrations come back and its poll/select waiters wake. The log
// line comes first: a program may exit the moment it sees the outcome.
void finish(entry* e, std::error_code ec) noexcept {
    tunnel::report(e->d, e->sel, ec, e->hop);
    remove(e);
    bool ours = same_socket(*e);
    if (ours) {
        real::fn().epoll_ctl(drv.ep, EPOLL_CTL_DEL, e->fd, nullptr);
        // Unconnected, in error and hung up for every readiness API, like a
        // kernel connect that failed; SO_ERROR then says why (fdtable keeps
        // the real errno, the kernel's own says ECONNRESET). Before the state
        // changes: the kernel's error must be there for the call that takes
        // ours to clear it. A program its EPOLLHUP wakes meanwhile still sees
        // "pending", and its SO_ERROR waits for this lock (settle).
        if (ec) tunnel::disconnect(e->fd, true);
        each_fd(*e, [e, ec](int fd) {
            // connect() said EINPROGRESS: the next one says 0, like the
            // kernel's. Reported early, the socket has its peer already; a
            // failure then takes it away again.
            if (!ec && !e->early) established(*e, fd);
            if (ec && e->early) fdtable::dissolved(fd);
            fdtable::set_status(fd, ec ? errno_of(ec) : idle);
        });
        each_fd(*e, [](int fd) { epollreg::restore(fd); });
    } else {
        each_fd(*e, [](int fd) { fdtable::set_status(fd, idle); });
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
        e->io = {};
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
    if (e->early || config::get().path.how == path::mode::strict || e->whole.remaining_ms() == 0)
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
    e->io = {};
    return true;
}

// The last hop reads early data and has the whole request: the program
// may write now, behind it on the same stream.
bool early_data_accepted(const entry& e) noexcept {
    return e.hop + 1 == e.sel.len && e.chain.hops[e.sel.hop[e.hop]].options.optimistic &&
           e.hs->request_sent();
}

// The socket is reported connected (writable, SO_ERROR 0, getpeername the
// destination) while the reply is still read here; reads and readiness for
// reading stay held back until it has been (fdtable::reply_outstanding).
void report_connected_early(entry* e) noexcept {
    e->early = true;
    each_fd(*e, [e](int fd) {
        established(*e, fd);
        fdtable::set_status(fd, fdtable::reply_outstanding);
        epollreg::writes_only(fd);
    });
    wake_waiters();
}

// One step of the shared handshake step (tunnel::step); false when the
// entry waits (armed) or has ended.
bool act(entry* e) noexcept {
    if (!e->early && early_data_accepted(*e)) report_connected_early(e);
    std::error_code ec;
    switch (tunnel::step(e->fd, *e->hs, e->io, ec)) {
        case tunnel::step_result::more: return true;
        case tunnel::step_result::want_read: arm(e, EPOLLIN); return false;
        case tunnel::step_result::want_write: arm(e, EPOLLOUT); return false;
        case tunnel::step_result::done: return next_hop(e);
        case tunnel::step_result::failed: give_up(e, ec); return false;
    }
    return false;
}

// Runs the handshake as far as the socket allows without blocking.
void step(entry* e) noexcept {
    if (e->connecting && !(connected(e) && next_hop(e))) return;
    while (act(e)) {
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
            auto lk = fdtable::guard();
            timeout = next_timeout_ms();
            ep = drv.ep;
        }
        int n = epoll_wait(ep, evs, 64, timeout);
        auto lk = fdtable::guard();
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

// Held from before a fork() until after it, in parent and child.
std::unique_lock<std::mutex> held_over_fork;

// Under fdtable::guard(). The epoll set, eventfd and thread, made on first use.
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

// Under fdtable::guard(): registers e and masks fd; on failure undoes
// everything.
int begin(entry* e) noexcept {
    fdtable::set_status(e->fd, fdtable::pending);
    add(e);
    epollreg::mask(e->fd);
    int err = connect_first_hop(*e);
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLONESHOT;
    ev.data.u64 = tag(*e);
    if (err == 0 && real::fn().epoll_ctl(drv.ep, EPOLL_CTL_ADD, e->fd, &ev) != 0) err = errno;
    if (err != 0) {
        remove(e);
        fdtable::set_status(e->fd, idle);
        epollreg::restore(e->fd);
    }
    return err;
}

}  // namespace

// fork(): the child has no helper thread. Handshakes under way stay the
// parent's (the socket is shared); the child forgets them and makes its own
// helper when it needs one.
void before_fork() noexcept {
    held_over_fork = fdtable::guard();
}
void after_fork_parent() noexcept {
    held_over_fork.unlock();
}
void after_fork_child() noexcept {
    while (under_way != nullptr) {
        entry* e = under_way;
        each_fd(*e, [](int fd) { fdtable::set_status(fd, idle); });
        remove(e);
        keep_spare(e);
    }
    waiters = nullptr;
    close_driver_fds();
    held_over_fork.unlock();
}

bool wanted(int fd, int flags) noexcept {
    return fdtable::in_range(fd) && (flags & O_NONBLOCK) && config::get().async;
}

bool wanted_blocking(int fd, const policy::decision& d) noexcept {
    if (!fdtable::in_range(fd) || !config::get().async) return false;
    auto chain = route::chain_for(d);
    for (std::size_t i = 0; i < chain.len; ++i)
        if (chain.hops[i].options.optimistic) return true;
    return false;
}

bool start(int fd, const sockaddr* sa, socklen_t len, const policy::decision& d, int& rc,
           bool caller_waits) noexcept {
    auto lk = fdtable::guard();
    if (!ensure_driver()) return false;
    entry* e = make_entry(fd, sa, len, d);
    if (e == nullptr) return false;
    e->caller_waits = caller_waits;
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

int abandon(int fd) noexcept {
    auto lk = fdtable::guard();
    entry* e = find(fd);
    if (e == nullptr) return -2;
    tunnel::report(e->d, e->sel, {ECONNRESET, std::generic_category()}, e->hop);
    int fds[1 + std::size(e->copies)];
    int n = 0;
    each_fd(*e, [&](int f) { fds[n++] = f; });
    discard(e);
    tunnel::disconnect(fd, true);
    for (int i = 0; i < n; ++i) {
        fdtable::set_status(fds[i], idle);
        epollreg::restore(fds[i]);
    }
    return 0;
}

bool share(entry* e, int copy) noexcept {
    if (e->n_copies == static_cast<int>(std::size(e->copies))) return false;
    e->copies[e->n_copies++] = copy;
    fdtable::set_handshake(copy, e);
    fdtable::set_status(copy, e->early ? fdtable::reply_outstanding : fdtable::pending);
    return true;
}

void release(entry* e, int fd) noexcept {
    if (fd != e->fd) {
        for (int i = 0; i < e->n_copies; ++i)
            if (e->copies[i] == fd) e->copies[i] = e->copies[--e->n_copies];
        return;
    }
    if (e->n_copies == 0) return discard(e);
    // The program closes the number the handshake runs on, not the socket:
    // the handshake goes on on a copy (a new tag: the old number may return).
    real::fn().epoll_ctl(drv.ep, EPOLL_CTL_DEL, fd, nullptr);
    e->fd = e->copies[--e->n_copies];
    e->gen = next_gen++;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLONESHOT;  // step() finds out which
    ev.data.u64 = tag(*e);
    if (real::fn().epoll_ctl(drv.ep, EPOLL_CTL_ADD, e->fd, &ev) != 0) fail(e, errno);
}

void discard(entry* e) noexcept {
    real::fn().epoll_ctl(drv.ep, EPOLL_CTL_DEL, e->fd, nullptr);
    remove(e);
    keep_spare(e);
    wake_waiters();  // a poll() on this fd must now see POLLNVAL
}

void settle(int fd) noexcept {
    if (fdtable::status(fd) != fdtable::pending) return;
    auto lk = fdtable::guard();
    entry* e = find(fd);
    if (e == nullptr) return;
    pollfd p{fd, POLLOUT, 0};
    if (e->connecting && real::fn().poll(&p, 1, 0) != 1) return;  // still connecting
    step(e);
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
