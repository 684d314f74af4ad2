// sendto(), sendmsg(), sendmmsg(): the calls that carry
// their own destination.
//
// A datagram names its destination on every call, so connect() alone cannot
// stop it: each addressed datagram is judged by the same policy as connect()
// (loopback and --exclude go out, port 53 and everything else are refused
// with EPERM and one log line). Calls without an address use the socket's
// connected peer, which connect() already judged, and pass straight through.
// (A pending socket's calls were held back before they get here: hooks/io.cpp
// exports these three.)
//
// A TCP socket ignores the address unless MSG_FASTOPEN is set, in which case
// the call is a connect: a destination the policy proxies is connected
// through the proxy first (the normal connect path) and the data then sent
// without the flag — TCP Fast Open cannot carry data past a SOCKS handshake.
// sendmmsg() with MSG_FASTOPEN to a proxied destination is refused
// (EOPNOTSUPP) rather than emulated: nothing real uses it.
//
// What reaches the kernel from here has been judged: marked, it passes the
// supervisor's filter without a notification (runtime/marker.hpp).
#include <errno.h>
#include <netinet/in.h>

#include "interposer/dns_redirect.hpp"
#include "interposer/fdtable.hpp"
#include "interposer/hooks.hpp"
#include "interposer/udp_relay.hpp"
#include "runtime/config.hpp"
#include "runtime/marker.hpp"
#include "runtime/policy.hpp"
#include "runtime/real.hpp"
#include "runtime/refuse.hpp"

namespace {

using lp::policy::verdict;

// What the kernel will do with an address given on this socket.
struct sock {
    int type = -1;  // SO_TYPE; -1 when not a socket
    int domain = -1;
    bool tcp = false;  // TCP or MPTCP: the address only counts with MSG_FASTOPEN
};

sock inspect(int fd) noexcept {
    sock s;
    s.type = lp::hook::socket_info(fd, SO_TYPE);
    if (s.type < 0) return s;
    s.domain = lp::hook::socket_info(fd, SO_DOMAIN);
    int proto = lp::hook::socket_info(fd, SO_PROTOCOL);
    // Not SCTP: a one-to-one SCTP socket is SOCK_STREAM but may set up an
    // association from a sendmsg() address, so it is judged like a datagram.
    s.tcp = s.type == SOCK_STREAM && (proto == IPPROTO_TCP || proto == IPPROTO_MPTCP);
    return s;
}

// Whether the call carries an address the kernel will read (a zero length
// means "none" to sendmsg).
bool addressed(const void* name, socklen_t len) noexcept {
    return name != nullptr && len >= sizeof(sa_family_t);
}

// The policy's verdict on sending a datagram to `name`, read as the kernel
// reads it (an AF_UNSPEC address: policy::decide_send, the rule the
// supervisor applies too).
lp::policy::decision judge(const sock& s, const void* name, socklen_t len) noexcept {
    // A one-to-one SCTP socket (SOCK_STREAM) is judged as a datagram socket.
    int type = s.type == SOCK_STREAM ? SOCK_DGRAM : s.type;
    auto d = lp::policy::decide_send(static_cast<const sockaddr*>(name), len, s.domain, type);
    if (d.what == verdict::proxy && !lp::udp_relay::carries(d, s.type)) {
        d.what = verdict::refuse;  // only UDP has a relay (--udp)
        d.reason = "non-TCP socket refused (only TCP, and UDP with --udp, go through the proxy)";
        d.error = EPERM;
    }
    return d;
}

// The verdict on a TCP send with MSG_FASTOPEN, which is a connect: its
// address is read as connect() reads it.
lp::policy::decision judge_connect(const void* name, socklen_t len) noexcept {
    return lp::policy::decide(static_cast<const sockaddr*>(name), len, SOCK_STREAM);
}

// Datagrams have no proxy: anything but "direct" is a refusal.
bool allowed(const lp::policy::decision& d) noexcept {
    return d.what == verdict::direct;
}

// MSG_FASTOPEN to a proxied destination: connect through the proxy, then
// send the data as an ordinary write on the connected socket.
ssize_t fastopen_via_proxy(int fd, const sockaddr* sa, socklen_t len, const msghdr& msg,
                           int flags) noexcept {
    // Synchronous even on a non-blocking socket: the data must follow a
    // finished handshake, and the kernel's TFO gives no later moment to send it.
    if (lp::hook::connect(fd, sa, len, false) != 0) return -1;
    msghdr plain = msg;
    plain.msg_name = nullptr;
    plain.msg_namelen = 0;
    return lp::marker::sendmsg(fd, &plain, flags & ~MSG_FASTOPEN);
}

// sendto/sendmsg on a TCP socket with an address and MSG_FASTOPEN.
ssize_t tcp_fastopen(const char* call, int fd, const msghdr& msg, int flags) noexcept {
    auto d = judge_connect(msg.msg_name, msg.msg_namelen);
    auto* sa = static_cast<const sockaddr*>(msg.msg_name);
    switch (d.what) {
        case verdict::direct: return lp::marker::sendmsg(fd, &msg, flags);
        case verdict::refuse: return lp::refuse::by_policy(call, d);
        case verdict::proxy: return fastopen_via_proxy(fd, sa, msg.msg_namelen, msg, flags);
    }
    return lp::refuse::by_policy(call, d);
}

// Shared by sendto and sendmsg once the call has an address.
ssize_t send_addressed(const char* call, int fd, const msghdr& msg, int flags) noexcept {
    sock s = inspect(fd);
    if (s.type < 0)
        return lp::marker::sendmsg(fd, &msg, flags);  // not a socket: the kernel says so
    if (s.tcp) {
        if (!(flags & MSG_FASTOPEN))
            return lp::marker::sendmsg(fd, &msg, flags);  // address ignored
        return tcp_fastopen(call, fd, msg, flags);
    }
    auto d = judge(s, msg.msg_name, msg.msg_namelen);
    if (allowed(d)) return lp::marker::sendmsg(fd, &msg, flags);
    if (lp::udp_relay::carries(d, s.type)) return lp::udp_relay::send_to(fd, msg, flags, d);
    if (lp::dns_redirect::to_responder(d)) return lp::dns_redirect::sendmsg(fd, msg, flags);
    return lp::refuse::by_policy(call, d);
}

// How many leading messages of a sendmmsg() batch may go out; the first
// refused one is judged again when the program retries from there, which is
// when it gets its EPERM (the kernel's own partial-batch rule).
// A DNS query among them goes to the supervisor's responder: then
// `to_responder`, and the prefix is sent unmarked (dns_redirect.hpp).
unsigned allowed_prefix(const sock& s, const mmsghdr* vec, unsigned n,
                        lp::policy::decision& refused, bool& to_responder) noexcept {
    to_responder = false;
    for (unsigned i = 0; i < n; ++i) {
        const msghdr& m = vec[i].msg_hdr;
        if (!addressed(m.msg_name, m.msg_namelen)) continue;
        refused = judge(s, m.msg_name, m.msg_namelen);
        if (lp::dns_redirect::to_responder(refused)) {
            to_responder = true;
            continue;
        }
        if (!allowed(refused)) return i;
    }
    return n;
}

// The first addressed message of a batch, or n.
unsigned first_addressed(const mmsghdr* vec, unsigned n) noexcept {
    for (unsigned i = 0; i < n; ++i)
        if (addressed(vec[i].msg_hdr.msg_name, vec[i].msg_hdr.msg_namelen)) return i;
    return n;
}

int tcp_sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags, unsigned first) noexcept {
    if (!(flags & MSG_FASTOPEN))
        return lp::marker::sendmmsg(fd, vec, n, flags);  // addresses ignored
    const msghdr& m = vec[first].msg_hdr;
    auto d = judge_connect(m.msg_name, m.msg_namelen);
    if (d.what == verdict::direct) return lp::marker::sendmmsg(fd, vec, n, flags);
    if (d.what == verdict::proxy) {
        d.reason = "MSG_FASTOPEN in sendmmsg cannot go through the proxy (use connect)";
        d.error = EOPNOTSUPP;
    }
    return lp::refuse::by_policy("sendmmsg", d);
}

