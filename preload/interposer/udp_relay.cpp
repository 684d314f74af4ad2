#include "interposer/udp_relay.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>
#include <system_error>

#include "interposer/fdtable.hpp"
#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "runtime/config.hpp"
#include "runtime/log.hpp"
#include "runtime/marker.hpp"
#include "runtime/placeholder.hpp"
#include "runtime/real.hpp"
#include "runtime/refuse.hpp"
#include "runtime/tunnel.hpp"

namespace lp::udp_relay {

struct association {
    int control = -1;          // the UDP ASSOCIATE connection: the relay lives as long as it
    int domain = AF_INET;      // the program's socket's family
    sockaddr_storage relay{};  // in the family of the program's socket
    socklen_t relay_len = 0;
    int refs = 1;  // descriptors naming the socket, and operations under way; under fdtable::guard
    // connect(): the destination unaddressed sends go to, and what
    // getpeername() answers (under fdtable::guard).
    bool connected = false;
    sockaddr_storage peer{};
    socklen_t peer_len = 0;
    char peer_name[256] = "";  // a placeholder's name; empty: peer_ip
    std::size_t peer_name_len = 0;
    net::endpoint peer_ip;
};

namespace {

std::error_code sys(int e) noexcept {
    return {e, std::generic_category()};
}

// The largest datagram a relay can hand over (64 KiB minus IP and UDP headers).
constexpr std::size_t max_datagram = 65535;

// `ip:port` as a socket address of `domain` (an IPv4 one as v4-mapped on an
// AF_INET6 socket); 0 when the family cannot carry it.
socklen_t to_sockaddr(const net::ip& ip, std::uint16_t port, int domain,
                      sockaddr_storage& out) noexcept {
    std::memset(&out, 0, sizeof out);
    if (domain == AF_INET) {
        if (!ip.is_v4()) return 0;
        auto& in = reinterpret_cast<sockaddr_in&>(out);
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        std::memcpy(&in.sin_addr, ip.b.data() + 12, 4);
        return sizeof in;
    }
    auto& in6 = reinterpret_cast<sockaddr_in6&>(out);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    std::memcpy(&in6.sin6_addr, ip.b.data(), 16);
    return sizeof in6;
}

// A SOCKS address as our ip: IPv4, IPv6, or a name as its placeholder.
bool to_ip(const leakproof::address& a, int domain, net::ip& out) noexcept {
    out = {};
    switch (a.type) {
        case leakproof::address::kind::ipv4:
            out.b[10] = out.b[11] = 0xff;
            std::memcpy(out.b.data() + 12, a.ip.data(), 4);
            return true;
        case leakproof::address::kind::ipv6:
            std::memcpy(out.b.data(), a.ip.data(), 16);
            return true;
        case leakproof::address::kind::name: {
            std::uint32_t index;
            if (!placeholder::assign(a.name, index)) return false;
            if (domain == AF_INET) {
                std::uint8_t v4[4];
                placeholder::v4_of(index, v4);
                out.b[10] = out.b[11] = 0xff;
                std::memcpy(out.b.data() + 12, v4, 4);
            } else {
                std::uint8_t v6[16];
                placeholder::v6_of(index, v6);
                std::memcpy(out.b.data(), v6, 16);
            }
            return true;
        }
        case leakproof::address::kind::none: return false;
    }
    return false;
}

leakproof::address socks_address(const net::ip& ip) noexcept {
    if (ip.is_v4()) return leakproof::address::ipv4({ip.b[12], ip.b[13], ip.b[14], ip.b[15]});
    return leakproof::address::ipv6(ip.b);
}

// UDP ASSOCIATE through the first proxy, on a connection of our own.
std::error_code associate(int domain, association& a) noexcept {
    const auto& cfg = config::get();
    if (cfg.error != nullptr || cfg.chain_len == 0) return sys(ENETUNREACH);
    tunnel::deadline dl{cfg.timeout_ms};
    int family = cfg.first_hop_ep.addr.is_v4() ? AF_INET : AF_INET6;
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return sys(errno);
    // We do not know the address we will send from (the socket may be
    // unbound): 0.0.0.0:0, which RFC 1928 allows.
    auto req = cfg.chain[0].make_request(leakproof::address::ipv4({0, 0, 0, 0}), 0,
                                         leakproof::command::udp_associate);
    leakproof::client_handshake hs{req};
    auto ec = tunnel::connect_first_hop(fd, family);
    if (!ec) ec = tunnel::drive(fd, hs, dl);
    if (ec) {
        real::fn().close(fd);
        return ec;
    }
    const auto& r = hs.result();
    net::ip relay_ip = cfg.first_hop_ep.addr;
    if (!r.means_proxy_address() && !to_ip(r.bound, domain, relay_ip)) {
        real::fn().close(fd);
        return leakproof::error::bad_address_type;
    }
    a.relay_len = to_sockaddr(relay_ip, r.port, domain, a.relay);
    if (a.relay_len == 0) {
        real::fn().close(fd);
        return sys(EAFNOSUPPORT);  // an IPv6 relay for an AF_INET socket
    }
    a.control = fd;
    a.domain = domain;
    return {};
}

void report(const policy::decision& d, std::error_code ec) noexcept {
    auto lvl = ec ? log::level::normal : log::level::verbose;
    if (!log::enabled(lvl)) return;
    auto ln = log::start();
    ln << "udp ";
    refuse::put_target(ln, d);
    ln << " via ";
    ln.proxy(config::get().chain[0]);
    ln << " (UDP ASSOCIATE): ";
    if (ec)
        tunnel::put_error(ln, ec, &config::get().chain[0]);
    else
        ln << "relay ready";
    log::emit(lvl, ln);
}

int socket_domain(int fd) noexcept {
    int v = -1;
    socklen_t len = sizeof v;
    return real::fn().getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) == 0 ? v : -1;
}

// fd's association with a reference for the caller, set up first when
// fd has none; nullptr with errno (and one log line) when it cannot be.
association* acquire(int fd, const policy::decision& d) noexcept {
    {
        auto lk = fdtable::guard();
        if (association* a = fdtable::association(fd)) return share(a);
    }
    int protocol = -1;
    socklen_t plen = sizeof protocol;
    real::fn().getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &plen);
    if (protocol != IPPROTO_UDP) {
        // A ping socket (SOCK_DGRAM, ICMP) or UDP-Lite: the relay speaks UDP.
        auto r = d;
        r.reason = "only UDP sockets go through the proxy's relay";
        refuse::by_policy("sendto", r);
        errno = EPERM;
        return nullptr;
    }
    int domain = socket_domain(fd);
    auto* made = new (std::nothrow) association;
    if (made == nullptr) {
        errno = ENOMEM;
        return nullptr;
    }
    auto ec = domain < 0 ? sys(ENOTSOCK) : associate(domain, *made);
    report(d, ec);
    if (ec) {
        delete made;
        errno = leakproof::to_errno(ec);
        return nullptr;
    }
    auto lk = fdtable::guard();
    if (association* other = fdtable::association(fd)) {  // another thread was first
        release(made);
        return share(other);
    }
    fdtable::set_association(fd, made);
    return share(made);
}

