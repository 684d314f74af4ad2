// listen(), accept(), accept4() and getsockname(): a listening socket that
// gets a SOCKS BIND at the first proxy under --inbound (interposer/inbound.hpp);
// every other socket goes straight to libc.
#include <errno.h>
#include <sys/socket.h>

#include "interposer/inbound.hpp"
#include "runtime/real.hpp"

LP_EXPORT int listen(int fd, int backlog) {
    if (int rc = 0; lp::inbound::listen(fd, backlog, rc)) return rc;
    return lp::real::fn().listen(fd, backlog);
}

LP_EXPORT int accept(int fd, sockaddr* sa, socklen_t* len) {
    if (int rc = 0; lp::inbound::accept(fd, sa, len, 0, rc)) return rc;
    return lp::real::fn().accept(fd, sa, len);
}

LP_EXPORT int accept4(int fd, sockaddr* sa, socklen_t* len, int flags) {
    if (int rc = 0; lp::inbound::accept(fd, sa, len, flags, rc)) return rc;
    return lp::real::fn().accept4(fd, sa, len, flags);
}

LP_EXPORT int getsockname(int fd, sockaddr* sa, socklen_t* len) {
    if (lp::inbound::sockname(fd, sa, len)) return 0;
    return lp::real::fn().getsockname(fd, sa, len);
}
