// Fetches http://HOST:PORT/PATH through a chain of SOCKS proxies with plain
// callbacks and a timeout.
//
//     fetch_callback HOST PORT PATH PROXY-URL [PROXY-URL…]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#else
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#endif

#include "leakproof/asio.hpp"

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

namespace {

// One fetch: the socket and buffers live as long as the callbacks need them.
struct fetch : std::enable_shared_from_this<fetch> {
    explicit fetch(net::io_context& io) : socket(io) {}

    void start(const std::vector<leakproof::proxy>& chain, const std::string& host,
               std::uint16_t port, const std::string& path) {
        request = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
        leakproof::connect_options options;
        options.timeout = std::chrono::seconds(30);
        leakproof::async_connect(socket, chain, host, port, options,
                                 [self = shared_from_this()](leakproof::error_code ec) {
                                     if (ec) return self->fail("connect", ec);
                                     self->send();
                                 });
    }

    void send() {
        net::async_write(socket, net::buffer(request),
                         [self = shared_from_this()](leakproof::error_code ec, std::size_t) {
                             if (ec) return self->fail("write", ec);
                             self->receive();
                         });
    }

    void receive() {
        net::async_read(socket, net::dynamic_buffer(response),
                        [self = shared_from_this()](leakproof::error_code ec, std::size_t) {
                            if (ec && ec != net::error::eof) return self->fail("read", ec);
                            std::fwrite(self->response.data(), 1, self->response.size(), stdout);
                        });
    }

    void fail(const char* what, leakproof::error_code ec) {
        std::fprintf(stderr, "fetch_callback: %s: %s\n", what, ec.message().c_str());
        failed = true;
    }

    net::ip::tcp::socket socket;
    std::string request, response;
    bool failed = false;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s HOST PORT PATH PROXY-URL [PROXY-URL...]\n", argv[0]);
        return 2;
    }
    std::vector<std::string_view> urls(argv + 4, argv + argc);
    std::vector<leakproof::proxy> chain;
    if (auto ec = leakproof::parse_proxy_chain(urls, chain)) {
        std::fprintf(stderr, "fetch_callback: %s\n", ec.message().c_str());
        return 2;
    }
    net::io_context io;
    auto f = std::make_shared<fetch>(io);
    f->start(chain, argv[1], static_cast<std::uint16_t>(std::atoi(argv[2])), argv[3]);
    io.run();
    return f->failed ? 1 : 0;
}
