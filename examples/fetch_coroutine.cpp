// Fetches http://HOST:PORT/PATH through a SOCKS proxy with C++20 coroutines.
//
//     fetch_coroutine socks5h://127.0.0.1:9050 example.org 80 /
//
// The name goes to the proxy: nothing here resolves it.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include "leakproof/asio.hpp"

namespace {

asio::awaitable<void> fetch(leakproof::proxy proxy, std::string host, std::uint16_t port,
                            std::string path) {
    asio::ip::tcp::socket socket(co_await asio::this_coro::executor);
    co_await leakproof::async_connect(socket, proxy, host, port, asio::use_awaitable);

    std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
    co_await asio::async_write(socket, asio::buffer(request), asio::use_awaitable);

    std::string response;
    auto [ec, n] = co_await asio::async_read(socket, asio::dynamic_buffer(response),
                                             asio::experimental::as_tuple(asio::use_awaitable));
    if (ec && ec != asio::error::eof) throw std::system_error(ec);
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
    asio::io_context io;
    int status = 0;
    asio::co_spawn(io,
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
