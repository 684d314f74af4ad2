// Uses the installed headers and library: parses a chain and refuses a
// request that would need a local lookup, without any network.
#include <cstdio>
#include <string_view>
#include <vector>

#include <asio/io_context.hpp>
#include <leakproof/asio.hpp>

int main() {
    std::string_view urls[] = {"socks5h://user:secret@127.0.0.1:1080", "socks4://10.0.0.1"};
    std::vector<leakproof::proxy> chain;
    if (leakproof::parse_proxy_chain(urls, chain)) return 1;
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    std::error_code result;
    leakproof::async_connect(socket, chain, "example.org", 80,
                             [&](std::error_code ec) { result = ec; });
    io.run();
    std::puts(result.message().c_str());
    return result == leakproof::error::name_needs_socks4a ? 0 : 1;
}
