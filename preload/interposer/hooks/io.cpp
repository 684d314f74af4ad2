// Every call that moves a socket's bytes, and the one rule for a socket
// whose proxied connect is pending or has failed (pending.hpp).
//
// While the helper thread runs the handshake, the socket's bytes are the
// proxy's: a program's read would eat the reply and its write would corrupt
// the request (with optimistic data only the reads wait: see held()). So
// every call below answers like the kernel for a connecting socket (EAGAIN)
// before it reaches the socket, and getsockopt(SO_ERROR) says 0 (in
// progress) or, once, the failure's errno. After a failure writes and reads
// get that errno once, like the kernel's pending socket error
// (the socket is unconnected again: tunnel::disconnect). A socket the
// program made blocking meanwhile waits for the handshake instead of EAGAIN.
//
// This file is the one list of those calls (and shutdown(), which drops a
// pending connect like the kernel's): reading read, __read_chk,
// readv, recv, __recv_chk, recvfrom, __recvfrom_chk, recvmsg, recvmmsg,
// splice (from the socket); writing write, writev, send, sendto, sendmsg,
// sendmmsg, sendfile, sendfile64, splice (to the socket). The send family
// then goes on to the policy for the addresses it carries (hooks/send.cpp).
#include <errno.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "interposer/dns_redirect.hpp"
#include "interposer/fdtable.hpp"
#include "interposer/hooks.hpp"
#include "interposer/pending.hpp"
#include "interposer/udp_relay.hpp"
#include "runtime/real.hpp"

namespace {

// A --udp socket's datagrams go through its relay (interposer/udp_relay.hpp):
// one atomic load for every other socket.
bool relayed(int fd) noexcept {
    return lp::fdtable::relayed(fd);
}

ssize_t relayed_receive(int fd, void* buf, size_t n, int flags, sockaddr* sa = nullptr,
                        socklen_t* len = nullptr) noexcept {
    iovec one{buf, n};
    return lp::udp_relay::receive(fd, &one, 1, flags, sa, len, nullptr);
}

ssize_t relayed_send(int fd, const void* buf, size_t n, int flags) noexcept {
    iovec one{const_cast<void*>(buf), n};
    return lp::udp_relay::send_connected(fd, &one, 1, flags);
}

// The program made the socket blocking while its connect is pending: the
// kernel's call would wait for the connection, and so does this one.
bool blocking(int fd) noexcept {
    int flags = lp::real::fn().fcntl(fd, F_GETFL);
    return flags >= 0 && !(flags & O_NONBLOCK);
}

// True (errno set) when the call must not reach the socket: pending
// (EAGAIN, or a wait on a blocking socket), or failed (its error, once, like
// the kernel's pending socket error; then the kernel's own answers). While
// an optimistic connect's reply is outstanding writes go through (the
// program's bytes follow the request on the stream) and reads are held back
// as if pending: every reply byte is the handshake's.
bool held(int fd, bool writing, int flags = 0) noexcept {
    int st = lp::fdtable::status(fd);
    auto passes = [writing](int s) {
        return s == lp::fdtable::idle || (writing && s == lp::fdtable::reply_outstanding);
    };
    if (passes(st)) return false;
    if (lp::fdtable::in_handshake(st) && !(flags & MSG_DONTWAIT) && blocking(fd)) {
        using lp::hook::until_stage;
        lp::hook::wait_until_settled(fd,
                                     writing ? until_stage::connected : until_stage::reply_read);
        st = lp::fdtable::status(fd);
        if (passes(st)) return false;
    }
    if (lp::fdtable::in_handshake(st)) {
        errno = EAGAIN;
        return true;
    }
    int err = lp::fdtable::take_error(fd, false);
    if (err == 0) return false;  // another thread reported it
    errno = err;
    return true;
}

}  // namespace

ssize_t lp::hook::checked_sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* sa,
                                 socklen_t len) noexcept {
    return held(fd, true) ? -1 : lp::hook::sendto(fd, buf, n, flags, sa, len);
}

