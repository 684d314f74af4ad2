// epoll_ctl(): records the program's registrations in fdtable
// (hooks/epoll.hpp) and applies them stripped while their fd is pending,
// without read interest while its reply is outstanding.
#include "interposer/hooks/epoll.hpp"

#include <sys/epoll.h>

#include "interposer/fdtable.hpp"
#include "runtime/real.hpp"

namespace lp::epollreg {
namespace {

// While pending only the mode bits stay: no readiness is reported, and
// EPOLLERR/EPOLLHUP (always reported) only when the socket itself fails.
std::uint32_t stripped(std::uint32_t events) noexcept {
    return events & (EPOLLET | EPOLLONESHOT | EPOLLWAKEUP | EPOLLEXCLUSIVE);
}

// While the reply of an optimistic connect is outstanding the program may
// write but must not be told its socket is readable: the bytes there are
// the proxy's. Hang-ups and errors still come (the kernel always reports
// them); the program then reads the failure once the helper has it.
std::uint32_t without_reads(std::uint32_t events) noexcept {
    return events & ~std::uint32_t{EPOLLIN | EPOLLRDNORM | EPOLLRDBAND | EPOLLPRI | EPOLLRDHUP};
}

// What the kernel is given for a registration of fd in state `st`.
std::uint32_t applied_for(int st, std::uint32_t events) noexcept {
    if (st == fdtable::pending) return stripped(events);
    if (st == fdtable::reply_outstanding) return without_reads(events);
    return events;
}

// EPOLLEXCLUSIVE registrations refuse EPOLL_CTL_MOD: they are re-added.
void apply(int epfd, int fd, epoll_event ev) noexcept {
    const auto& real = real::fn();
    if (!(ev.events & EPOLLEXCLUSIVE)) {
        real.epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
        return;
    }
    real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    real.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

// Applies every recorded registration of fd, its events passed through
// `events_of`.
void apply_all(int fd, std::uint32_t (*events_of)(std::uint32_t)) noexcept {
    if (auto* list = fdtable::epoll_records(fd)) {
        for (const auto& r : *list) {
            epoll_event ev = r.ev;
            ev.events = events_of(ev.events);
            apply(r.epfd, fd, ev);
        }
    }
}

}  // namespace

void mask(int fd) noexcept {
    apply_all(fd, stripped);
}

void writes_only(int fd) noexcept {
    apply_all(fd, without_reads);
}

void restore(int fd) noexcept {
    if (auto* list = fdtable::epoll_records(fd))
        for (const auto& r : *list) apply(r.epfd, fd, r.ev);
}

}  // namespace lp::epollreg

LP_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    const auto& real = lp::real::fn();
    if (!lp::fdtable::in_range(fd)) return real.epoll_ctl(epfd, op, fd, ev);
    auto lk = lp::fdtable::guard();
    epoll_event given{};
    if (ev != nullptr) given = *ev;
    epoll_event applied = given;
    if (op != EPOLL_CTL_DEL)
        applied.events = lp::epollreg::applied_for(lp::fdtable::status(fd), given.events);
    int rc = real.epoll_ctl(epfd, op, fd, ev != nullptr ? &applied : nullptr);
    if (rc == 0) lp::fdtable::record_epoll(epfd, op, fd, given);
    return rc;
}