// fd's association with a reference for the caller, or nullptr.
association* existing(int fd) noexcept {
    auto lk = fdtable::guard();
    association* a = fdtable::association(fd);
    return a != nullptr ? share(a) : nullptr;
}

void done_with(association* a) noexcept {
    auto lk = fdtable::guard();
    release(a);
}

// The relay is gone once its control connection has ended (or says
// anything: the proxy has nothing to say on it).
bool relay_alive(const association& a) noexcept {
    pollfd p{a.control, POLLIN, 0};
    return real::fn().poll(&p, 1, 0) == 0;
}

// Sends `count` pieces of payload to `dest`:`port` through the relay.
ssize_t wrapped_send(int fd, association& a, const leakproof::address& dest, std::uint16_t port,
                     const iovec* iov, std::size_t count, const msghdr* original,
                     int flags) noexcept {
    if (!relay_alive(a)) {
        refuse::with("sendto", "", "the proxy ended the UDP association", ECONNRESET);
        errno = ECONNRESET;
        return -1;
    }
    std::uint8_t header[leakproof::max_udp_header];
    auto h = leakproof::encode_udp_header(dest, port, header);
    if (h.error) {
        errno = leakproof::to_errno(h.error);
        return -1;
    }
    constexpr std::size_t max_pieces = 1024;  // IOV_MAX
    if (count + 1 > max_pieces) {
        errno = EMSGSIZE;
        return -1;
    }
    iovec pieces[max_pieces];
    pieces[0] = {header, h.size};
    std::copy(iov, iov + count, pieces + 1);
    msghdr out{};
    out.msg_name = a.connected ? nullptr : &a.relay;  // a connected socket is the relay's
    out.msg_namelen = a.connected ? 0 : a.relay_len;
    out.msg_iov = pieces;
    out.msg_iovlen = count + 1;
    if (original != nullptr) {
        out.msg_control = original->msg_control;
        out.msg_controllen = original->msg_controllen;
    }
    ssize_t n = marker::sendmsg(fd, &out, flags);
    if (n < 0) return -1;
    return n >= static_cast<ssize_t>(h.size) ? n - static_cast<ssize_t>(h.size) : 0;
}

