// epoll_ctl(): records the program's registrations
// (hooks/epoll.hpp) and applies them stripped while their fd is pending.
#include <sys/epoll.h>

#include <atomic>
#include <new>
#include <unordered_map>
#include <vector>

#include "interposer/hooks/epoll.hpp"
#include "interposer/pending.hpp"
#include "runtime/real.hpp"

namespace lp::epollreg {
namespace {

constexpr int max_fd = 16384;  // pending.hpp never defers fds past this

struct reg {
    int epfd;
    epoll_event ev;  // as the program asked
};

using registry = std::unordered_map<int, std::vector<reg>>;
registry* regs = nullptr;             // fd -> its registrations; under async::guard()
std::atomic<bool> known[max_fd];      // fd may have records: close() takes the lock
std::atomic<bool> instances[max_fd];  // fd is an epoll set some record names: ditto

// While pending only the mode bits stay: no readiness is reported, and
// EPOLLERR/EPOLLHUP (always reported) only when the socket itself fails.
std::uint32_t stripped(std::uint32_t events) noexcept {
    return events & (EPOLLET | EPOLLONESHOT | EPOLLWAKEUP | EPOLLEXCLUSIVE);
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

void record(int epfd, int op, int fd, const epoll_event& ev) noexcept {
    if (regs == nullptr) regs = new (std::nothrow) registry;
    if (regs == nullptr) return;
    auto& list = (*regs)[fd];
    for (auto it = list.begin(); it != list.end(); ++it) {
        if (it->epfd != epfd) continue;
        if (op == EPOLL_CTL_DEL) {
            list.erase(it);
        } else {
            it->ev = ev;
        }
        return;
    }
    if (op != EPOLL_CTL_DEL) list.push_back({epfd, ev});
    known[fd].store(true, std::memory_order_relaxed);
    if (epfd >= 0 && epfd < max_fd) instances[epfd].store(true, std::memory_order_relaxed);
}

template <typename F>
void each(int fd, F f) noexcept {
    if (regs == nullptr) return;
    auto it = regs->find(fd);
    if (it == regs->end()) return;
    for (const reg& r : it->second) f(r);
}

}  // namespace

void mask(int fd) noexcept {
    each(fd, [fd](const reg& r) {
        epoll_event ev = r.ev;
        ev.events = stripped(ev.events);
        apply(r.epfd, fd, ev);
    });
}

void restore(int fd) noexcept {
    each(fd, [fd](const reg& r) { apply(r.epfd, fd, r.ev); });
}

void forget(int fd) noexcept {
    if (fd < 0 || fd >= max_fd) return;
    bool watched = known[fd].load(std::memory_order_relaxed);
    bool instance = instances[fd].load(std::memory_order_relaxed);
    if (!watched && !instance) return;
    auto lk = async::guard();
    if (regs != nullptr) {
        regs->erase(fd);
        // A closed epoll set: the helper thread, which may be restoring a
        // registration in it right now (we wait for the lock), must never
        // use that number again; the kernel may hand it out anew.
        if (instance)
            for (auto& [watched_fd, list] : *regs)
                std::erase_if(list, [fd](const reg& r) { return r.epfd == fd; });
    }
    known[fd].store(false, std::memory_order_relaxed);
    instances[fd].store(false, std::memory_order_relaxed);
}

}  // namespace lp::epollreg

LP_EXPORT int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    const auto& real = lp::real::fn();
    if (fd < 0 || fd >= lp::epollreg::max_fd) return real.epoll_ctl(epfd, op, fd, ev);
    auto lk = lp::async::guard();
    epoll_event given{};
    if (ev != nullptr) given = *ev;
    epoll_event applied = given;
    if (op != EPOLL_CTL_DEL && lp::async::status(fd) == lp::async::pending)
        applied.events = lp::epollreg::stripped(given.events);
    int rc = real.epoll_ctl(epfd, op, fd, ev != nullptr ? &applied : nullptr);
    if (rc == 0) lp::epollreg::record(epfd, op, fd, given);
    return rc;
}
