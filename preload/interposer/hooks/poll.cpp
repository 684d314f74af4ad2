// poll(), ppoll(), select(), pselect() while a proxied
// connect is pending (pending.hpp).
//
// A pending fd must not be reported ready before its handshake is done: it
// is left out of the real call (fd -1: no events) and an eventfd is added
// in its place, which the helper thread writes whenever a handshake
// finishes or, with optimistic data, reports its socket connected. While
// such a socket's reply is outstanding only its read interest is left out:
// it may be reported writable, never readable. When only that eventfd fired
// the call is made again with the time left, now with the finished fds in
// it. Calls without a pending fd go straight to libc. select()/pselect() are
// run as ppoll() in that case, which also frees them from FD_SETSIZE for our
// eventfd.
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <new>

#include "interposer/fdtable.hpp"
#include "interposer/hooks.hpp"
#include "interposer/pending.hpp"
#include "runtime/real.hpp"

namespace {

// The end of a ppoll()-style timeout (nullptr: none).
class until {
public:
    explicit until(const timespec* t) noexcept : forever_(t == nullptr) {
        if (forever_) return;
        clock_gettime(CLOCK_MONOTONIC, &end_);
        end_.tv_sec += t->tv_sec;
        end_.tv_nsec += t->tv_nsec;
        if (end_.tv_nsec >= 1000000000L) {
            end_.tv_sec += 1;
            end_.tv_nsec -= 1000000000L;
        }
    }
    // The time left, or nullptr when there is no limit.
    const timespec* left(timespec& out) const noexcept {
        if (forever_) return nullptr;
        timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        out.tv_sec = end_.tv_sec - now.tv_sec;
        out.tv_nsec = end_.tv_nsec - now.tv_nsec;
        if (out.tv_nsec < 0) {
            out.tv_sec -= 1;
            out.tv_nsec += 1000000000L;
        }
        if (out.tv_sec < 0) out = timespec{0, 0};
        return &out;
    }

private:
    bool forever_;
    timespec end_{};
};

constexpr short read_events = POLLIN | POLLRDNORM | POLLRDBAND | POLLPRI;

// Under fdtable::guard(): leaves pending fds, and the read interest of fds
// whose reply is outstanding, out of `copy`; false when there were none.
bool leave_out_pending(pollfd* copy, nfds_t n) noexcept {
    bool any = false;
    for (nfds_t i = 0; i < n; ++i) {
        int st = copy[i].fd >= 0 ? lp::fdtable::status(copy[i].fd) : lp::fdtable::idle;
        if (!lp::fdtable::in_handshake(st)) continue;
        any = true;
        if (st == lp::fdtable::reply_outstanding) copy[i].events &= ~read_events;
        if (st == lp::fdtable::pending || copy[i].events == 0) copy[i].fd = -1;
    }
    return any;
}

// Room for n pollfds: on the stack for the usual few, so that waiting on a
// pending connect allocates nothing; data() is nullptr when out of memory.
class pollfd_room {
public:
    explicit pollfd_room(std::size_t n) noexcept
        : data_{n <= std::size(small_) ? small_ : new (std::nothrow) pollfd[n]} {}
    ~pollfd_room() {
        if (data_ != small_) delete[] data_;
    }
    pollfd_room(const pollfd_room&) = delete;
    pollfd_room& operator=(const pollfd_room&) = delete;
    pollfd* data() const noexcept { return data_; }

private:
    pollfd small_[32];
    pollfd* data_;
};

enum class outcome { done, again, unmasked };

// One real ppoll() with pending fds left out; `rc` is the call's answer
// when done. `unmasked`: nothing was pending, the caller polls directly.
outcome poll_once(pollfd* fds, nfds_t n, const timespec* t, const sigset_t* mask,
                  int& rc) noexcept {
    const auto& real = lp::real::fn();
    pollfd_room copy{n + 1};  // the program's array and our eventfd
    if (copy.data() == nullptr) {
        errno = ENOMEM;  // what the kernel says when it cannot copy the array
        rc = -1;
        return outcome::done;
    }
    std::copy(fds, fds + n, copy.data());
    lp::async::waiter w;
    w.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w.efd < 0) {
        rc = -1;  // cannot wait safely: like the kernel out of memory
        return outcome::done;
    }
    {
        auto lk = lp::fdtable::guard();
        if (!leave_out_pending(copy.data(), n)) {
            real.close(w.efd);
            return outcome::unmasked;
        }
        lp::async::add_waiter(w);
    }
    copy.data()[n] = pollfd{w.efd, POLLIN, 0};
    rc = real.ppoll(copy.data(), n + 1, t, mask);
    int saved = errno;
    {
        auto lk = lp::fdtable::guard();
        lp::async::remove_waiter(w);
    }
    real.close(w.efd);
    errno = saved;
    if (rc < 0) return outcome::done;
    rc = 0;
    for (nfds_t i = 0; i < n; ++i) {
        fds[i].revents = copy.data()[i].revents;
        if (fds[i].revents != 0) ++rc;
    }
    return rc > 0 || copy.data()[n].revents == 0 ? outcome::done : outcome::again;
}

