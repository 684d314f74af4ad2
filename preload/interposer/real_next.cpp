#include "runtime/real.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <cstdio>
#include <cstdlib>

namespace lp::real {
namespace {

functions table;
pthread_once_t once = PTHREAD_ONCE_INIT;

template <typename F>
void load(F& slot, const char* name) noexcept {
    void* p = dlsym(RTLD_NEXT, name);
    if (p == nullptr) {
        // Without the real function we could only fail or leak; say so and
        // stop. Not with write(): that is our own hook, which would wait for
        // this very pthread_once and hang. stdio reaches the kernel through
        // libc's internal write, which no preload replaces.
        std::fputs("leakproof: cannot find the real libc function ", stderr);
        std::fputs(name, stderr);
        std::fputs("\n", stderr);
        std::abort();
    }
    slot = reinterpret_cast<F>(p);
}

void resolve() noexcept {
    load(table.connect, "connect");
    load(table.getpeername, "getpeername");
    load(table.getaddrinfo, "getaddrinfo");
    load(table.freeaddrinfo, "freeaddrinfo");
    load(table.getnameinfo, "getnameinfo");
    load(table.close, "close");
    load(table.dup, "dup");
    load(table.dup2, "dup2");
    load(table.dup3, "dup3");
    load(table.close_range, "close_range");
    load(table.fcntl, "fcntl");
    load(table.fcntl64, "fcntl64");
    load(table.sendto, "sendto");
    load(table.sendmsg, "sendmsg");
    load(table.sendmmsg, "sendmmsg");
    load(table.syscall, "syscall");
    load(table.poll, "poll");
    load(table.ppoll, "ppoll");
    load(table.select, "select");
    load(table.pselect, "pselect");
    load(table.epoll_ctl, "epoll_ctl");
    load(table.getsockopt, "getsockopt");
    load(table.read, "read");
    load(table.write, "write");
    load(table.readv, "readv");
    load(table.writev, "writev");
    load(table.recv, "recv");
    load(table.send, "send");
    load(table.recvfrom, "recvfrom");
    load(table.recvmsg, "recvmsg");
    load(table.read_chk, "__read_chk");
    load(table.recv_chk, "__recv_chk");
    load(table.recvfrom_chk, "__recvfrom_chk");
    load(table.poll_chk, "__poll_chk");
    load(table.execve, "execve");
    load(table.execvpe, "execvpe");
    load(table.fexecve, "fexecve");
    load(table.posix_spawn, "posix_spawn");
    load(table.posix_spawnp, "posix_spawnp");
    load(table.recvmmsg, "recvmmsg");
    load(table.sendfile, "sendfile");
    load(table.sendfile64, "sendfile64");
    load(table.splice, "splice");
    load(table.shutdown, "shutdown");
    load(table.listen, "listen");
    load(table.accept, "accept");
    load(table.accept4, "accept4");
    load(table.getsockname, "getsockname");
}

// At load time, see real.hpp. fn() still works before this runs (another
// library's constructor may call a hooked function first).
__attribute__((constructor)) void resolve_at_load() noexcept {
    pthread_once(&once, resolve);
}

}  // namespace

const functions& fn() noexcept {
    pthread_once(&once, resolve);
    return table;
}

}  // namespace lp::real
