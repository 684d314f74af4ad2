#include "interposer/fdtable.hpp"

#include <errno.h>
#include <netinet/in.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

#include "interposer/inbound.hpp"
#include "interposer/pending.hpp"
#include "interposer/udp_relay.hpp"
#include "runtime/real.hpp"

namespace lp::fdtable {
namespace {

// What a connect() on a socket established through the proxy answers.
enum answer : std::uint8_t { none = 0, zero_once = 1, is_connected = 2, aborted = 3 };

// Set while a slot has something only the lock may drop: close() then
// takes the lock, and skips it otherwise.
// dns_asked: `addr` is the DNS server a query was sent to (the supervisor's
// responder got it); dns_unconnected: by sendto, so it is no peer.
// relay_held: `relay` holds a reference to an association (udp_relay.hpp).
enum mark : std::uint8_t {
    has_records = 1,
    epoll_set = 2,
    dns_asked = 4,
    dns_unconnected = 8,
    relay_held = 16,
    listener_held = 32,  // `listener` holds a reference to a BIND (inbound.hpp)
};

struct slot {
    std::atomic<int> state{idle};
    std::atomic<socklen_t> peer_len{0};  // 0 = no peer remembered; written last
    std::atomic<std::uint8_t> reconnect{none};
    std::atomic<std::uint8_t> marks{0};
    async::entry* handshake = nullptr;             // under mu
    udp_relay::association* relay = nullptr;       // under mu
    inbound::listener* listener = nullptr;         // under mu
    std::vector<epoll_record>* records = nullptr;  // under mu
    alignas(8) unsigned char addr[sizeof(sockaddr_in6)]{};
};

// constinit: zero pages from .bss, touched only when used. A run-time
// initializer would write all 1 MiB in every process at start.
constinit slot table[max_fd];
std::atomic<int> pending_count{0};
std::mutex mu;
int records_end = 0;  // no fd at or past this has epoll records; under mu

slot* at(int fd) noexcept {
    return in_range(fd) ? &table[fd] : nullptr;
}

void forget_peer(slot& s) noexcept {
    s.peer_len.store(0, std::memory_order_release);
    s.reconnect.store(none, std::memory_order_relaxed);
}

// A closed epoll set: the helper thread, which may be restoring a
// registration in it right now (it waits for the lock), must never use
// that number again; the kernel may hand it out anew.
void drop_records_in(int epfd) noexcept {
    for (int fd = 0; fd < records_end; ++fd)
        if (auto* list = table[fd].records)
            std::erase_if(*list, [epfd](const epoll_record& r) { return r.epfd == epfd; });
}

// Under mu. The peer is forgotten again here: the helper thread may have
// marked the socket established (under mu) after close()'s lock-free first
// forget_peer and before it got the lock, and a stale answer would reach the
// next socket that gets this number (its connect() would say EISCONN).
void forget_locked(int fd, slot& s) noexcept {
    forget_peer(s);
    if (s.handshake != nullptr) {
        async::release(s.handshake, fd);
        s.handshake = nullptr;
    }
    set_status(fd, idle);
    delete s.records;
    s.records = nullptr;
    if (s.relay != nullptr) udp_relay::release(std::exchange(s.relay, nullptr));
    if (s.listener != nullptr) inbound::dropped(std::exchange(s.listener, nullptr));
    if (s.marks.load(std::memory_order_relaxed) & epoll_set) drop_records_in(fd);
    s.marks.store(0, std::memory_order_relaxed);
}

}  // namespace

bool in_range(int fd) noexcept {
    return fd >= 0 && fd < max_fd;
}

// ---- connection state ------------------------------------------------------

int status(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr ? s->state.load(std::memory_order_acquire) : idle;
}

bool any_pending() noexcept {
    return pending_count.load(std::memory_order_relaxed) > 0;
}

void set_status(int fd, int st) noexcept {
    slot* s = at(fd);
    if (s == nullptr) return;
    int was = s->state.exchange(st, std::memory_order_acq_rel);
    if (in_handshake(was) && !in_handshake(st))
        pending_count.fetch_sub(1, std::memory_order_relaxed);
    if (!in_handshake(was) && in_handshake(st))
        pending_count.fetch_add(1, std::memory_order_relaxed);
}

int take_error(int fd, bool by_connect) noexcept {
    slot* s = at(fd);
    if (s == nullptr) return 0;
    int st = s->state.load(std::memory_order_acquire);
    // Only a kept errno is cleared, and only once when threads race for it.
    if (st <= 0 || !s->state.compare_exchange_strong(st, idle, std::memory_order_acq_rel)) return 0;
    int kernel = 0;
    socklen_t len = sizeof kernel;
    real::fn().getsockopt(fd, SOL_SOCKET, SO_ERROR, &kernel, &len);
    if (!by_connect) s->reconnect.store(aborted, std::memory_order_relaxed);
    return st;
}

// ---- established through the proxy ----------------------------------------

void established(int fd, const sockaddr* sa, socklen_t len, bool reported) noexcept {
    slot* s = at(fd);
    if (s == nullptr || len > sizeof(sockaddr_in6)) return;
    s->peer_len.store(0, std::memory_order_relaxed);
    std::memcpy(s->addr, sa, len);
    s->reconnect.store(reported ? is_connected : zero_once, std::memory_order_relaxed);
    s->peer_len.store(len, std::memory_order_release);
}

void dissolved(int fd) noexcept {
    if (slot* s = at(fd)) forget_peer(*s);
}

bool peer(int fd, sockaddr* sa, socklen_t* len) noexcept {
    slot* s = at(fd);
    if (s == nullptr || len == nullptr) return false;
    if (s->marks.load(std::memory_order_relaxed) & dns_unconnected) return false;
    socklen_t n = s->peer_len.load(std::memory_order_acquire);
    if (n == 0) return false;
    std::memcpy(sa, s->addr, *len < n ? *len : n);
    *len = n;  // like the kernel: the full size, even when truncated
    return true;
}

bool reconnect(int fd, int& rc) noexcept {
    slot* s = at(fd);
    if (s == nullptr || s->reconnect.load(std::memory_order_relaxed) == none) return false;
    std::uint8_t was = aborted;
    // A failed connect whose error another call reported: the kernel says
    // ECONNABORTED once, then the socket may connect anew.
    if (s->reconnect.compare_exchange_strong(was, none, std::memory_order_relaxed)) {
        errno = ECONNABORTED;
        rc = -1;
        return true;
    }
    was = zero_once;
    // The kernel's rule for a socket whose connect said EINPROGRESS: the
    // first connect() after it completed says 0, every later one EISCONN.
    if (s->reconnect.compare_exchange_strong(was, is_connected, std::memory_order_relaxed)) {
        rc = 0;
        return true;
    }
    errno = EISCONN;
    rc = -1;
    return true;
}

// ---- DNS answered by the supervisor's responder ----------------------------

void dns_server(int fd, const sockaddr* sa, socklen_t len, bool connected) noexcept {
    slot* s = at(fd);
    if (s == nullptr || len > sizeof(sockaddr_in6)) return;
    s->peer_len.store(0, std::memory_order_relaxed);
    std::memcpy(s->addr, sa, len);
    if (connected)
        s->marks.fetch_and(static_cast<std::uint8_t>(~dns_unconnected), std::memory_order_relaxed);
    else
        s->marks.fetch_or(dns_unconnected, std::memory_order_relaxed);
    s->marks.fetch_or(dns_asked, std::memory_order_relaxed);
    s->peer_len.store(len, std::memory_order_release);
}

bool relayed(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr && (s->marks.load(std::memory_order_acquire) & relay_held);
}

udp_relay::association* association(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr ? s->relay : nullptr;
}

void set_association(int fd, udp_relay::association* a) noexcept {
    slot* s = at(fd);
    if (s == nullptr) {
        udp_relay::release(a);
        return;
    }
    if (s->relay != nullptr) udp_relay::release(s->relay);
    s->relay = a;
    s->marks.fetch_or(relay_held, std::memory_order_release);
}

bool listening_fast(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr && (s->marks.load(std::memory_order_acquire) & listener_held);
}

inbound::listener* listening(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr ? s->listener : nullptr;
}

void set_listening(int fd, inbound::listener* l) noexcept {
    slot* s = at(fd);
    if (s == nullptr) {
        if (l != nullptr) inbound::dropped(l);
        return;
    }
    if (s->listener != nullptr) inbound::dropped(s->listener);
    s->listener = l;
    if (l != nullptr)
        s->marks.fetch_or(listener_held, std::memory_order_release);
    else
        s->marks.fetch_and(static_cast<std::uint8_t>(~listener_held), std::memory_order_release);
}

bool asked_dns(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr && (s->marks.load(std::memory_order_relaxed) & dns_asked);
}

bool dns_server_of(int fd, sockaddr* sa, socklen_t* len) noexcept {
    slot* s = at(fd);
    if (s == nullptr || !(s->marks.load(std::memory_order_relaxed) & dns_asked)) return false;
    socklen_t n = s->peer_len.load(std::memory_order_acquire);
    if (n == 0) return false;
    std::memcpy(sa, s->addr, *len < n ? *len : n);
    *len = n;
    return true;
}

// ---- the lock and what it guards ------------------------------------------

std::unique_lock<std::mutex> guard() noexcept {
    return std::unique_lock<std::mutex>{mu};
}

async::entry* handshake(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr ? s->handshake : nullptr;
}

void set_handshake(int fd, async::entry* e) noexcept {
    if (slot* s = at(fd)) s->handshake = e;
}

void record_epoll(int epfd, int op, int fd, const epoll_event& ev) noexcept {
    slot* s = at(fd);
    if (s == nullptr) return;
    if (s->records == nullptr) s->records = new (std::nothrow) std::vector<epoll_record>;
    if (s->records == nullptr) return;
    auto& list = *s->records;
    for (auto it = list.begin(); it != list.end(); ++it) {
        if (it->epfd != epfd) continue;
        if (op == EPOLL_CTL_DEL) {
            list.erase(it);
        } else {
            it->ev = ev;
        }
        return;
    }
    if (op == EPOLL_CTL_DEL) return;
    list.push_back({epfd, ev});
    s->marks.fetch_or(has_records, std::memory_order_relaxed);
    records_end = std::max(records_end, fd + 1);
    if (slot* set = at(epfd)) set->marks.fetch_or(epoll_set, std::memory_order_relaxed);
}

const std::vector<epoll_record>* epoll_records(int fd) noexcept {
    slot* s = at(fd);
    return s != nullptr ? s->records : nullptr;
}

// ---- descriptor lifetime ---------------------------------------------------

void forget(int fd) noexcept {
    slot* s = at(fd);
    if (s == nullptr) return;
    forget_peer(*s);
    if (s->state.load(std::memory_order_acquire) == idle &&
        s->marks.load(std::memory_order_relaxed) == 0)
        return;  // the usual close: one store, two loads, no lock
    auto lk = guard();
    forget_locked(fd, *s);
}

void forget_range(unsigned first, unsigned last) noexcept {
    // The range is often [3, ~0U]: only our table's part of it matters.
    constexpr unsigned end = max_fd - 1;
    for (unsigned fd = first; fd <= last && fd <= end; ++fd) forget(static_cast<int>(fd));
}

void copy(int from, int to) noexcept {
    slot* a = at(from);
    slot* b = at(to);
    if (a == nullptr || b == nullptr || from == to) return;
    // dup2()/dup3() onto an open descriptor closed it first.
    forget(to);
    if (a->marks.load(std::memory_order_acquire) & (relay_held | listener_held)) {
        auto lk = guard();
        if (a->relay != nullptr) set_association(to, udp_relay::share(a->relay));
        if (a->listener != nullptr) set_listening(to, inbound::share(a->listener));
    }
    int st = a->state.load(std::memory_order_acquire);
    if (in_handshake(st)) {
        auto lk = guard();
        if (a->handshake != nullptr) async::share(a->handshake, to);
    }
    if (st == pending) return;  // no peer yet
    socklen_t n = a->peer_len.load(std::memory_order_acquire);
    if (n == 0) return;
    std::memcpy(b->addr, a->addr, n);
    b->reconnect.store(a->reconnect.load(std::memory_order_relaxed), std::memory_order_relaxed);
    constexpr auto dns_marks = static_cast<std::uint8_t>(dns_asked | dns_unconnected);
    b->marks.fetch_or(a->marks.load(std::memory_order_relaxed) & dns_marks,
                      std::memory_order_relaxed);
    b->peer_len.store(n, std::memory_order_release);
}

}  // namespace lp::fdtable