ssize_t lp::hook::checked_sendmsg(int fd, const msghdr* msg, int flags) noexcept {
    return held(fd, true) ? -1 : lp::hook::sendmsg(fd, msg, flags);
}

int lp::hook::checked_sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept {
    return held(fd, true) ? -1 : lp::hook::sendmmsg(fd, vec, n, flags);
}

LP_EXPORT int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
    if (level != SOL_SOCKET || name != SO_ERROR || val == nullptr || len == nullptr ||
        *len < sizeof(int) || lp::fdtable::status(fd) == lp::fdtable::idle)
        return lp::real::fn().getsockopt(fd, level, name, val, len);
    lp::async::settle(fd);
    // Pending: 0, like a connect in progress. Failed: the errno, reported once.
    int err =
        lp::fdtable::status(fd) == lp::fdtable::pending ? 0 : lp::fdtable::take_error(fd, false);
    *static_cast<int*>(val) = err;
    *len = sizeof(int);
    return 0;
}

// shutdown() of a connecting socket drops its connect (the kernel's rule for
// SYN_SENT): the handshake is abandoned the same way.
LP_EXPORT int shutdown(int fd, int how) {
    if (lp::fdtable::status(fd) == lp::fdtable::pending && lp::async::abandon(fd) == 0) return 0;
    return lp::real::fn().shutdown(fd, how);
}

// ---- reading ----------------------------------------------------------------

LP_EXPORT ssize_t read(int fd, void* buf, size_t n) {
    if (relayed(fd)) return relayed_receive(fd, buf, n, 0);
    return held(fd, false) ? -1 : lp::real::fn().read(fd, buf, n);
}

LP_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
    if (relayed(fd)) return relayed_receive(fd, buf, n < buflen ? n : buflen, 0);
    return held(fd, false) ? -1 : lp::real::fn().read_chk(fd, buf, n, buflen);
}

LP_EXPORT ssize_t readv(int fd, const iovec* iov, int n) {
    if (relayed(fd))
        return lp::udp_relay::receive(fd, iov, n < 0 ? 0 : n, 0, nullptr, nullptr, nullptr);
    return held(fd, false) ? -1 : lp::real::fn().readv(fd, iov, n);
}

LP_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
    if (relayed(fd)) return relayed_receive(fd, buf, n, flags);
    return held(fd, false, flags) ? -1 : lp::real::fn().recv(fd, buf, n, flags);
}

LP_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
    if (relayed(fd)) return relayed_receive(fd, buf, n < buflen ? n : buflen, flags);
    return held(fd, false) ? -1 : lp::real::fn().recv_chk(fd, buf, n, buflen, flags);
}

// The receives that report a source: a DNS answer from the supervisor's
// responder reads as coming from the server the program asked
// (interposer/dns_redirect.hpp).
LP_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* sa, socklen_t* len) {
    if (relayed(fd)) return relayed_receive(fd, buf, n, flags, sa, len);
    if (held(fd, false)) return -1;
    socklen_t capacity = len != nullptr ? *len : 0;
    ssize_t got = lp::real::fn().recvfrom(fd, buf, n, flags, sa, len);
    if (got >= 0) lp::dns_redirect::restore_source(fd, sa, len, capacity);
    return got;
}

LP_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                 sockaddr* sa, socklen_t* len) {
    if (relayed(fd)) return relayed_receive(fd, buf, n < buflen ? n : buflen, flags, sa, len);
    if (held(fd, false)) return -1;
    socklen_t capacity = len != nullptr ? *len : 0;
    ssize_t got = lp::real::fn().recvfrom_chk(fd, buf, n, buflen, flags, sa, len);
    if (got >= 0) lp::dns_redirect::restore_source(fd, sa, len, capacity);
    return got;
}

