// Time to the first byte back through a proxy with the library: connect by
// name, write one byte, read it back (an echo server behind the proxy),
// COUNT times in sequence; prints the median in milliseconds.
//
//   first_byte URL HOST PORT COUNT plain|optimistic
//
// plain: leakproof::async_connect, then the write (the reply first, as
// ?pipeline=1 or not says); optimistic: leakproof::optimistic_stream (the
// URL should say ?optimistic=1), the byte goes right behind the request.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#else
#include <asio/read.hpp>
#include <asio/write.hpp>
#endif

#include "leakproof/asio.hpp"

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

namespace {

using clock_type = std::chrono::steady_clock;

template <typename Stream>
bool echo_one(Stream& s) {
    char out = 'x', in = 0;
    leakproof::error_code ec;
    net::write(s, net::buffer(&out, 1), ec);
    if (ec) return false;
    net::read(s, net::buffer(&in, 1), ec);
    return !ec && in == out;
}

// One exchange; false on any failure.
bool plain_once(const leakproof::proxy& p, const std::string& host, std::uint16_t port) {
    net::io_context io;
    net::ip::tcp::socket s(io);
    return !leakproof::connect(s, p, host, port) && echo_one(s);
}

bool optimistic_once(const leakproof::proxy& p, const std::string& host, std::uint16_t port) {
    net::io_context io;
    leakproof::optimistic_stream<> s(io);
    bool ok = false;
    char out = 'x', in = 0;
    s.async_connect(p, host, port, [&](leakproof::error_code ec) {
        if (ec) return;
        net::async_write(s, net::buffer(&out, 1), [&](leakproof::error_code wec, std::size_t) {
            if (wec) return;
            net::async_read(s, net::buffer(&in, 1), [&](leakproof::error_code rec, std::size_t) {
                ok = !rec && in == out;
            });
        });
    });
    io.run();
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 6) {
        std::fprintf(stderr, "usage: first_byte URL HOST PORT COUNT plain|optimistic\n");
        return 2;
    }
    leakproof::proxy p;
    if (auto ec = leakproof::parse_proxy_url(argv[1], p)) {
        std::fprintf(stderr, "first_byte: %s\n", ec.message().c_str());
        return 2;
    }
    const std::string host = argv[2];
    const auto port = static_cast<std::uint16_t>(std::atoi(argv[3]));
    const int count = std::atoi(argv[4]);
    const bool optimistic = std::string{argv[5]} == "optimistic";
    std::vector<double> ms;
    for (int i = 0; i < count; ++i) {
        const auto start = clock_type::now();
        const bool ok = optimistic ? optimistic_once(p, host, port) : plain_once(p, host, port);
        if (!ok) {
            std::fprintf(stderr, "first_byte: exchange %d failed\n", i);
            return 1;
        }
        ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%.2f\n", ms[ms.size() / 2]);
    return 0;
}
