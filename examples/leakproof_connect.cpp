// leakproof-connect: a netcat-style relay through SOCKS proxies.
//
//     leakproof-connect [-p URL]… [-t SECONDS] HOST PORT
//     leakproof-connect [-p URL]… [-t SECONDS] [-w SECONDS] -u HOST PORT
//     leakproof-connect [-p URL]… [-t SECONDS] -l PEER_HOST PEER_PORT
//
// Connects to HOST:PORT through the proxies (first -p first; without -p,
// $LEAKPROOF_PROXY), then copies stdin to the connection and the connection
// to stdout. End of stdin half-closes the connection; end of the connection
// ends the program. Usable as ssh's
//     ProxyCommand leakproof-connect -p socks5h://127.0.0.1:9050 %h %p
// Exit status: 0 after a clean relay, 1 when the connection or the relay
// failed, 2 for bad arguments; every failure prints one line on stderr.
//
// -u: UDP ASSOCIATE. Each line of stdin is one datagram (without its
// newline) to HOST:PORT through the proxy's relay; each datagram received is
// written to stdout followed by a newline. After the end of stdin it waits
// -w SECONDS (default 1) for answers, then exits 0.
// -l: BIND. Prints "leakproof-connect: bound IP:PORT" on stderr as soon as the
// proxy listens, "leakproof-connect: accepted IP:PORT" when the peer (from
// PEER_HOST, 0.0.0.0 for any) connects, then relays as without -l.
// A proxy without the command exits 1: "proxy does not support BIND".
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
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#else
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#endif

#include "leakproof/asio.hpp"

// The Asio the library was configured with (leakproof/asio_flavour.hpp).
namespace net = leakproof::net;

