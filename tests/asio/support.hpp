// Shared pieces of the Asio tests: the servers tests/harness/with_servers.py
// started (found through LP_* variables), an in-process destination, and a
// connect-then-read helper.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#else
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#endif

#include "leakproof/asio.hpp"

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

namespace lptest {

// What use_awaitable and use_future throw.
#if defined(LEAKPROOF_ASIO_BOOST)
using system_error = boost::system::system_error;
#else
using system_error = std::system_error;
#endif

// Known only to the proxies (their private /etc/hosts, the test proxy's own
// table): a local lookup of it fails, so a test that passes proves the name
// went to the proxy.
inline const std::string only_proxy_name = "web.only-proxy.test";
inline const std::string banner = "leakproof-destination\n";

// "host:port" of a server the harness started.
inline std::string server(const char* variable) {
    const char* value = std::getenv(variable);
    if (!value || !*value)
        FAIL(variable << " is not set: run this under tests/harness/with_servers.py");
    return value;
}

inline std::string env(const char* variable) {
    const char* value = std::getenv(variable);
    return value ? value : "";
}

inline leakproof::proxy proxy(const std::string& url) {
    leakproof::proxy p;
    std::error_code ec = leakproof::parse_proxy_url(url, p);
    INFO("proxy URL " << url);
    REQUIRE(!ec);
    return p;
}

// A server on 127.0.0.1 and ::1 that writes `banner` to every connection and
// closes it. Runs on its own thread, so blocking tests can use it too.
class destination {
public:
    static destination& instance() {
        static destination d;
        return d;
    }
    std::uint16_t v4_port() const { return v4_.local_endpoint().port(); }
    std::uint16_t v6_port() const { return v6_.local_endpoint().port(); }

    ~destination() {
        io_.stop();
        thread_.join();
    }

private:
    destination()
        : v4_(io_, {net::ip::make_address("127.0.0.1"), 0}),
          v6_(io_, {net::ip::make_address("::1"), 0}) {
        accept(v4_);
        accept(v6_);
        thread_ = std::thread([this] { io_.run(); });
    }

    void accept(net::ip::tcp::acceptor& acceptor) {
        acceptor.async_accept([this, &acceptor](leakproof::error_code ec, net::ip::tcp::socket s) {
            if (ec) return;
            auto peer = std::make_shared<net::ip::tcp::socket>(std::move(s));
            net::async_write(*peer, net::buffer(banner),
                             [peer](leakproof::error_code, std::size_t) {});
            accept(acceptor);
        });
    }

    net::io_context io_;
    net::ip::tcp::acceptor v4_, v6_;
    std::thread thread_;
};

struct outcome {
    leakproof::error_code error;
    std::string data;  // what the destination sent, read to the end
};

// Connects through `chain` with the callback API and reads the connection to
// its end.
inline outcome fetch(leakproof::proxy_chain chain, const std::string& host, std::uint16_t port,
                     leakproof::connect_options options = {}) {
    net::io_context io;
    net::ip::tcp::socket socket(io);
    outcome out;
    bool called = false;
    leakproof::async_connect(socket, chain, host, port, options, [&](leakproof::error_code ec) {
        called = true;
        out.error = ec;
    });
    io.run();
    CHECK(called);
    if (out.error) {
        CHECK_FALSE(socket.is_open());  // a failed connect leaves nothing open
        return out;
    }
    leakproof::error_code ec;
    net::read(socket, net::dynamic_buffer(out.data), ec);
    CHECK(ec == net::error::eof);
    return out;
}

// The number of open file descriptors of this process.
inline std::size_t open_fds() {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        (void)entry;
        ++n;
    }
    return n;
}

}  // namespace lptest
