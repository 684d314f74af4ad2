// The hooks as internal functions, for hooks that must
// run another hook's logic (syscall(), sendto with MSG_FASTOPEN,
// getaddrinfo_a) without going back through the dynamic linker: calling the
// exported symbol from inside the library would depend on symbol
// interposition order.
#pragma once

#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>

namespace lp::hook {

// `may_defer`: a non-blocking socket may get -1/EINPROGRESS while the helper
// thread runs the handshake; false runs it to the end before returning.
int connect(int fd, const sockaddr* sa, socklen_t len, bool may_defer = true) noexcept;
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* sa,
               socklen_t len) noexcept;
ssize_t sendmsg(int fd, const msghdr* msg, int flags) noexcept;
int sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept;
int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                addrinfo** res) noexcept;
int close(int fd) noexcept;
int close_range(unsigned first, unsigned last, int flags) noexcept;
int dup(int fd) noexcept;
int dup2(int fd, int fd2) noexcept;
int dup3(int fd, int fd2, int flags) noexcept;
// `real` is the libc fcntl or fcntl64 the exported hook stands for.
int fcntl(int (*real)(int, int, ...), int fd, int cmd, void* arg) noexcept;

// Waits until fd's pending handshake has got to `stage` or ended
// (hooks/poll.cpp): bounded by the handshake's own deadline. `connected`:
// the socket may be written (with optimistic data, before the reply is
// read); `reply_read`: it may be read too.
enum class until_stage { connected, reply_read };
void wait_until_settled(int fd, until_stage stage) noexcept;

// The exported sendto/sendmsg/sendmmsg: held back while fd's proxied
// connect is pending or failed (hooks/io.cpp), then the above.
ssize_t checked_sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* sa,
                       socklen_t len) noexcept;
ssize_t checked_sendmsg(int fd, const msghdr* msg, int flags) noexcept;
int checked_sendmmsg(int fd, mmsghdr* vec, unsigned n, int flags) noexcept;

// The socket's SOL_SOCKET option `opt` (SO_TYPE, SO_DOMAIN), or -1 when fd
// is not a socket.
int socket_info(int fd, int opt) noexcept;

}  // namespace lp::hook