namespace {

constexpr const char* usage =
    "usage: leakproof-connect [-p PROXY-URL]... [-t SECONDS] HOST PORT\n"
    "       leakproof-connect [-p PROXY-URL]... [-t SECONDS] [-w SECONDS] -u HOST PORT\n"
    "       leakproof-connect [-p PROXY-URL]... [-t SECONDS] -l PEER_HOST PEER_PORT\n";

enum class mode { connect, udp, bind };

struct arguments {
    std::vector<std::string_view> proxy_urls;
    std::string_view host;
    std::uint16_t port = 0;
    long timeout_seconds = 120;
    mode what = mode::connect;
    long wait_ms = 1000;  // -u: how long to wait for answers after the end of stdin
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
        if ((a == "-p" || a == "-t" || a == "-w") && i + 1 == argc)
            die(2, "option needs a value", std::string(a));
        if (a == "-u" || a == "-l") {
            const mode m = a == "-u" ? mode::udp : mode::bind;
            if (args.what != mode::connect && args.what != m)
                die(2, "-u and -l exclude each other", "");
            args.what = m;
        } else if (a == "-w") {
            long seconds = 0;
            if (!parse_number<long>(argv[++i], seconds, 0, 86400))
                die(2, "-w takes whole seconds from 0 to 86400", argv[i]);
            args.wait_ms = seconds * 1000;
        } else if (a == "-p") {
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
    const std::uint16_t lowest = args.what == mode::bind ? 0 : 1;  // BIND: 0, any port
    if (!parse_number<std::uint16_t>(positional[1], args.port, lowest, 65535))
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
    net::io_context io;
    net::ip::tcp::socket socket(io);
    leakproof::connect_options options;
    options.timeout = std::chrono::seconds(args.timeout_seconds);
    leakproof::error_code result;
    leakproof::async_connect(socket, chain, args.host, args.port, options,
                             [&](leakproof::error_code ec) { result = ec; });
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
    leakproof::error_code ec;
    int fd = socket.release(ec);
    if (ec) die(1, "release socket", ec.message());
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // Asio left it non-blocking
    return fd;
}

std::string describe(const net::ip::tcp::endpoint& e) {
    const auto a = e.address();
    return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(e.port());
}

[[noreturn]] void die_through(const std::vector<leakproof::proxy>& chain, const arguments& args,
                              const char* what, leakproof::error_code ec) {
    char proxy[600];
    leakproof::format_redacted(chain.back(), proxy, sizeof proxy);
    die(1,
        (std::string(what) + std::string(args.host) + ":" + std::to_string(args.port) +
         " through " + proxy)
            .c_str(),
        ec.message());
}

// BIND: announce, accept, then hand over the connection as a blocking fd.
int bind_through(const std::vector<leakproof::proxy>& chain, const arguments& args) {
    net::io_context io;
    net::ip::tcp::socket socket(io);
    leakproof::connect_options options;
    options.timeout = std::chrono::seconds(args.timeout_seconds);
    leakproof::async_bind(socket, chain, args.host, args.port, options,
                          [&](leakproof::error_code ec, leakproof::bind_announcement announced) {
                              if (ec) die_through(chain, args, "BIND for ", ec);
                              std::fprintf(stderr, "leakproof-connect: bound %s\n",
                                           describe(announced.endpoint).c_str());
                              std::fflush(stderr);
                              leakproof::async_accept_bound(
                                  socket, std::move(announced),
                                  leakproof::connect_options{std::chrono::seconds(0)},
                                  [&](leakproof::error_code ec2, net::ip::tcp::endpoint peer) {
                                      if (ec2) die_through(chain, args, "BIND for ", ec2);
                                      std::fprintf(stderr, "leakproof-connect: accepted %s\n",
                                                   describe(peer).c_str());
                                      std::fflush(stderr);
                                  });
                          });
    io.run();
    leakproof::error_code ec;
    int fd = socket.release(ec);
    if (ec) die(1, "release socket", ec.message());
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

// -u: lines of stdin out as datagrams, datagrams in as lines of stdout. A
// reader thread hands lines to the io_context, which sends one at a time.
class udp_relay {
public:
    udp_relay(const std::vector<leakproof::proxy>& chain, const arguments& args)
        : chain_(chain), args_(args), assoc_(io_), linger_(io_) {}

    int run() {
        leakproof::connect_options options;
        options.timeout = std::chrono::seconds(args_.timeout_seconds);
        assoc_.async_open(chain_, options, [this](leakproof::error_code ec) {
            if (ec) die_through(chain_, args_, "UDP to ", ec);
            receive();
            std::thread([this] { read_stdin(); }).detach();
        });
        io_.run();
        return 0;
    }

private:
    void read_stdin() {
        std::string pending;
        char buf[64 * 1024];
        for (;;) {
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            pending.append(buf, static_cast<std::size_t>(n));
            for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
                post_line(pending.substr(0, nl));
                pending.erase(0, nl + 1);
            }
        }
        if (!pending.empty()) post_line(std::move(pending));  // a last line without its newline
        net::post(io_, [this] {
            input_done_ = true;
            maybe_linger();
        });
    }

    void post_line(std::string line) {
        net::post(io_, [this, line = std::move(line)]() mutable {
            queue_.push_back(std::move(line));
            if (queue_.size() == 1) send_front();
        });
    }

    void send_front() {
        assoc_.async_send_to(net::buffer(queue_.front()), args_.host, args_.port,
                             [this](leakproof::error_code ec, std::size_t) {
                                 if (ec) die_through(chain_, args_, "UDP to ", ec);
                                 queue_.pop_front();
                                 if (!queue_.empty()) return send_front();
                                 maybe_linger();
                             });
    }

    // Everything read and sent: answers have -w to arrive.
    void maybe_linger() {
        if (!input_done_ || !queue_.empty() || lingering_) return;
        lingering_ = true;
        linger_.expires_after(std::chrono::milliseconds(args_.wait_ms));
        linger_.async_wait([this](leakproof::error_code) { io_.stop(); });
    }

    void receive() {
        assoc_.async_receive_from(net::buffer(in_.data(), in_.size() - 1),
                                  [this](leakproof::error_code ec, std::size_t n,
                                         std::string_view host, std::uint16_t port) {
                                      if (ec == leakproof::error::udp_fragmented ||
                                          ec == leakproof::error::udp_truncated ||
                                          ec == leakproof::error::udp_bad_address_type) {
                                          std::fprintf(stderr,
                                                       "leakproof-connect: datagram dropped: %s\n",
                                                       ec.message().c_str());
                                          return receive();
                                      }
                                      if (ec) die_through(chain_, args_, "UDP to ", ec);
                                      (void)host, (void)port;
                                      in_[n] = '\n';
                                      if (!write_all(STDOUT_FILENO, in_.data(), n + 1))
                                          die(1, "stdout", std::strerror(errno));
                                      receive();
                                  });
    }

    const std::vector<leakproof::proxy>& chain_;
    const arguments& args_;
    net::io_context io_;
    leakproof::udp_association assoc_;
    net::steady_timer linger_;
    std::deque<std::string> queue_;
    bool input_done_ = false;
    bool lingering_ = false;
    std::array<char, 65536> in_{};
};

}  // namespace

int main(int argc, char** argv) {
    std::signal(SIGPIPE, SIG_IGN);  // a closed peer is an error to report, not a signal
    arguments args = parse_arguments(argc, argv);
    std::vector<leakproof::proxy> chain;
    std::size_t bad = 0;
    if (auto ec = leakproof::parse_proxy_chain(args.proxy_urls, chain, &bad))
        die(2, std::string(args.proxy_urls[bad]).c_str(), ec.message());

    if (args.what == mode::udp) {
        udp_relay relay(chain, args);
        std::fflush(stdout);
        std::_Exit(relay.run());  // the stdin reader may still be blocked: do not wait for it
    }
    int fd = args.what == mode::bind ? bind_through(chain, args) : connect_through(chain, args);
    std::thread upstream([fd] {
        copy(STDIN_FILENO, fd);
        ::shutdown(fd, SHUT_WR);  // end of stdin: let the peer see end of stream
    });
    upstream.detach();  // blocked on stdin, it must not keep us alive once the peer is done
    if (!copy(fd, STDOUT_FILENO)) die(1, "relay", std::strerror(errno));
    return 0;
}