// ppoll() that never reports a pending fd.
int masked_ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) noexcept {
    until end{timeout};
    for (;;) {
        timespec ts;
        const timespec* t = end.left(ts);
        int rc = 0;
        switch (poll_once(fds, n, t, mask, rc)) {
            case outcome::done: return rc;
            case outcome::unmasked: return lp::real::fn().ppoll(fds, n, t, mask);
            case outcome::again: break;  // a handshake ended: look again
        }
    }
}

bool has_pending(const pollfd* fds, nfds_t n) noexcept {
    if (!lp::fdtable::any_pending()) return false;
    for (nfds_t i = 0; i < n; ++i)
        if (lp::fdtable::in_handshake(lp::fdtable::status(fds[i].fd))) return true;
    return false;
}

bool set_has_pending(int nfds, const fd_set* r, const fd_set* w, const fd_set* x) noexcept {
    if (!lp::fdtable::any_pending()) return false;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) {
        bool asked = (r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (x && FD_ISSET(fd, x));
        if (asked && lp::fdtable::in_handshake(lp::fdtable::status(fd))) return true;
    }
    return false;
}

short select_events(int fd, const fd_set* r, const fd_set* w, const fd_set* x) noexcept {
    return static_cast<short>((r && FD_ISSET(fd, r) ? POLLIN : 0) |
                              (w && FD_ISSET(fd, w) ? POLLOUT : 0) |
                              (x && FD_ISSET(fd, x) ? POLLPRI : 0));
}

// select()'s sets as pollfds in `p` (room for all asked); returns how many.
nfds_t to_pollfds(int nfds, const fd_set* r, const fd_set* w, const fd_set* x, pollfd* p) noexcept {
    nfds_t n = 0;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd)
        if (short ev = select_events(fd, r, w, x); ev != 0) p[n++] = pollfd{fd, ev, 0};
    return n;
}

nfds_t count_asked(int nfds, const fd_set* r, const fd_set* w, const fd_set* x) noexcept {
    nfds_t n = 0;
    for (int fd = 0; fd < nfds && fd < FD_SETSIZE; ++fd) n += select_events(fd, r, w, x) != 0;
    return n;
}

