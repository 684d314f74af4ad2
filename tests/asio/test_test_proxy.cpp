// What no real server does, against the project's own test proxy
// (tests/harness/fault_proxy.py): SOCKS4a, Tor's RESOLVE and RESOLVE_PTR,
// pipelined handshakes, and every fault it can inject, each of which must
// come back as its own named error.
#include <cerrno>

#include "support.hpp"

namespace {

using leakproof::error;
using namespace std::chrono_literals;

std::string fault_server() {
    return lptest::server("LP_FAULT");
}

lptest::outcome fetch_name(const std::string& url, const std::string& name,
                           leakproof::connect_options options = {}) {
    return lptest::fetch(lptest::proxy(url), name, lptest::destination::instance().v4_port(),
                         options);
}

}  // namespace

TEST_SUITE("test-proxy") {
    TEST_CASE("SOCKS4a and SOCKS4") {
        auto out = fetch_name("socks4a://" + fault_server(), lptest::only_proxy_name);
        CHECK_MESSAGE(!out.error, out.error.message());
        CHECK(out.data == lptest::banner);
        out = fetch_name("socks4a://someone@" + fault_server(), lptest::only_proxy_name);
        CHECK(out.data == lptest::banner);
        out = fetch_name("socks4://" + fault_server(), "127.0.0.1");
        CHECK(out.data == lptest::banner);
        out = fetch_name("socks4a://" + fault_server(), "unknown.only-proxy.test");
        CHECK(out.error == error::socks4_rejected);
    }

    TEST_CASE("SOCKS5, pipelined or not, with and without credentials") {
        for (std::string url : {"socks5h://", "socks5h://u:p@"}) {
            for (std::string option : {"", "?pipeline=1"}) {
                auto out = fetch_name(url + fault_server() + option, lptest::only_proxy_name);
                INFO(url << option);
                CHECK_MESSAGE(!out.error, out.error.message());
                CHECK(out.data == lptest::banner);
            }
        }
        auto out = fetch_name("socks5h://baduser:p@" + fault_server(), lptest::only_proxy_name);
        CHECK(out.error == error::auth_failed);
        out = fetch_name("socks5h://baduser:p@" + fault_server() + "?pipeline=1",
                         lptest::only_proxy_name);
        CHECK(out.error == error::auth_failed);
    }

    TEST_CASE("Tor RESOLVE over SOCKS5 and SOCKS4a") {
        net::io_context io;
        for (std::string scheme : {"socks5h://", "socks4a://"}) {
            net::ip::address got;
            leakproof::error_code result = net::error::would_block;
            leakproof::async_resolve(io.get_executor(), lptest::proxy(scheme + fault_server()),
                                     lptest::only_proxy_name, {},
                                     [&](leakproof::error_code ec, net::ip::address a) {
                                         result = ec;
                                         got = a;
                                     });
            io.run();
            io.restart();
            INFO(scheme);
            CHECK_MESSAGE(!result, result.message());
            CHECK(got == net::ip::make_address("127.0.0.1"));
        }
        net::ip::address v6;
        CHECK(!leakproof::resolve(lptest::proxy("socks5h://" + fault_server()),
                                  "v6.only-proxy.test", v6));
        CHECK(v6 == net::ip::make_address("::1"));
        CHECK(leakproof::resolve(lptest::proxy("socks5h://" + fault_server()),
                                 "unknown.only-proxy.test", v6) == error::host_unreachable);
    }

    TEST_CASE("Tor RESOLVE_PTR") {
        std::string name;
        auto ec = leakproof::resolve_ptr(lptest::proxy("socks5h://" + fault_server()),
                                         net::ip::make_address("127.0.0.1"), name);
        CHECK_MESSAGE(!ec, ec.message());
        CHECK(name == lptest::only_proxy_name);
        CHECK(leakproof::resolve_ptr(lptest::proxy("socks4a://" + fault_server()),
                                     net::ip::make_address("127.0.0.1"),
                                     name) == error::command_needs_socks5);
    }

    TEST_CASE("every injected fault is its own error") {
        struct fault {
            const char* name;
            leakproof::error expected;
        };
        const fault faults[] = {
            {"refuse.fault", error::connection_refused},
            {"close.fault", error::proxy_closed},
            {"garbage.fault", error::bad_version},
            {"badatyp.fault", error::bad_address_type},
            {"tor-f2.fault", error::onion_introduction_failed},
            {"unknown.only-proxy.test", error::host_unreachable},
        };
        for (const auto& f : faults) {
            INFO(f.name);
            auto out = fetch_name("socks5h://" + fault_server(), f.name);
            CHECK_MESSAGE(out.error == f.expected, out.error.message());
        }
        auto out = fetch_name("socks4a://" + fault_server(), "refuse.fault");
        CHECK(out.error == error::socks4_rejected);
    }

    // The same in both flavours (std::error_code, boost::system::error_code).
    TEST_CASE("the handlers' error_code: equal to the enum, same message, back to std") {
        auto out = fetch_name("socks5h://" + fault_server(), "refuse.fault");
        const std::error_code expected = leakproof::make_error_code(error::connection_refused);
        CHECK(out.error == error::connection_refused);
        CHECK(error::connection_refused == out.error);
        CHECK(out.error != error::timeout);
        CHECK(out.error.message() == expected.message());
        CHECK(out.error == std::errc::connection_refused);  // the same condition
        const std::error_code back = leakproof::to_std_error_code(out.error);
        CHECK(back == expected);
        CHECK(leakproof::to_errno(back) == ECONNREFUSED);
        CHECK(leakproof::to_error_code(back) == out.error);

        // A system error from reaching the proxy: std's system category once back.
        auto down = lptest::fetch(lptest::proxy("socks5h://127.0.0.1:1"), "a.test", 80);
        CHECK(down.error == net::error::connection_refused);
        CHECK(leakproof::to_std_error_code(down.error) ==
              std::error_code(ECONNREFUSED, std::system_category()));
        CHECK(leakproof::to_errno(leakproof::to_std_error_code(down.error)) == ECONNREFUSED);
    }

    TEST_CASE("a slow proxy is waited for, a silent one times out") {
        leakproof::connect_options options;
        options.timeout = 5s;
        auto out = fetch_name("socks5h://" + fault_server(), "slow.fault", options);
        CHECK_MESSAGE(!out.error, out.error.message());
        CHECK(out.data == lptest::banner);

        options.timeout = 300ms;
        auto start = std::chrono::steady_clock::now();
        out = fetch_name("socks5h://" + fault_server(), "silent.fault", options);
        CHECK(out.error == error::timeout);
        CHECK(std::chrono::steady_clock::now() - start < 3s);
        out = lptest::fetch(lptest::proxy("socks5h://" + lptest::server("LP_FAULT_MUTE")),
                            lptest::only_proxy_name, 80, options);
        CHECK(out.error == error::timeout);
    }

    TEST_CASE("a proxy that hangs up at once, or is not there") {
        auto out = lptest::fetch(lptest::proxy("socks5h://" + lptest::server("LP_FAULT_CLOSE")),
                                 lptest::only_proxy_name, 80);
        CHECK(out.error == error::proxy_closed);

        net::io_context io;
        net::ip::tcp::acceptor closed(io, {net::ip::make_address("127.0.0.1"), 0});
        auto port = closed.local_endpoint().port();
        closed.close();  // nothing listens there now
        out = lptest::fetch(lptest::proxy("socks5h://127.0.0.1:" + std::to_string(port)),
                            lptest::only_proxy_name, 80);
        CHECK(out.error == net::error::connection_refused);
    }

    TEST_CASE("the bytes after the reply stay in the socket for the application") {
        // The proxy writes its reply (with a domain BND.ADDR) and "HELLO" in
        // one segment; the handshake must stop exactly at the reply's end.
        net::io_context io;
        net::ip::tcp::socket socket(io);
        leakproof::error_code result = net::error::would_block;
        leakproof::async_connect(socket, lptest::proxy("socks5h://" + fault_server()),
                                 "domainreply.fault", 80,
                                 [&](leakproof::error_code ec) { result = ec; });
        io.run();
        REQUIRE_MESSAGE(!result, result.message());
        std::string rest;
        leakproof::error_code ec;
        net::read(socket, net::dynamic_buffer(rest), net::transfer_exactly(5), ec);
        CHECK(rest == "HELLO");
    }
}
