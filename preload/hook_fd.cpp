// leakproof preload — descriptor lifetime hooks: close and the dup family
// keep fdstate in step with the kernel's table. Issue 5 adds its fd-level
// hooks here.
#include <errno.h>

#include "fdstate.hpp"
#include "real.hpp"

LP_EXPORT int close(int fd) {
    lp::fdstate::forget(fd);
    return lp::real::fn().close(fd);
}

LP_EXPORT int dup(int fd) {
    int r = lp::real::fn().dup(fd);
    if (r >= 0) lp::fdstate::copy(fd, r);
    return r;
}

LP_EXPORT int dup2(int fd, int fd2) {
    int r = lp::real::fn().dup2(fd, fd2);
    if (r >= 0) lp::fdstate::copy(fd, r);
    return r;
}

LP_EXPORT int dup3(int fd, int fd2, int flags) {
    int r = lp::real::fn().dup3(fd, fd2, flags);
    if (r >= 0) lp::fdstate::copy(fd, r);
    return r;
}
