// The real-function table for the wrapper and its supervisor, which hook
// nothing: libc's functions themselves, bound at link time. (interposer/real_next.cpp's
// dlsym(RTLD_NEXT) is for the interposer, and cannot work in a static
// wrapper.)
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime/real.hpp"

extern "C" {
ssize_t __read_chk(int, void*, size_t, size_t);
ssize_t __recv_chk(int, void*, size_t, size_t, int);
ssize_t __recvfrom_chk(int, void*, size_t, size_t, int, sockaddr*, socklen_t*);
int __poll_chk(pollfd*, nfds_t, int, size_t);
}

namespace lp::real {
namespace {

constinit const functions table{
    ::connect,  ::getpeername, ::getaddrinfo,  ::freeaddrinfo, ::getnameinfo, ::close,
    ::dup,      ::dup2,        ::dup3,         ::close_range,  ::fcntl,       ::fcntl64,
    ::sendto,   ::sendmsg,     ::sendmmsg,     ::syscall,      ::poll,        ::ppoll,
    ::select,   ::pselect,     ::epoll_ctl,    ::getsockopt,   ::read,        ::write,
    ::readv,    ::writev,      ::recv,         ::send,         ::recvfrom,    ::recvmsg,
    __read_chk, __recv_chk,    __recvfrom_chk, __poll_chk,     ::execve,      ::execvpe,
    ::fexecve,  ::posix_spawn, ::posix_spawnp, ::recvmmsg,     ::sendfile,    ::sendfile64,
    ::splice,   ::shutdown,    ::listen,       ::accept,       ::accept4,     ::getsockname,
};

}  // namespace

const functions& fn() noexcept {
    return table;
}

}  // namespace lp::real