leakproof::address destination_of(const policy::decision& d) noexcept {
    if (d.by_name) return leakproof::address::host_name({d.name, d.name_len});
    return socks_address(d.target.addr);
}

bool same_address(const sockaddr_storage& a, socklen_t a_len, const sockaddr_storage& b,
                  socklen_t b_len) noexcept {
    net::endpoint x, y;
    return net::from_sockaddr(reinterpret_cast<const sockaddr*>(&a), a_len, x) &&
           net::from_sockaddr(reinterpret_cast<const sockaddr*>(&b), b_len, y) &&
           x.addr.b == y.addr.b && x.port == y.port;
}

// Copies `payload` into the program's pieces; the bytes copied.
std::size_t scatter(std::span<const std::uint8_t> payload, const iovec* iov,
                    std::size_t count) noexcept {
    std::size_t done = 0;
    for (std::size_t i = 0; i < count && done < payload.size(); ++i) {
        std::size_t n = std::min(iov[i].iov_len, payload.size() - done);
        std::memcpy(iov[i].iov_base, payload.data() + done, n);
        done += n;
    }
    return done;
}

}  // namespace

bool carries(const policy::decision& d, int sotype) noexcept {
    return sotype == SOCK_DGRAM && d.what == policy::verdict::proxy && config::get().udp;
}

ssize_t send_to(int fd, const msghdr& msg, int flags, const policy::decision& d) noexcept {
    association* a = acquire(fd, d);
    if (a == nullptr) return -1;
    ssize_t n = wrapped_send(fd, *a, destination_of(d), d.target.port, msg.msg_iov, msg.msg_iovlen,
                             &msg, flags);
    int saved = errno;
    done_with(a);
    errno = saved;
    return n;
}

int connect(int fd, const sockaddr* sa, socklen_t len, const policy::decision& d) noexcept {
    association* a = acquire(fd, d);
    if (a == nullptr) return -1;
    int rc = marker::connect(fd, reinterpret_cast<const sockaddr*>(&a->relay), a->relay_len);
    int saved = errno;
    if (rc == 0) {
        auto lk = fdtable::guard();
        a->connected = true;
        a->peer_len = std::min<socklen_t>(len, sizeof a->peer);
        std::memcpy(&a->peer, sa, a->peer_len);
        a->peer_name_len = d.by_name ? d.name_len : 0;
        std::memcpy(a->peer_name, d.name, a->peer_name_len);
        a->peer_ip = d.target;
    }
    done_with(a);
    errno = saved;
    return rc;
}

