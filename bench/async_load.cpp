// N concurrent async_connects through one proxy on one io_context thread.
//
//     async_load PROXY-URL HOST PORT [N]
//
// Prints connects per second and the heap bytes each pending connect holds
// (everything allocated between starting the N operations and the first
// completion: Asio's operation, leakproof's state, the socket), and exits
// non-zero unless every connect succeeded. Used as a test (asio.load) and as
// a benchmark (bench/run.py).
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/io_context.hpp>
#else
#include <asio/io_context.hpp>
#endif

#include "leakproof/asio.hpp"

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

namespace {
std::atomic<std::size_t> allocated_bytes{0};
}

// Counting allocator: the only way to see what a pending operation costs.
void* operator new(std::size_t n) {
    allocated_bytes.fetch_add(n, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

// Each connect needs a socket here and two in the proxy's process.
std::size_t raise_fd_limit(std::size_t wanted) {
    rlimit lim{};
    getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    return std::min<std::size_t>(wanted, lim.rlim_cur > 64 ? lim.rlim_cur - 64 : 0);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s PROXY-URL HOST PORT [N]\n", argv[0]);
        return 2;
    }
    leakproof::proxy proxy;
    if (auto ec = leakproof::parse_proxy_url(argv[1], proxy)) {
        std::fprintf(stderr, "async_load: %s\n", ec.message().c_str());
        return 2;
    }
    const auto port = static_cast<std::uint16_t>(std::atoi(argv[3]));
    std::size_t wanted = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 10000;
    std::size_t n = raise_fd_limit(wanted);
    if (n < wanted) std::printf("async_load: fd limit allows only %zu connects\n", n);

    net::io_context io(1);
    std::vector<net::ip::tcp::socket> sockets;
    sockets.reserve(n);
    for (std::size_t i = 0; i < n; ++i) sockets.emplace_back(io);

    std::size_t ok = 0, failed = 0;
    leakproof::error_code first_error;
    leakproof::connect_options options;
    options.timeout = std::chrono::seconds(60);
    auto start = std::chrono::steady_clock::now();
    std::size_t before = allocated_bytes.load();
    for (auto& socket : sockets) {
        leakproof::async_connect(socket, proxy, argv[2], port, options,
                                 [&](leakproof::error_code ec) {
                                     if (!ec) return void(++ok);
                                     if (!failed++) first_error = ec;
                                 });
    }
    std::size_t pending_bytes = allocated_bytes.load() - before;
    io.run();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::printf(
        "async_load: %zu concurrent connects: %zu ok, %zu failed in %.2f s = %.0f connects/s\n", n,
        ok, failed, seconds, static_cast<double>(n) / seconds);
    std::printf("async_load: %zu heap bytes per pending connect (leakproof state: %zu bytes)\n",
                pending_bytes / n, sizeof(leakproof::detail::socks_state<net::ip::tcp::socket>));
    if (failed) std::printf("async_load: first failure: %s\n", first_error.message().c_str());
    return ok == n && n > 0 ? 0 : 1;
}
