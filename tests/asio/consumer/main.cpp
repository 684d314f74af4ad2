// Uses the installed headers and library: parses a chain and refuses a
// request that would need a local lookup, without any network.
#include <cstdio>
#include <string_view>
#include <vector>

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/io_context.hpp>
#else
#include <asio/io_context.hpp>
#endif
#include <leakproof/asio.hpp>

// The installed package's flavour reached this build without being asked for.
#if defined(EXPECT_ASIO_BOOST) != defined(LEAKPROOF_ASIO_BOOST)
#error "the installed leakproof did not hand its consumer its Asio flavour"
#endif

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

int main() {
    std::string_view urls[] = {"socks5h://user:secret@127.0.0.1:1080", "socks4://10.0.0.1"};
    std::vector<leakproof::proxy> chain;
    if (leakproof::parse_proxy_chain(urls, chain)) return 1;
    net::io_context io;
    net::ip::tcp::socket socket(io);
    leakproof::error_code result;
    leakproof::async_connect(socket, chain, "example.org", 80,
                             [&](leakproof::error_code ec) { result = ec; });
    io.run();
    std::puts(result.message().c_str());
    return result == leakproof::error::name_needs_socks4a ? 0 : 1;
}
