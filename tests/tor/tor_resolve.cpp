// tor_resolve: Tor's RESOLVE and RESOLVE_PTR through the library's
// synchronous API (leakproof::resolve / leakproof::resolve_ptr), for the Tor
// suite (test_tor.py).
//
//     tor_resolve PROXY-URL name HOSTNAME     prints the address
//     tor_resolve PROXY-URL ptr ADDRESS       prints the name
//
// Exit status: 0 with the answer on stdout; 1 with the error message on
// stderr when the proxy refused or failed; 2 for bad arguments.
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

#include "leakproof/asio.hpp"

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

int main(int argc, char** argv) {
    if (argc != 4 || (std::string_view{argv[2]} != "name" && std::string_view{argv[2]} != "ptr")) {
        std::fputs("usage: tor_resolve PROXY-URL name HOSTNAME | ptr ADDRESS\n", stderr);
        return 2;
    }
    leakproof::proxy proxy;
    if (auto ec = leakproof::parse_proxy_url(argv[1], proxy)) {
        std::fprintf(stderr, "tor_resolve: %s: %s\n", argv[1], ec.message().c_str());
        return 2;
    }
    // Bounded well below the suite's own per-command limit, so a hung Tor
    // shows up as this program's timeout message rather than a kill.
    leakproof::connect_options options;
    options.timeout = std::chrono::seconds(30);

    leakproof::error_code ec;
    std::string answer;
    if (std::string_view{argv[2]} == "name") {
        net::ip::address address;
        ec = leakproof::resolve(proxy, argv[3], address, options);
        if (!ec) answer = address.to_string();
    } else {
        leakproof::error_code parse_ec;
        auto address = net::ip::make_address(argv[3], parse_ec);
        if (parse_ec) {
            std::fprintf(stderr, "tor_resolve: not an IP address: %s\n", argv[3]);
            return 2;
        }
        ec = leakproof::resolve_ptr(proxy, address, answer, options);
    }
    if (ec) {
        std::fprintf(stderr, "tor_resolve: %s\n", ec.message().c_str());
        return 1;
    }
    std::printf("%s\n", answer.c_str());
    return 0;
}
