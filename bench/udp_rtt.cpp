// UDP round trips, one datagram at a time, to an echo server.
//
//     udp_rtt direct HOST-IP PORT N        a plain UDP socket (also run under socksify)
//     udp_rtt library PROXY-URL HOST PORT N   a leakproof::udp_association
//     udp_rtt heap PROXY-URL K             K associations open at once
//     udp_rtt asio-direct HOST-IP PORT N   a plain asio::ip::udp::socket, no proxy
//     udp_rtt echo PORT                    the echo server (127.0.0.1), until killed
//     udp_rtt dns SERVER-IP N sendto|connected
//                                          DNS A queries to SERVER-IP:53, one at a
//                                          time (under leakproof: its responder)
//
// Round trips print "median_us p90_us cpu_us_per_datagram" on the last line
// (CPU: this process's user+sys over the N round trips, so not the proxy's
// nor the echo's). heap prints the bytes each open association holds
// (allocated while opening the K and not freed, divided by K).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
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
std::atomic<long> live_bytes{0};

// Each block keeps its size in front of it, so that frees can be counted too.
constexpr std::size_t prefix = alignof(std::max_align_t);
}  // namespace

void* operator new(std::size_t n) {
    auto* p = static_cast<unsigned char*>(std::malloc(n + prefix));
    if (!p) throw std::bad_alloc();
    std::memcpy(p, &n, sizeof n);
    live_bytes.fetch_add(static_cast<long>(n), std::memory_order_relaxed);
    return p + prefix;
}
void operator delete(void* p) noexcept {
    if (!p) return;
    auto* block = static_cast<unsigned char*>(p) - prefix;
    std::size_t n;
    std::memcpy(&n, block, sizeof n);
    live_bytes.fetch_sub(static_cast<long>(n), std::memory_order_relaxed);
    std::free(block);
}
void operator delete(void* p, std::size_t) noexcept {
    operator delete(p);
}

namespace {

using clock_type = std::chrono::steady_clock;

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

void report(std::vector<double>& us, double cpu) {
    std::sort(us.begin(), us.end());
    std::printf("%.1f %.1f %.2f\n", us[us.size() / 2], us[us.size() * 9 / 10],
                cpu * 1e6 / double(us.size()));
}

int direct(const char* host, int port, int n) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, host, &to.sin_addr) != 1) return 2;
    timeval limit{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    char payload[32] = "leakproof-udp-rtt", in[2048];
    std::vector<double> us;
    const double cpu0 = cpu_seconds();
    for (int i = 0; i < n; ++i) {
        const auto t0 = clock_type::now();
        if (::sendto(fd, payload, 17, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) != 17) {
            std::perror("sendto");
            return 1;
        }
        sockaddr_in from{};
        socklen_t len = sizeof from;
        if (::recvfrom(fd, in, sizeof in, 0, reinterpret_cast<sockaddr*>(&from), &len) <= 0) {
            std::perror("recvfrom");
            return 1;
        }
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    }
    report(us, cpu_seconds() - cpu0);
    return 0;
}

// An A query for bench.leak.test with id `id`; its length.
std::size_t dns_query(std::uint16_t id, unsigned char* q) {
    const unsigned char head[12] = {static_cast<unsigned char>(id >> 8),
                                    static_cast<unsigned char>(id),
                                    1,
                                    0,
                                    0,
                                    1,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0};
    std::memcpy(q, head, sizeof head);
    std::size_t at = sizeof head;
    for (const char* label : {"bench", "leak", "test"}) {
        std::size_t len = std::strlen(label);
        q[at++] = static_cast<unsigned char>(len);
        std::memcpy(q + at, label, len);
        at += len;
    }
    const unsigned char tail[5] = {0, 0, 1, 0, 1};  // root, type A, class IN
    std::memcpy(q + at, tail, sizeof tail);
    return at + sizeof tail;
}

int dns(const char* server, int n, bool connected) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(53);
    if (::inet_pton(AF_INET, server, &to.sin_addr) != 1) return 2;
    timeval limit{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    auto* sa = reinterpret_cast<sockaddr*>(&to);
    if (connected && ::connect(fd, sa, sizeof to) != 0) {
        std::perror("connect");
        return 1;
    }
    unsigned char q[64], in[512];
    std::vector<double> us;
    const double cpu0 = cpu_seconds();
    for (int i = 0; i < n; ++i) {
        std::size_t len = dns_query(static_cast<std::uint16_t>(i), q);
        const auto t0 = clock_type::now();
        ssize_t sent = connected ? ::send(fd, q, len, 0) : ::sendto(fd, q, len, 0, sa, sizeof to);
        if (sent != static_cast<ssize_t>(len)) {
            std::perror("send");
            return 1;
        }
        ssize_t got = ::recv(fd, in, sizeof in, 0);
        if (got < 12 || in[0] != q[0] || in[1] != q[1]) {
            std::fprintf(stderr, "udp_rtt: no answer to query %d\n", i);
            return 1;
        }
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    }
    report(us, cpu_seconds() - cpu0);
    return 0;
}

