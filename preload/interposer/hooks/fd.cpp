// Descriptor lifetime hooks: close, close_range, the
// dup family and fcntl(F_DUPFD*) keep fdtable in step with the kernel's
// table, each with one call, so what we remember about a socket follows
// every copy of it and never outlives its descriptor number.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>

#include "interposer/fdtable.hpp"
#include "interposer/hooks.hpp"
#include "interposer/hooks/epoll.hpp"
#include "interposer/pending.hpp"
#include "runtime/real.hpp"

int lp::hook::close(int fd) noexcept {
    // Forget first: once the kernel frees the number another thread may get
    // it for a new socket, whose state we must not then wipe.
    fdtable::forget(fd);
    return real::fn().close(fd);
}

int lp::hook::close_range(unsigned first, unsigned last, int flags) noexcept {
    // CLOSE_RANGE_CLOEXEC closes nothing now (exec discards our table anyway);
    // a call the kernel will reject must not lose state either.
    bool closes = first <= last && (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)) == 0 &&
                  !(flags & CLOSE_RANGE_CLOEXEC);
    if (closes) fdtable::forget_range(first, last);
    return real::fn().close_range(first, last, flags);
}

int lp::hook::dup(int fd) noexcept {
    int r = real::fn().dup(fd);
    if (r >= 0) fdtable::copy(fd, r);
    return r;
}

int lp::hook::dup2(int fd, int fd2) noexcept {
    int r = real::fn().dup2(fd, fd2);
    if (r >= 0) fdtable::copy(fd, r);
    return r;
}

int lp::hook::dup3(int fd, int fd2, int flags) noexcept {
    int r = real::fn().dup3(fd, fd2, flags);
    if (r >= 0) fdtable::copy(fd, r);
    return r;
}

int lp::hook::fcntl(int (*real)(int, int, ...), int fd, int cmd, void* arg) noexcept {
    int r = real(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) fdtable::copy(fd, r);
    return r;
}

LP_EXPORT int close(int fd) {
    return lp::hook::close(fd);
}

LP_EXPORT int close_range(unsigned first, unsigned last, int flags) {
    return lp::hook::close_range(first, last, flags);
}

LP_EXPORT int dup(int fd) {
    return lp::hook::dup(fd);
}

LP_EXPORT int dup2(int fd, int fd2) {
    return lp::hook::dup2(fd, fd2);
}

LP_EXPORT int dup3(int fd, int fd2, int flags) {
    return lp::hook::dup3(fd, fd2, flags);
}

// fcntl's third argument is an int, a long or a pointer depending on cmd;
// on the supported ABIs each travels in one register/slot, so it is read as
// a pointer and handed on unchanged (reading it when absent is harmless
// there: libc's own fcntl does the same).
LP_EXPORT int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return lp::hook::fcntl(lp::real::fn().fcntl, fd, cmd, arg);
}

// What programs built with _FILE_OFFSET_BITS=64 call instead of fcntl.
LP_EXPORT int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return lp::hook::fcntl(lp::real::fn().fcntl64, fd, cmd, arg);
}
