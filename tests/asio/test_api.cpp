// The shape of the API: every completion token, chains of real proxies,
// validation before any I/O, timeouts, cancellation, the blocking overloads,
// and no file descriptor left behind by failures.
#include "support.hpp"

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#if LEAKPROOF_NET_HAS_CANCELLATION
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/deferred.hpp>
#endif
#else
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#if LEAKPROOF_NET_HAS_CANCELLATION
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/experimental/deferred.hpp>
#endif
#endif

namespace {

using leakproof::error;
using namespace std::chrono_literals;

std::string microsocks_url() {
    return "socks5h://" + lptest::server("LP_MICROSOCKS");
}

std::string read_all(net::ip::tcp::socket& socket) {
    std::string data;
    leakproof::error_code ec;
    net::read(socket, net::dynamic_buffer(data), ec);
    return data;
}

}  // namespace

TEST_SUITE("tokens") {
    TEST_CASE("use_awaitable") {
        net::io_context io;
        auto proxy = lptest::proxy(microsocks_url());
        std::string data;
        net::co_spawn(
            io,
            [&]() -> net::awaitable<void> {
                net::ip::tcp::socket socket(io);
                co_await leakproof::async_connect(socket, proxy, lptest::only_proxy_name,
                                                  lptest::destination::instance().v4_port(),
                                                  net::use_awaitable);
                data = read_all(socket);
            },
            net::detached);
        io.run();
        CHECK(data == lptest::banner);
    }

    TEST_CASE("use_awaitable throws the error") {
        net::io_context io;
        auto proxy = lptest::proxy("socks5h://" + lptest::server("LP_FAULT"));
        leakproof::error_code caught;
        net::co_spawn(
            io,
            [&]() -> net::awaitable<void> {
                net::ip::tcp::socket socket(io);
                try {
                    co_await leakproof::async_connect(socket, proxy, "refuse.fault", 80,
                                                      net::use_awaitable);
                } catch (const lptest::system_error& e) {
                    caught = e.code();
                }
            },
            net::detached);
        io.run();
        CHECK(caught == error::connection_refused);
    }

    TEST_CASE("use_future") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        auto done = leakproof::async_connect(
            socket, lptest::proxy(microsocks_url()), lptest::only_proxy_name,
            lptest::destination::instance().v4_port(), net::use_future);
        std::thread runner([&] { io.run(); });
        CHECK_NOTHROW(done.get());
        runner.join();
        CHECK(read_all(socket) == lptest::banner);
    }

#if LEAKPROOF_NET_HAS_CANCELLATION  // and the deferred token: both since Asio 1.19
    TEST_CASE("deferred") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        auto op = leakproof::async_connect(
            socket, lptest::proxy(microsocks_url()), lptest::only_proxy_name,
            lptest::destination::instance().v4_port(), net::experimental::deferred);
        io.run();  // nothing happens until the deferred operation is launched
        CHECK_FALSE(socket.is_open());
        io.restart();
        leakproof::error_code result = net::error::would_block;
        std::move(op)([&](leakproof::error_code ec) { result = ec; });
        io.run();
        CHECK(!result);
        CHECK(read_all(socket) == lptest::banner);
    }

#endif

    TEST_CASE("a callback never runs inside the initiating call") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        leakproof::error_code result = net::error::would_block;
        // Port 0 fails validation, before any I/O.
        leakproof::async_connect(socket, lptest::proxy(microsocks_url()), "example.org", 0,
                                 [&](leakproof::error_code ec) { result = ec; });
        CHECK(result == net::error::would_block);
        io.run();
        CHECK(result == error::port_zero);
    }
}

TEST_SUITE("chain") {
    TEST_CASE("two hops: microsocks then dante") {
        std::vector<leakproof::proxy> chain{
            lptest::proxy(microsocks_url()),
            lptest::proxy("socks5h://" + lptest::server("LP_DANTE"))};
        auto out = lptest::fetch(chain, lptest::only_proxy_name,
                                 lptest::destination::instance().v4_port());
        CHECK_MESSAGE(!out.error, out.error.message());
        CHECK(out.data == lptest::banner);
    }

    TEST_CASE("a hop's name goes to the previous hop") {
        // web.only-proxy.test is 127.0.0.1 for microsocks only: reaching dante
        // by that name proves we did not look it up.
        std::string dante_port = lptest::server("LP_DANTE");
        dante_port = dante_port.substr(dante_port.rfind(':') + 1);
        std::vector<leakproof::proxy> chain{
            lptest::proxy(microsocks_url()),
            lptest::proxy("socks5h://" + lptest::only_proxy_name + ":" + dante_port)};
        auto out = lptest::fetch(chain, "127.0.0.1", lptest::destination::instance().v4_port());
        CHECK_MESSAGE(!out.error, out.error.message());
        CHECK(out.data == lptest::banner);
    }

    TEST_CASE("three hops: dante, microsocks with credentials, ssh -D") {
        std::string auth_url = "socks5h://" + lptest::env("LP_MICROSOCKS_USER") + ":" +
                               lptest::env("LP_MICROSOCKS_PASS") + "@" +
                               lptest::server("LP_MICROSOCKS_AUTH");
        std::vector<leakproof::proxy> chain{
            lptest::proxy("socks5h://" + lptest::server("LP_DANTE")), lptest::proxy(auth_url),
            lptest::proxy("socks5h://" + lptest::server("LP_SSH_SOCKS"))};
        auto out = lptest::fetch(chain, lptest::only_proxy_name,
                                 lptest::destination::instance().v4_port());
        CHECK_MESSAGE(!out.error, out.error.message());
        CHECK(out.data == lptest::banner);
    }

    TEST_CASE("a failing middle hop reports its own error") {
        std::vector<leakproof::proxy> chain{
            lptest::proxy(microsocks_url()),
            lptest::proxy("socks5h://baduser:x@" + lptest::server("LP_FAULT"))};
        auto out = lptest::fetch(chain, lptest::only_proxy_name, 80);
        CHECK(out.error == error::auth_failed);
    }
}