LP_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    if (msg != nullptr && relayed(fd)) {
        msg->msg_controllen = 0;  // the relay's ancillary data is not the sender's
        return lp::udp_relay::receive(fd, msg->msg_iov, msg->msg_iovlen, flags,
                                      static_cast<sockaddr*>(msg->msg_name), &msg->msg_namelen,
                                      &msg->msg_flags);
    }
    if (held(fd, false)) return -1;
    socklen_t capacity = msg != nullptr ? msg->msg_namelen : 0;
    ssize_t got = lp::real::fn().recvmsg(fd, msg, flags);
    if (got >= 0)
        lp::dns_redirect::restore_source(fd, static_cast<sockaddr*>(msg->msg_name),
                                         &msg->msg_namelen, capacity);
    return got;
}

// A relayed socket's batch: one datagram at a time, the first waiting as
// the socket does, the others only if already there (the timeout is not
// applied: a relay socket's batch ends with what has arrived).
int relayed_recvmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept {
    unsigned got = 0;
    for (; got < n; ++got) {
        msghdr& m = vec[got].msg_hdr;
        m.msg_controllen = 0;
        ssize_t r = lp::udp_relay::receive(
            fd, m.msg_iov, m.msg_iovlen, got == 0 ? flags : flags | MSG_DONTWAIT,
            static_cast<sockaddr*>(m.msg_name), &m.msg_namelen, &m.msg_flags);
        if (r < 0) return got == 0 ? -1 : static_cast<int>(got);
        vec[got].msg_len = static_cast<unsigned>(r);
        if (flags & MSG_WAITFORONE) flags |= MSG_DONTWAIT;
    }
    return static_cast<int>(got);
}

LP_EXPORT int recvmmsg(int fd, mmsghdr* vec, unsigned n, int flags, timespec* t) {
    if (vec != nullptr && relayed(fd)) return relayed_recvmmsg(fd, vec, n, flags);
    if (held(fd, false)) return -1;
    if (vec == nullptr || !lp::dns_redirect::asked_dns(fd))
        return lp::real::fn().recvmmsg(fd, vec, n, flags, t);
    constexpr unsigned max_batch = 1024;  // UIO_MAXIOV: the kernel takes no more
    socklen_t capacity[max_batch];
    unsigned count = n < max_batch ? n : max_batch;
    for (unsigned i = 0; i < count; ++i) capacity[i] = vec[i].msg_hdr.msg_namelen;
    int got = lp::real::fn().recvmmsg(fd, vec, count, flags, t);
    if (got > 0) lp::dns_redirect::restore_sources(fd, vec, got, capacity);
    return got;
}

// ---- writing ----------------------------------------------------------------

LP_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
    if (relayed(fd)) return relayed_send(fd, buf, n, 0);
    return held(fd, true) ? -1 : lp::real::fn().write(fd, buf, n);
}

LP_EXPORT ssize_t writev(int fd, const iovec* iov, int n) {
    if (relayed(fd)) return lp::udp_relay::send_connected(fd, iov, n < 0 ? 0 : n, 0);
    return held(fd, true) ? -1 : lp::real::fn().writev(fd, iov, n);
}

LP_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
    if (relayed(fd)) return relayed_send(fd, buf, n, flags);
    return held(fd, true, flags) ? -1 : lp::real::fn().send(fd, buf, n, flags);
}

LP_EXPORT ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* sa,
                         socklen_t len) {
    return lp::hook::checked_sendto(fd, buf, n, flags, sa, len);
}

LP_EXPORT ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    return lp::hook::checked_sendmsg(fd, msg, flags);
}

LP_EXPORT int sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) {
    return lp::hook::checked_sendmmsg(fd, vec, n, flags);
}

LP_EXPORT ssize_t sendfile(int out, int in, off_t* offset, size_t n) {
    return held(out, true) ? -1 : lp::real::fn().sendfile(out, in, offset, n);
}

LP_EXPORT ssize_t sendfile64(int out, int in, off64_t* offset, size_t n) {
    return held(out, true) ? -1 : lp::real::fn().sendfile64(out, in, offset, n);
}

// ---- both -------------------------------------------------------------------

LP_EXPORT ssize_t splice(int in, loff_t* in_off, int out, loff_t* out_off, size_t n,
                         unsigned flags) {
    if (held(in, false) || held(out, true)) return -1;
    return lp::real::fn().splice(in, in_off, out, out_off, n, flags);
}
