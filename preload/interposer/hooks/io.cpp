// The calls that must not touch a socket whose proxied
// connect is pending or has failed (pending.hpp).
//
// While the helper thread runs the handshake, the socket's bytes are the
// proxy's: a program's read would eat the reply and its write would corrupt
// the request. So these answer like the kernel for a connecting socket
// (EAGAIN), and getsockopt(SO_ERROR) says 0 (in progress) or, once, the
// failure's errno. After a failure writes get that errno too (the socket is
// shut down: no SIGPIPE); reads see end-of-file.
#include <errno.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "interposer/hooks.hpp"
#include "interposer/pending.hpp"
#include "runtime/real.hpp"

namespace {

// True (errno set) when the call must not reach the socket.
bool held(int fd, bool writing) noexcept {
    int st = lp::async::status(fd);
    if (st == lp::async::idle) return false;
    if (st == lp::async::pending) {
        errno = EAGAIN;
        return true;
    }
    if (!writing) return false;
    errno = st;
    return true;
}

}  // namespace

bool lp::hook::held_io(int fd, bool writing) noexcept {
    return held(fd, writing);
}

LP_EXPORT int getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
    if (level != SOL_SOCKET || name != SO_ERROR || val == nullptr || len == nullptr ||
        *len < sizeof(int) || lp::async::status(fd) == lp::async::idle)
        return lp::real::fn().getsockopt(fd, level, name, val, len);
    lp::async::settle(fd);
    // Pending: 0, like a connect in progress. Failed: the errno, reported once.
    int err = lp::async::status(fd) == lp::async::pending ? 0 : lp::async::take_error(fd);
    *static_cast<int*>(val) = err;
    *len = sizeof(int);
    return 0;
}

LP_EXPORT ssize_t read(int fd, void* buf, size_t n) {
    return held(fd, false) ? -1 : lp::real::fn().read(fd, buf, n);
}

LP_EXPORT ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
    return held(fd, false) ? -1 : lp::real::fn().read_chk(fd, buf, n, buflen);
}

LP_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
    return held(fd, true) ? -1 : lp::real::fn().write(fd, buf, n);
}

LP_EXPORT ssize_t readv(int fd, const iovec* iov, int n) {
    return held(fd, false) ? -1 : lp::real::fn().readv(fd, iov, n);
}

LP_EXPORT ssize_t writev(int fd, const iovec* iov, int n) {
    return held(fd, true) ? -1 : lp::real::fn().writev(fd, iov, n);
}

LP_EXPORT ssize_t recv(int fd, void* buf, size_t n, int flags) {
    return held(fd, false) ? -1 : lp::real::fn().recv(fd, buf, n, flags);
}

LP_EXPORT ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
    return held(fd, false) ? -1 : lp::real::fn().recv_chk(fd, buf, n, buflen, flags);
}

LP_EXPORT ssize_t send(int fd, const void* buf, size_t n, int flags) {
    return held(fd, true) ? -1 : lp::real::fn().send(fd, buf, n, flags);
}

LP_EXPORT ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* sa, socklen_t* len) {
    return held(fd, false) ? -1 : lp::real::fn().recvfrom(fd, buf, n, flags, sa, len);
}

LP_EXPORT ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                 sockaddr* sa, socklen_t* len) {
    return held(fd, false) ? -1 : lp::real::fn().recvfrom_chk(fd, buf, n, buflen, flags, sa, len);
}

LP_EXPORT ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    return held(fd, false) ? -1 : lp::real::fn().recvmsg(fd, msg, flags);
}
