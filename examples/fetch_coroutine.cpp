// Fetches http://HOST:PORT/PATH through a SOCKS proxy with C++20 coroutines.
//
//     fetch_coroutine socks5h://127.0.0.1:9050 example.org 80 /
//
// The name goes to the proxy: nothing here resolves it.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#else
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#endif

#include "leakproof/asio.hpp"

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

namespace {

net::awaitable<void> fetch(leakproof::proxy proxy, std::string host, std::uint16_t port,
                           std::string path) {
    net::ip::tcp::socket socket(co_await net::this_coro::executor);
    co_await leakproof::async_connect(socket, proxy, host, port, net::use_awaitable);

    std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
    co_await net::async_write(socket, net::buffer(request), net::use_awaitable);

    std::string response;
    leakproof::error_code ec;  // the end of the stream is how HTTP/1.0 ends a response
    co_await net::async_read(socket, net::dynamic_buffer(response),
                             net::redirect_error(net::use_awaitable, ec));
    if (ec && ec != net::error::eof) throw std::system_error(ec);
    std::fwrite(response.data(), 1, response.size(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s PROXY-URL HOST PORT PATH\n", argv[0]);
        return 2;
    }
    leakproof::proxy proxy;
    if (auto ec = leakproof::parse_proxy_url(argv[1], proxy)) {
        std::fprintf(stderr, "fetch_coroutine: %s\n", ec.message().c_str());
        return 2;
    }
    net::io_context io;
    int status = 0;
    net::co_spawn(io,
                  fetch(proxy, argv[2], static_cast<std::uint16_t>(std::atoi(argv[3])), argv[4]),
                  [&](std::exception_ptr e) {
                      if (!e) return;
                      try {
                          std::rethrow_exception(e);
                      } catch (const std::exception& x) {
                          std::fprintf(stderr, "fetch_coroutine: %s\n", x.what());
                          status = 1;
                      }
                  });
    io.run();
    return status;
}
