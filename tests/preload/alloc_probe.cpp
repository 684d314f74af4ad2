// Counts heap allocations made while connect() runs under the interposer
// (the connect path allocates nothing). The program's own malloc
// family is what every library in the process calls, libleakproof.so's
// operator new included, and it counts every thread's calls (the helper
// thread that runs a non-blocking socket's handshake too).
//
//   alloc_probe HOST PORT blocking|nonblocking|select ROUNDS
// prints "round I: N allocations" for each connect (the name is resolved
// before the count starts), and exits 1 if a connect fails. A non-blocking
// connect is counted until the socket is writable (poll(), or select())
// and connected.
#include <netdb.h>
#include <poll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<long> allocations{0};
}

extern "C" void* malloc(size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_malloc(n);
}
extern "C" void* calloc(size_t count, size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_calloc(count, n);
}
extern "C" void* realloc(void* p, size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_realloc(p, n);
}
extern "C" void* memalign(size_t align, size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(align, n);
}
extern "C" int posix_memalign(void** out, size_t align, size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    *out = __libc_memalign(align, n);
    return *out != nullptr ? 0 : ENOMEM;
}
extern "C" void* aligned_alloc(size_t align, size_t n) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    return __libc_memalign(align, n);
}
extern "C" void free(void* p) {
    __libc_free(p);
}

namespace {

enum class mode { blocking, nonblocking, select };

bool writable(int fd, mode m) {
    if (m == mode::select) {
        fd_set w;
        FD_ZERO(&w);
        FD_SET(fd, &w);
        timeval tv{10, 0};
        return select(fd + 1, nullptr, &w, nullptr, &tv) == 1;
    }
    pollfd p{fd, POLLOUT, 0};
    return poll(&p, 1, 10000) == 1;
}

// Connected, or false; a non-blocking socket is waited for.
bool connect_and_wait(int fd, const addrinfo* ai, mode m) {
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return true;
    if (m == mode::blocking || !writable(fd, m)) return false;
    int err = -1;
    socklen_t len = sizeof err;
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: alloc_probe HOST PORT blocking|nonblocking|select ROUNDS\n");
        return 2;
    }
    const mode m = std::strcmp(argv[3], "select") == 0        ? mode::select
                   : std::strcmp(argv[3], "nonblocking") == 0 ? mode::nonblocking
                                                              : mode::blocking;
    const int rounds = std::atoi(argv[4]);
    for (int i = 0; i < rounds; ++i) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* ai = nullptr;
        if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) return 1;
        int fd = socket(ai->ai_family, SOCK_STREAM | (m != mode::blocking ? SOCK_NONBLOCK : 0), 0);
        const long before = allocations.load();
        const bool ok = fd >= 0 && connect_and_wait(fd, ai, m);
        const long during = allocations.load() - before;
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        if (!ok) {
            std::fprintf(stderr, "alloc_probe: round %d: connect failed\n", i);
            return 1;
        }
        std::printf("round %d: %ld allocations\n", i, during);
    }
    return 0;
}
