// libc's syscall(): a program (or a runtime) that calls
// SYS_connect or SYS_sendto through it would otherwise skip every hook. The
// network calls and the descriptor calls fdtable follows are routed to the
// same hooks as their libc wrappers; everything else goes to the real
// syscall() with all six arguments.
//
// syscall() is variadic and callers pass as many arguments as the call
// takes; all six are read as long, which is what the real one does (on the
// supported ABIs an absent argument is just an unused register or slot).
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <type_traits>

#include "interposer/hooks.hpp"
#include "runtime/real.hpp"

namespace {

struct args {
    long a[6];
};

template <typename T>
T as(long v) noexcept {
    if constexpr (std::is_pointer_v<T>)
        return reinterpret_cast<T>(v);
    else
        return static_cast<T>(v);
}

// The hooked calls; false when `nr` is not one of them.
bool hooked(long nr, const args& x, long& result) noexcept {
    namespace h = lp::hook;
    const long* a = x.a;
    switch (nr) {
        case SYS_connect:
            result = h::connect(as<int>(a[0]), as<const sockaddr*>(a[1]), as<socklen_t>(a[2]));
            return true;
        case SYS_sendto:
            result =
                h::checked_sendto(as<int>(a[0]), as<const void*>(a[1]), as<size_t>(a[2]),
                                  as<int>(a[3]), as<const sockaddr*>(a[4]), as<socklen_t>(a[5]));
            return true;
        case SYS_sendmsg:
            result = h::checked_sendmsg(as<int>(a[0]), as<const msghdr*>(a[1]), as<int>(a[2]));
            return true;
        case SYS_sendmmsg:
            result = h::checked_sendmmsg(as<int>(a[0]), as<mmsghdr*>(a[1]), as<unsigned>(a[2]),
                                         as<int>(a[3]));
            return true;
        default: return false;
    }
}

// The descriptor calls fdtable follows; false when `nr` is not one of them.
bool fd_hooked(long nr, const args& x, long& result) noexcept {
    namespace h = lp::hook;
    const long* a = x.a;
    switch (nr) {
        case SYS_close: result = h::close(as<int>(a[0])); return true;
        case SYS_close_range:
            result = h::close_range(as<unsigned>(a[0]), as<unsigned>(a[1]), as<int>(a[2]));
            return true;
        case SYS_dup: result = h::dup(as<int>(a[0])); return true;
        case SYS_dup2: result = h::dup2(as<int>(a[0]), as<int>(a[1])); return true;
        case SYS_dup3: result = h::dup3(as<int>(a[0]), as<int>(a[1]), as<int>(a[2])); return true;
        case SYS_fcntl:
            result = h::fcntl(lp::real::fn().fcntl, as<int>(a[0]), as<int>(a[1]), as<void*>(a[2]));
            return true;
        default: return false;
    }
}

}  // namespace

LP_EXPORT long syscall(long nr, ...) {
    args x;
    va_list ap;
    va_start(ap, nr);
    for (long& v : x.a) v = va_arg(ap, long);
    va_end(ap);
    long result;
    if (hooked(nr, x, result) || fd_hooked(nr, x, result)) return result;
    return lp::real::fn().syscall(nr, x.a[0], x.a[1], x.a[2], x.a[3], x.a[4], x.a[5]);
}
