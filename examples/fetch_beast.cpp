// Fetches http://HOST:PORT/PATH through a SOCKS proxy with Boost.Beast and
// C++20 coroutines (built when leakproof is configured with -DLEAKPROOF_ASIO=boost).
//
//     fetch_beast socks5h://127.0.0.1:9050 example.org 80 /
//
// leakproof connects the stream's socket through the proxy, by name: nothing
// here resolves it. Beast then speaks HTTP over it as over any connection.
// Prints the status line and the body; exits 1 on an error or a status other
// than 2xx.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "leakproof/asio.hpp"

namespace {

namespace net = leakproof::net;
namespace beast = boost::beast;
namespace http = beast::http;

net::awaitable<unsigned> fetch(leakproof::proxy proxy, std::string host, std::uint16_t port,
                               std::string path) {
    beast::tcp_stream stream(co_await net::this_coro::executor);
    co_await leakproof::async_connect(stream.socket(), proxy, host, port, net::use_awaitable);

    http::request<http::empty_body> request{http::verb::get, path, 11};
    request.set(http::field::host, host);
    request.set(http::field::user_agent, "leakproof fetch_beast");
    co_await http::async_write(stream, request, net::use_awaitable);

    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    co_await http::async_read(stream, buffer, response, net::use_awaitable);
    std::printf("HTTP/%u.%u %u %s\n\n", response.version() / 10, response.version() % 10,
                response.result_int(), std::string(response.reason()).c_str());
    std::fwrite(response.body().data(), 1, response.body().size(), stdout);

    leakproof::error_code ignored;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    co_return response.result_int();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s PROXY-URL HOST PORT PATH\n", argv[0]);
        return 2;
    }
    leakproof::proxy proxy;
    if (auto ec = leakproof::parse_proxy_url(argv[1], proxy)) {
        std::fprintf(stderr, "fetch_beast: %s\n", ec.message().c_str());
        return 2;
    }
    net::io_context io;
    int status = 0;
    net::co_spawn(io,
                  fetch(proxy, argv[2], static_cast<std::uint16_t>(std::atoi(argv[3])), argv[4]),
                  [&](std::exception_ptr e, unsigned http_status) {
                      if (!e) {
                          status = http_status / 100 == 2 ? 0 : 1;
                          return;
                      }
                      try {
                          std::rethrow_exception(e);
                      } catch (const std::exception& x) {
                          std::fprintf(stderr, "fetch_beast: %s\n", x.what());
                          status = 1;
                      }
                  });
    io.run();
    return status;
}
