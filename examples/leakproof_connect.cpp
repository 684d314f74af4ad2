// leakproof-connect: a netcat-style relay through SOCKS proxies.
//
//     leakproof-connect [-p URL]… [-t SECONDS] HOST PORT
//
// Connects to HOST:PORT through the proxies (first -p first; without -p,
// $LEAKPROOF_PROXY), then copies stdin to the connection and the connection
// to stdout. End of stdin half-closes the connection; end of the connection
// ends the program. Usable as ssh's
//     ProxyCommand leakproof-connect -p socks5h://127.0.0.1:9050 %h %p
// Exit status: 0 after a clean relay, 1 when the connection or the relay
// failed, 2 for bad arguments; every failure prints one line on stderr.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <asio/io_context.hpp>

#include "leakproof/asio.hpp"

namespace {

constexpr const char* usage = "usage: leakproof-connect [-p PROXY-URL]... [-t SECONDS] HOST PORT\n";

struct arguments {
    std::vector<std::string_view> proxy_urls;
    std::string_view host;
    std::uint16_t port = 0;
    long timeout_seconds = 120;
};

[[noreturn]] void die(int status, const char* what, const std::string& why) {
    std::fprintf(stderr, "leakproof-connect: %s%s%s\n", what, why.empty() ? "" : ": ", why.c_str());
    std::exit(status);
}

template <typename Int>
bool parse_number(std::string_view s, Int& out, Int min, Int max) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size() && out >= min && out <= max;
}

arguments parse_arguments(int argc, char** argv) {
    arguments args;
    std::vector<std::string_view> positional;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        if ((a == "-p" || a == "-t") && i + 1 == argc)
            die(2, "option needs a value", std::string(a));
        if (a == "-p") {
            args.proxy_urls.push_back(argv[++i]);
        } else if (a == "-t") {
            if (!parse_number<long>(argv[++i], args.timeout_seconds, 0, 86400))
                die(2, "-t takes whole seconds from 0 (no limit) to 86400", argv[i]);
        } else if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            std::exit(0);
        } else if (a.size() > 1 && a[0] == '-') {
            die(2, "unknown option", std::string(a));
        } else {
            positional.push_back(a);
        }
    }
    if (positional.size() != 2) {
        std::fputs(usage, stderr);
        std::exit(2);
    }
    args.host = positional[0];
    if (!parse_number<std::uint16_t>(positional[1], args.port, 1, 65535))
        die(2, "port must be a number from 1 to 65535", std::string(positional[1]));
    if (args.proxy_urls.empty()) {
        const char* env = std::getenv("LEAKPROOF_PROXY");
        if (!env || !*env) die(2, "no proxy: give -p URL or set LEAKPROOF_PROXY", "");
        args.proxy_urls.push_back(env);
    }
    return args;
}

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Copies `from` to `to` until end of input. False when a read or write failed.
bool copy(int from, int to) {
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(from, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) return true;
        if (n < 0 || !write_all(to, buf, static_cast<std::size_t>(n))) return false;
    }
}

// Connects through the async API on a private io_context and hands over the
// connection as a blocking file descriptor.
int connect_through(const std::vector<leakproof::proxy>& chain, const arguments& args) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    leakproof::connect_options options;
    options.timeout = std::chrono::seconds(args.timeout_seconds);
    std::error_code result;
    leakproof::async_connect(socket, chain, args.host, args.port, options,
                             [&](std::error_code ec) { result = ec; });
    io.run();
    if (result) {
        const std::string target = std::string(args.host) + ":" + std::to_string(args.port);
        // A proxy that is another kind of server is named (which one, in a
        // chain, the error does not say).
        char named[700];
        if (chain.size() == 1 &&
            leakproof::format_not_socks(result, chain[0], named, sizeof named) > 0)
            die(1, target.c_str(), named);
        std::string through;
        for (const auto& hop : chain) {
            char proxy[600];
            leakproof::format_redacted(hop, proxy, sizeof proxy);
            through += (through.empty() ? " through " : " -> ") + std::string(proxy);
        }
        die(1, (target + through).c_str(), result.message());
    }
    std::error_code ec;
    int fd = socket.release(ec);
    if (ec) die(1, "release socket", ec.message());
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // Asio left it non-blocking
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // a closed peer is an error to report, not a signal
    arguments args = parse_arguments(argc, argv);
    std::vector<leakproof::proxy> chain;
    std::size_t bad = 0;
    if (auto ec = leakproof::parse_proxy_chain(args.proxy_urls, chain, &bad))
        die(2, std::string(args.proxy_urls[bad]).c_str(), ec.message());

    int fd = connect_through(chain, args);
    std::thread upstream([fd] {
        copy(STDIN_FILENO, fd);
        ::shutdown(fd, SHUT_WR);  // end of stdin: let the peer see end of stream
    });
    upstream.detach();  // blocked on stdin, it must not keep us alive once the peer is done
    if (!copy(fd, STDOUT_FILENO)) die(1, "relay", std::strerror(errno));
    return 0;
}