ssize_t send_connected(int fd, const iovec* iov, std::size_t count, int flags) noexcept {
    association* a = existing(fd);
    if (a == nullptr) {
        errno = EDESTADDRREQ;
        return -1;
    }
    ssize_t n = -1;
    if (!a->connected) {
        errno = EDESTADDRREQ;  // the kernel's answer for an unconnected UDP socket
    } else {
        auto dest = a->peer_name_len > 0
                        ? leakproof::address::host_name({a->peer_name, a->peer_name_len})
                        : socks_address(a->peer_ip.addr);
        n = wrapped_send(fd, *a, dest, a->peer_ip.port, iov, count, nullptr, flags);
    }
    int saved = errno;
    done_with(a);
    errno = saved;
    return n;
}

ssize_t receive(int fd, const iovec* iov, std::size_t count, int flags, sockaddr* name,
                socklen_t* name_len, int* msg_flags) noexcept {
    association* a = existing(fd);
    if (a == nullptr) {
        errno = EBADF;
        return -1;
    }
    int domain = a->domain;
    thread_local std::uint8_t buf[max_datagram];
    ssize_t result = -1;
    for (;;) {
        sockaddr_storage from{};
        iovec one{buf, sizeof buf};
        msghdr h{};
        h.msg_name = &from;
        h.msg_namelen = sizeof from;
        h.msg_iov = &one;
        h.msg_iovlen = 1;
        ssize_t n = real::fn().recvmsg(fd, &h, flags & ~MSG_TRUNC);
        if (n < 0) break;
        leakproof::udp_datagram dg;
        bool ours = same_address(from, h.msg_namelen, a->relay, a->relay_len) &&
                    !leakproof::parse_udp_datagram({buf, static_cast<std::size_t>(n)}, dg);
        net::ip source;
        if (!ours || !to_ip(dg.source, domain, source)) {
            // Not the relay's, or not a datagram it may send: dropped. A
            // peeked one must be read away before the next is looked at.
            if (flags & MSG_PEEK) real::fn().recvmsg(fd, &h, (flags & ~MSG_PEEK) | MSG_DONTWAIT);
            continue;
        }
        std::size_t copied = scatter(dg.payload, iov, count);
        bool truncated = copied < dg.payload.size();
        if (msg_flags != nullptr) *msg_flags = truncated ? MSG_TRUNC : 0;
        if (name != nullptr && name_len != nullptr) {
            // A connected socket hears only its peer, as the program named
            // it (a placeholder stays the placeholder, though the relay
            // names the address the proxy resolved it to).
            sockaddr_storage src;
            socklen_t src_len = to_sockaddr(source, dg.port, domain, src);
            {
                auto lk = fdtable::guard();
                if (a->connected) {
                    src = a->peer;
                    src_len = a->peer_len;
                }
            }
            std::memcpy(name, &src, std::min(*name_len, src_len));
            *name_len = src_len;
        }
        result = static_cast<ssize_t>((flags & MSG_TRUNC) ? dg.payload.size() : copied);
        break;
    }
    int saved = errno;
    done_with(a);
    errno = saved;
    return result;
}

bool peer(int fd, sockaddr* sa, socklen_t* len) noexcept {
    if (!fdtable::relayed(fd) || len == nullptr) return false;
    auto lk = fdtable::guard();
    association* a = fdtable::association(fd);
    if (a == nullptr) return false;
    if (!a->connected) {
        errno = ENOTCONN;  // the kernel's socket is the relay's; the program's is not connected
        return false;
    }
    std::memcpy(sa, &a->peer, std::min(*len, a->peer_len));
    *len = a->peer_len;
    return true;
}

association* share(association* a) noexcept {
    ++a->refs;
    return a;
}

void release(association* a) noexcept {
    if (--a->refs > 0) return;
    if (a->control >= 0) real::fn().close(a->control);
    delete a;
}

}  // namespace lp::udp_relay