// --udp: a batch may mix datagrams for the relay, for the responder and
// for direct destinations; each is sent as sendmsg() would send it, and
// the count of those sent is returned (the first failure's errno when none
// was: the kernel's partial-batch rule).
int one_by_one(int fd, mmsghdr* vec, unsigned n, int flags) noexcept {
    unsigned sent = 0;
    for (; sent < n; ++sent) {
        ssize_t r = lp::hook::sendmsg(fd, &vec[sent].msg_hdr, flags);
        if (r < 0) return sent == 0 ? -1 : static_cast<int>(sent);
        vec[sent].msg_len = static_cast<unsigned>(r);
    }
    return static_cast<int>(sent);
}

}  // namespace

ssize_t lp::hook::sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* sa,
                         socklen_t len) noexcept {
    if (!addressed(sa, len)) {
        if (fdtable::relayed(fd)) {
            iovec one{const_cast<void*>(buf), n};
            return udp_relay::send_connected(fd, &one, 1, flags);
        }
        return lp::marker::sendto(fd, buf, n, flags, sa, len);
    }
    iovec iov{const_cast<void*>(buf), n};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr*>(sa);
    msg.msg_namelen = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    return send_addressed("sendto", fd, msg, flags);
}

ssize_t lp::hook::sendmsg(int fd, const msghdr* msg, int flags) noexcept {
    if (msg != nullptr && !addressed(msg->msg_name, msg->msg_namelen) && fdtable::relayed(fd))
        return udp_relay::send_connected(fd, msg->msg_iov, msg->msg_iovlen, flags);
    if (msg == nullptr || !addressed(msg->msg_name, msg->msg_namelen))
        return lp::marker::sendmsg(fd, msg, flags);
    return send_addressed("sendmsg", fd, *msg, flags);
}

int lp::hook::sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept {
    if (vec != nullptr && fdtable::relayed(fd)) return one_by_one(fd, vec, n, flags);
    unsigned first = vec == nullptr ? n : first_addressed(vec, n);
    if (first == n) return lp::marker::sendmmsg(fd, vec, n, flags);
    sock s = inspect(fd);
    if (s.type < 0) return lp::marker::sendmmsg(fd, vec, n, flags);
    if (s.tcp) return tcp_sendmmsg(fd, vec, n, flags, first);
    if (config::get().udp && s.type == SOCK_DGRAM) return one_by_one(fd, vec, n, flags);
    policy::decision refused;
    bool to_responder = false;
    unsigned ok = allowed_prefix(s, vec, n, refused, to_responder);
    if (ok == 0) return refuse::by_policy("sendmmsg", refused);
    if (to_responder) return dns_redirect::sendmmsg(fd, vec, ok, flags);
    return lp::marker::sendmmsg(fd, vec, ok, flags);
}