// select()'s sets from ppoll()'s answer (the kernel's own mapping).
int from_pollfds(const pollfd* p, nfds_t n, fd_set* r, fd_set* w, fd_set* x) noexcept {
    for (fd_set* s : {r, w, x})
        if (s) FD_ZERO(s);
    int count = 0;
    for (nfds_t i = 0; i < n; ++i) {
        const pollfd& q = p[i];
        if (q.revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
        auto mark = [&](fd_set* s, short asked, short seen) {
            if (s && (q.events & asked) && (q.revents & seen)) {
                FD_SET(q.fd, s);
                ++count;
            }
        };
        mark(r, POLLIN, POLLIN | POLLHUP | POLLERR);
        mark(w, POLLOUT, POLLOUT | POLLERR);
        mark(x, POLLPRI, POLLPRI);
    }
    return count;
}

int select_masked(int nfds, fd_set* r, fd_set* w, fd_set* x, const timespec* timeout,
                  const sigset_t* mask) noexcept {
    pollfd_room p{count_asked(nfds, r, w, x)};
    if (p.data() == nullptr) {
        errno = ENOMEM;
        return -1;
    }
    nfds_t n = to_pollfds(nfds, r, w, x, p.data());
    int rc = masked_ppoll(p.data(), n, timeout, mask);
    return rc < 0 ? rc : from_pollfds(p.data(), n, r, w, x);
}

timespec to_timespec(int ms) noexcept {
    return timespec{ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
}

}  // namespace

namespace {

bool still_held(int fd, lp::hook::until_stage stage) noexcept {
    int st = lp::fdtable::status(fd);
    if (stage == lp::hook::until_stage::connected) return st == lp::fdtable::pending;
    return lp::fdtable::in_handshake(st);
}

}  // namespace

void lp::hook::wait_until_settled(int fd, until_stage stage) noexcept {
    lp::async::waiter w;
    w.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (w.efd < 0) return;  // the caller then answers like a socket still connecting
    // Each round ends when some handshake changes state (the check and the
    // registration are under one lock, so no change is missed); the helper
    // fails this one at its deadline at the latest.
    for (;;) {
        {
            auto lk = lp::fdtable::guard();
            if (!still_held(fd, stage)) break;
            lp::async::add_waiter(w);
        }
        pollfd p{w.efd, POLLIN, 0};
        lp::real::fn().poll(&p, 1, -1);
        {
            auto lk = lp::fdtable::guard();
            lp::async::remove_waiter(w);
        }
        std::uint64_t n;
        (void)!lp::real::fn().read(w.efd, &n, sizeof n);
    }
    lp::real::fn().close(w.efd);
}

// glibc declares poll's and ppoll's array write-only (access attribute), so
// GCC's unoptimised builds call our reading of the program's events
// "uninitialized". The program did initialise them: that is the API.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

LP_EXPORT int poll(pollfd* fds, nfds_t n, int ms) {
    if (!has_pending(fds, n)) return lp::real::fn().poll(fds, n, ms);
    timespec ts = to_timespec(ms);
    return masked_ppoll(fds, n, ms < 0 ? nullptr : &ts, nullptr);
}

LP_EXPORT int __poll_chk(pollfd* fds, nfds_t n, int ms, size_t fdslen) {
    if (!has_pending(fds, n)) return lp::real::fn().poll_chk(fds, n, ms, fdslen);
    if (fdslen / sizeof(pollfd) < n) abort();  // what __chk_fail does
    timespec ts = to_timespec(ms);
    return masked_ppoll(fds, n, ms < 0 ? nullptr : &ts, nullptr);
}

LP_EXPORT int ppoll(pollfd* fds, nfds_t n, const timespec* t, const sigset_t* mask) {
    if (!has_pending(fds, n)) return lp::real::fn().ppoll(fds, n, t, mask);
    return masked_ppoll(fds, n, t, mask);
}

#pragma GCC diagnostic pop

LP_EXPORT int select(int nfds, fd_set* r, fd_set* w, fd_set* x, timeval* tv) {
    if (!set_has_pending(nfds, r, w, x)) return lp::real::fn().select(nfds, r, w, x, tv);
    timespec ts{};
    if (tv) ts = timespec{tv->tv_sec, tv->tv_usec * 1000L};
    until end{tv ? &ts : nullptr};
    int rc = select_masked(nfds, r, w, x, tv ? &ts : nullptr, nullptr);
    if (tv) {  // Linux reports the time left
        timespec left{};
        end.left(left);
        *tv = timeval{left.tv_sec, left.tv_nsec / 1000};
    }
    return rc;
}

LP_EXPORT int pselect(int nfds, fd_set* r, fd_set* w, fd_set* x, const timespec* t,
                      const sigset_t* mask) {
    if (!set_has_pending(nfds, r, w, x)) return lp::real::fn().pselect(nfds, r, w, x, t, mask);
    return select_masked(nfds, r, w, x, t, mask);
}
