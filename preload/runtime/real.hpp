// The real libc functions behind the ones we hook.
//
// Only the functions libleakproof.so *defines* need dlsym(RTLD_NEXT), and
// code inside the library calls them only through this table: their plain
// names are the library's own hooks, so a ::write() in the runtime would go
// through the write hook (and, in real_next.cpp's abort path, wait for the
// very pthread_once it runs in). tests/unit/interposer/symbols_test.py
// checks the library's objects for such calls. Everything else (socket,
// open, epoll_wait…) is called directly. The table is filled once (pthread_once),
// at load time: a hook's first call may come from where dlsym() must not run
// (a signal handler; ThreadSanitizer's report path, which calls fcntl() and
// then hangs in dlsym's allocations — tests/preload/stress_test.py tsan_*).
#pragma once

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>

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
    // The readiness and I/O calls hooked for non-blocking connects (pending.hpp).
    int (*poll)(pollfd*, nfds_t, int);
    int (*ppoll)(pollfd*, nfds_t, const timespec*, const sigset_t*);
    int (*select)(int, fd_set*, fd_set*, fd_set*, timeval*);
    int (*pselect)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*);
    int (*epoll_ctl)(int, int, int, epoll_event*);
    int (*getsockopt)(int, int, int, void*, socklen_t*);
    ssize_t (*read)(int, void*, size_t);
    ssize_t (*write)(int, const void*, size_t);
    ssize_t (*readv)(int, const iovec*, int);
    ssize_t (*writev)(int, const iovec*, int);
    ssize_t (*recv)(int, void*, size_t, int);
    ssize_t (*send)(int, const void*, size_t, int);
    ssize_t (*recvfrom)(int, void*, size_t, int, sockaddr*, socklen_t*);
    ssize_t (*recvmsg)(int, msghdr*, int);
    ssize_t (*read_chk)(int, void*, size_t, size_t);
    ssize_t (*recv_chk)(int, void*, size_t, size_t, int);
    ssize_t (*recvfrom_chk)(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);
    int (*poll_chk)(pollfd*, nfds_t, int, size_t);
    // The exec family and posix_spawn, hooked where no supervisor watches
    // the tree (interposer/hooks/exec.cpp); execv, execl... end in these.
    int (*execve)(const char*, char* const[], char* const[]);
    int (*execvpe)(const char*, char* const[], char* const[]);
    int (*fexecve)(int, char* const[], char* const[]);
    int (*posix_spawn)(pid_t*, const char*, const posix_spawn_file_actions_t*,
                       const posix_spawnattr_t*, char* const[], char* const[]);
    int (*posix_spawnp)(pid_t*, const char*, const posix_spawn_file_actions_t*,
                        const posix_spawnattr_t*, char* const[], char* const[]);
    int (*recvmmsg)(int, mmsghdr*, unsigned, int, timespec*);
    ssize_t (*sendfile)(int, int, off_t*, size_t);
    ssize_t (*sendfile64)(int, int, off64_t*, size_t);
    ssize_t (*splice)(int, loff_t*, int, loff_t*, size_t, unsigned);
    int (*shutdown)(int, int);
    // Listening sockets, for --inbound (interposer/inbound.hpp).
    int (*listen)(int, int);
    int (*accept)(int, sockaddr*, socklen_t*);
    int (*accept4)(int, sockaddr*, socklen_t*, int);
    int (*getsockname)(int, sockaddr*, socklen_t*);
};

// The resolved table; never null members after the first call (a missing
// symbol aborts: running without the real function would be worse).
const functions& fn() noexcept;

}  // namespace lp::real

// Hooks are the only symbols this library exports.
#define LP_EXPORT extern "C" __attribute__((visibility("default")))
