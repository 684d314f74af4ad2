// leakproof preload — the real libc functions behind the ones we hook.
//
// Only the functions this library *defines* need dlsym(RTLD_NEXT): calling
// connect() from inside our connect() would recurse. Everything else (read,
// write, poll…) is called directly. The table is filled once, on the
// first hooked call (pthread_once), never at load time.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

namespace lp::real {

struct functions {
    int (*connect)(int, const sockaddr*, socklen_t);
    int (*getpeername)(int, sockaddr*, socklen_t*);
    int (*getaddrinfo)(const char*, const char*, const addrinfo*, addrinfo**);
    void (*freeaddrinfo)(addrinfo*);
    int (*getnameinfo)(const sockaddr*, socklen_t, char*, socklen_t, char*, socklen_t, int);
    int (*close)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*close_range)(unsigned, unsigned, int);
    int (*fcntl)(int, int, ...);
    int (*fcntl64)(int, int, ...);
    ssize_t (*sendto)(int, const void*, size_t, int, const sockaddr*, socklen_t);
    ssize_t (*sendmsg)(int, const msghdr*, int);
    int (*sendmmsg)(int, mmsghdr*, unsigned, int);
    long (*syscall)(long, ...);
};

// The resolved table; never null members after the first call (a missing
// symbol aborts: running without the real function would be worse).
const functions& fn() noexcept;

}  // namespace lp::real

// Hooks are the only symbols this library exports.
#define LP_EXPORT extern "C" __attribute__((visibility("default")))