TEST_SUITE("lifecycle") {
    TEST_CASE("requests are checked before any I/O") {
        auto proxy = lptest::proxy(microsocks_url());
        CHECK(lptest::fetch(std::vector<leakproof::proxy>{}, "example.org", 80).error ==
              error::no_proxy);
        CHECK(lptest::fetch(proxy, std::string(256, 'a'), 80).error == error::hostname_too_long);
        CHECK(lptest::fetch(proxy, "", 80).error == error::hostname_empty);
        CHECK(lptest::fetch(proxy, std::string("a\0b", 3), 80).error == error::hostname_has_nul);
    }

    // What every Asio offers, Boost 1.74's (without per-operation cancellation) too.
    TEST_CASE("closing the socket aborts a connect, handshaking or connecting") {
        for (const char* server : {"LP_FAULT", "LP_FAULT_MUTE"}) {
            INFO(server);
            net::io_context io;
            net::ip::tcp::socket socket(io);
            leakproof::error_code result = net::error::would_block;
            leakproof::async_connect(socket, lptest::proxy("socks5h://" + lptest::server(server)),
                                     "silent.fault", 80,
                                     [&](leakproof::error_code ec) { result = ec; });
            net::steady_timer later(io, 200ms);
            later.async_wait([&](leakproof::error_code) { socket.close(); });
            auto start = std::chrono::steady_clock::now();
            io.run();
            CHECK(result == net::error::operation_aborted);
            CHECK(std::chrono::steady_clock::now() - start < 2s);
            CHECK_FALSE(socket.is_open());
        }
    }

#if LEAKPROOF_NET_HAS_CANCELLATION
    TEST_CASE("cancellation closes the socket and reports operation_aborted") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        net::cancellation_signal cancel;
        leakproof::error_code result = net::error::would_block;
        leakproof::async_connect(
            socket, lptest::proxy("socks5h://" + lptest::server("LP_FAULT")), "silent.fault", 80,
            net::bind_cancellation_slot(cancel.slot(),
                                        [&](leakproof::error_code ec) { result = ec; }));
        net::steady_timer later(io, 200ms);
        later.async_wait(
            [&](leakproof::error_code) { cancel.emit(net::cancellation_type::terminal); });
        auto start = std::chrono::steady_clock::now();
        io.run();
        CHECK(result == net::error::operation_aborted);
        CHECK(std::chrono::steady_clock::now() - start < 2s);
        CHECK_FALSE(socket.is_open());
    }

    TEST_CASE("cancelling while connecting to an unanswering proxy") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        net::cancellation_signal cancel;
        leakproof::error_code result = net::error::would_block;
        leakproof::async_connect(
            socket, lptest::proxy("socks5h://" + lptest::server("LP_FAULT_MUTE")), "a.test", 80,
            net::bind_cancellation_slot(cancel.slot(),
                                        [&](leakproof::error_code ec) { result = ec; }));
        net::post(io, [&] { cancel.emit(net::cancellation_type::terminal); });
        io.run();
        CHECK(result == net::error::operation_aborted);
        CHECK_FALSE(socket.is_open());
    }

#endif

    TEST_CASE("1,000 failing connects leave no file descriptor behind") {
        lptest::destination::instance();  // its sockets are not ours to count
        const char* names[] = {"refuse.fault", "close.fault", "garbage.fault", "silent.fault"};
        auto proxy = lptest::proxy("socks5h://" + lptest::server("LP_FAULT"));
        leakproof::connect_options options;
        options.timeout = 500ms;
        net::io_context io;
        std::size_t failed = 0;
        auto batch = [&](int n) {
            std::vector<net::ip::tcp::socket> sockets;
            sockets.reserve(static_cast<std::size_t>(n));
            for (int i = 0; i < n; ++i) {
                sockets.emplace_back(io);
                leakproof::async_connect(sockets.back(), proxy, names[i % 4], 80, options,
                                         [&](leakproof::error_code ec) { failed += ec ? 1 : 0; });
            }
            io.run();
            io.restart();
        };
        batch(1);  // Asio opens its epoll, eventfd and timerfd on first use: not leaks
        std::size_t before = lptest::open_fds();
        for (int i = 0; i < 10; ++i) batch(100);
        CHECK(failed == 1001);
        CHECK(lptest::open_fds() == before);
    }
}

TEST_SUITE("blocking") {
    TEST_CASE("connect, resolve and resolve_ptr without an io_context") {
        net::io_context io;  // never run
        net::ip::tcp::socket socket(io);
        auto ec =
            leakproof::connect(socket, lptest::proxy(microsocks_url()), lptest::only_proxy_name,
                               lptest::destination::instance().v4_port());
        REQUIRE_MESSAGE(!ec, ec.message());
        CHECK(read_all(socket) == lptest::banner);

        auto fault = lptest::proxy("socks5h://" + lptest::server("LP_FAULT"));
        CHECK(leakproof::connect(socket, fault, "refuse.fault", 80) == error::connection_refused);
        CHECK_FALSE(socket.is_open());
        leakproof::connect_options quick;
        quick.timeout = 200ms;
        CHECK(leakproof::connect(socket, fault, "silent.fault", 80, quick) == error::timeout);
    }
}