int library(const char* url, const char* host, int port, int n) {
    leakproof::proxy proxy;
    if (auto ec = leakproof::parse_proxy_url(url, proxy)) {
        std::fprintf(stderr, "udp_rtt: %s\n", ec.message().c_str());
        return 2;
    }
    net::io_context io(1);
    leakproof::udp_association assoc(io);
    leakproof::error_code open_ec;
    bool opened = false;
    assoc.async_open(proxy, [&](leakproof::error_code ec) {
        open_ec = ec;
        opened = true;
    });
    // Not io.run(): an open association always has its control connection's read pending.
    while (!opened && io.run_one_for(std::chrono::seconds(10))) {
    }
    if (open_ec) {
        std::fprintf(stderr, "udp_rtt: open: %s\n", open_ec.message().c_str());
        return 1;
    }
    const std::string payload = "leakproof-udp-rtt";
    std::array<char, 2048> in{};
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    leakproof::error_code failure;
    const double cpu0 = cpu_seconds();
    for (int i = 0; i < n && !failure; ++i) {
        const auto t0 = clock_type::now();
        int pending = 2;
        assoc.async_send_to(net::buffer(payload), host, static_cast<std::uint16_t>(port),
                            [&](leakproof::error_code ec, std::size_t) {
                                if (ec) failure = ec;
                                --pending;
                            });
        assoc.async_receive_from(net::buffer(in), [&](leakproof::error_code ec, std::size_t,
                                                      std::string_view, std::uint16_t) {
            if (ec) failure = ec;
            --pending;
        });
        while (pending > 0 && io.run_one()) {
        }
        if (pending > 0 && !failure) failure = net::error::timed_out;
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    }
    const double cpu = cpu_seconds() - cpu0;
    if (failure) {
        std::fprintf(stderr, "udp_rtt: %s\n", failure.message().c_str());
        return 1;
    }
    report(us, cpu);
    return 0;
}

// The same loop on a plain net::ip::udp::socket, no proxy: what Asio's own
// event loop adds to a round trip.
int asio_direct(const char* host, int port, int n) {
    net::io_context io(1);
    net::ip::udp::socket socket(io);
    socket.connect({net::ip::make_address(host), static_cast<std::uint16_t>(port)});
    const std::string payload = "leakproof-udp-rtt";
    std::array<char, 2048> in{};
    std::vector<double> us;
    const double cpu0 = cpu_seconds();
    for (int i = 0; i < n; ++i) {
        const auto t0 = clock_type::now();
        int pending = 2;
        socket.async_send(net::buffer(payload),
                          [&](leakproof::error_code, std::size_t) { --pending; });
        socket.async_receive(net::buffer(in),
                             [&](leakproof::error_code, std::size_t) { --pending; });
        while (pending > 0 && io.run_one()) {
        }
        io.restart();
        us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
    }
    report(us, cpu_seconds() - cpu0);
    return 0;
}

// The echo server the round trips go to: a blocking loop in a process of its own.
int echo(int port) {
    int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(static_cast<std::uint16_t>(port));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) {
        std::perror("bind");
        return 1;
    }
    char buf[65536];
    for (;;) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n >= 0)
            ::sendto(fd, buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from),
                     len);
    }
}

int heap(const char* url, int k) {
    leakproof::proxy proxy;
    if (auto ec = leakproof::parse_proxy_url(url, proxy)) return 2;
    net::io_context io(1);
    std::vector<std::unique_ptr<leakproof::udp_association>> all;
    all.reserve(static_cast<std::size_t>(k));
    int opened = 0;
    // The first association pays for Asio's services; it is not counted.
    int completed = 0;
    auto warm = std::make_unique<leakproof::udp_association>(io);
    warm->async_open(proxy, [&](leakproof::error_code ec) { opened += !ec, ++completed; });
    while (completed < 1 && io.run_one_for(std::chrono::seconds(10))) {
    }
    const long before = live_bytes.load();
    for (int i = 0; i < k; ++i) {
        all.push_back(std::make_unique<leakproof::udp_association>(io));
        all.back()->async_open(proxy,
                               [&](leakproof::error_code ec) { opened += !ec, ++completed; });
    }
    while (completed < k + 1 && io.run_one_for(std::chrono::seconds(10))) {
    }
    const long after = live_bytes.load();
    if (opened != k + 1) {
        std::fprintf(stderr, "udp_rtt: only %d of %d associations opened\n", opened, k + 1);
        return 1;
    }
    std::printf("%ld heap bytes per open association (receive buffer %zu)\n", (after - before) / k,
                leakproof::detail::max_relay_datagram);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "direct" && argc == 5)
        return direct(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
    if (mode == "library" && argc == 6)
        return library(argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
    if (mode == "asio-direct" && argc == 5)
        return asio_direct(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
    if (mode == "echo" && argc == 3) return echo(std::atoi(argv[2]));
    if (mode == "dns" && argc == 5)
        return dns(argv[2], std::atoi(argv[3]), std::string{argv[4]} == "connected");
    if (mode == "heap" && argc == 4) return heap(argv[2], std::atoi(argv[3]));
    std::fprintf(stderr,
                 "usage: udp_rtt direct HOST-IP PORT N | library PROXY-URL HOST PORT N | heap "
                 "PROXY-URL K\n");
    return 2;
}
