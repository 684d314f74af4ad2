// BIND and UDP ASSOCIATE through the library against real servers: dante
// (BIND over SOCKS4 and SOCKS5, UDP by name and by address), shadowsocks-libev
// (ss-local in front of ss-server: UDP), and microsocks and ssh -D, which
// support neither and must say so.
#include <atomic>

#include "support.hpp"

#if defined(LEAKPROOF_ASIO_BOOST)
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#else
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/udp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#endif

namespace lptest {
extern std::atomic<long> allocations;  // alloc_count.cpp
}

// Asio recycles the memory of a thread's completed operations. Boost 1.74's
// Asio (1.18) keeps one block per thread, sized for the last operation that
// used it: a send and a receive in turn (two sizes) allocate in Asio's own
// code once each. Later Asio keeps two blocks: nothing at all is allocated.
#if defined(LEAKPROOF_ASIO_BOOST) && BOOST_ASIO_VERSION < 101900
constexpr long asio_allocations_per_round = 2;
#else
constexpr long asio_allocations_per_round = 0;
#endif

namespace {

using leakproof::error;
using namespace std::chrono_literals;

// Runs `io` until `done` or a bound: a test that hangs fails instead.
template <typename Predicate>
void run_until(net::io_context& io, Predicate done, std::chrono::milliseconds limit = 10s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    io.restart();
    while (!done() && std::chrono::steady_clock::now() < end) io.run_for(10ms);
    REQUIRE(done());
}

// A UDP server on 127.0.0.1 that answers every datagram with "echo:" and it,
// on its own thread.
class udp_echo {
public:
    udp_echo() : socket_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
        receive();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~udp_echo() {
        io_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return socket_.local_endpoint().port(); }

private:
    void receive() {
        socket_.async_receive_from(net::buffer(in_.data() + 5, in_.size() - 5), peer_,
                                   [this](leakproof::error_code ec, std::size_t n) {
                                       if (ec) return;
                                       std::copy_n("echo:", 5, in_.begin());
                                       leakproof::error_code ignored;
                                       socket_.send_to(net::buffer(in_.data(), n + 5), peer_, 0,
                                                       ignored);
                                       receive();
                                   });
    }

    net::io_context io_;
    net::ip::udp::socket socket_;
    net::ip::udp::endpoint peer_;
    std::array<char, 2048> in_{};
    std::thread thread_;
};

// ---------------------------------------------------------------- BIND

struct bind_outcome {
    leakproof::error_code bind_error, accept_error;
    leakproof::bind_announcement announced;
    net::ip::tcp::endpoint peer_seen_by_proxy;  // what the second reply said
    net::ip::tcp::endpoint peer_local;          // where the peer really connected from
    std::string received;                       // what the peer sent, read after the accept
    std::string peer_received;                  // what we sent back
};

// BINDs through `chain`, connects a peer to the announced address from
// `peer_from`, which sends a line at once; then reads it through the bound
// socket and answers.
bind_outcome bind_and_connect(leakproof::proxy_chain chain, const std::string& peer_host,
                              const char* peer_from = "127.0.0.1") {
    net::io_context io;
    net::ip::tcp::socket socket(io);
    bind_outcome out;
    bool bound = false, accepted = false;
    leakproof::async_bind(socket, chain, peer_host, 0,
                          [&](leakproof::error_code ec, leakproof::bind_announcement a) {
                              out.bind_error = ec;
                              out.announced = std::move(a);
                              bound = true;
                          });
    run_until(io, [&] { return bound; });
    if (out.bind_error) {
        CHECK_FALSE(socket.is_open());
        return out;
    }
    CHECK(out.announced.pending());
    CHECK(out.announced.endpoint.port() != 0);
    CHECK_FALSE(out.announced.endpoint.address().is_unspecified());

    net::ip::tcp::socket peer(io);
    peer.open(net::ip::tcp::v4());
    peer.bind({net::ip::make_address(peer_from), 0});
    peer.connect(out.announced.endpoint);
    out.peer_local = peer.local_endpoint();
    net::write(peer, net::buffer(std::string("from the peer\n")));

    leakproof::async_accept_bound(socket, std::move(out.announced),
                                  [&](leakproof::error_code ec, net::ip::tcp::endpoint who) {
                                      out.accept_error = ec;
                                      out.peer_seen_by_proxy = who;
                                      accepted = true;
                                  });
    run_until(io, [&] { return accepted; });
    if (out.accept_error) {
        CHECK_FALSE(socket.is_open());
        return out;
    }
    leakproof::error_code ec;
    out.received.resize(14);
    net::read(socket, net::buffer(out.received), ec);
    CHECK_FALSE(ec);
    net::write(socket, net::buffer(std::string("back")), ec);
    out.peer_received.resize(4);
    net::read(peer, net::buffer(out.peer_received), ec);
    CHECK_FALSE(ec);
    return out;
}

void expect_bind_works(const std::string& url, const std::string& peer_host = "127.0.0.1") {
    INFO(url << " peer " << peer_host);
    bind_outcome out = bind_and_connect(lptest::proxy(url), peer_host);
    REQUIRE_MESSAGE(!out.bind_error, out.bind_error.message());
    REQUIRE_MESSAGE(!out.accept_error, out.accept_error.message());
    CHECK(out.peer_seen_by_proxy == out.peer_local);
    CHECK(out.received == "from the peer\n");  // not a byte of it taken by the handshake
    CHECK(out.peer_received == "back");
}

void expect_bind_error(const std::string& url, leakproof::error expected) {
    INFO(url);
    bind_outcome out = bind_and_connect(lptest::proxy(url), "127.0.0.1");
    CHECK_MESSAGE(out.bind_error == expected, out.bind_error.message());
}

// ---------------------------------------------------------------- UDP

struct datagram {
    leakproof::error_code send_error;
    leakproof::error_code error;
    std::string payload;
    std::string host;
    std::uint16_t port = 0;
};

// Opens an association, sends `payload` to host:port and waits for one answer.
struct udp_client {
    net::io_context io;
    leakproof::udp_association assoc{io};

    leakproof::error_code open(leakproof::proxy_chain chain) {
        leakproof::error_code result;
        bool done = false;
        assoc.async_open(chain, [&](leakproof::error_code ec) {
            result = ec;
            done = true;
        });
        run_until(io, [&] { return done; });
        return result;
    }

    datagram round_trip(const std::string& payload, const std::string& host, std::uint16_t port) {
        datagram out;
        bool sent = false, received = false;
        std::array<char, 2048> buffer{};
        assoc.async_send_to(net::buffer(payload), host, port,
                            [&](leakproof::error_code ec, std::size_t n) {
                                out.send_error = ec;
                                if (!ec) CHECK(n == payload.size());
                                sent = true;
                            });
        assoc.async_receive_from(net::buffer(buffer), [&](leakproof::error_code ec, std::size_t n,
                                                          std::string_view h, std::uint16_t p) {
            out.error = ec;
            out.payload.assign(buffer.data(), n);
            out.host = h;
            out.port = p;
            received = true;
        });
        run_until(io, [&] { return sent && received; });
        return out;
    }
};

void expect_udp_works(const std::string& url) {
    udp_echo echo;
    udp_client client;
    INFO(url);
    leakproof::error_code ec = client.open(lptest::proxy(url));
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(client.assoc.is_open());
    CHECK(client.assoc.relay_endpoint().address().is_loopback());
    for (const std::string& host : {std::string("127.0.0.1"), lptest::only_proxy_name}) {
        INFO("to " << host);
        datagram d = client.round_trip("ping " + host, host, echo.port());
        CHECK_MESSAGE(!d.send_error, d.send_error.message());
        CHECK_MESSAGE(!d.error, d.error.message());
        CHECK(d.payload == "echo:ping " + host);
        CHECK(d.host == "127.0.0.1");
        CHECK(d.port == echo.port());
    }
}

void expect_udp_error(leakproof::proxy_chain chain, leakproof::error expected) {
    udp_client client;
    leakproof::error_code ec = client.open(chain);
    CHECK_MESSAGE(ec == expected, ec.message());
    CHECK_FALSE(client.assoc.is_open());
    datagram d = client.round_trip("x", "127.0.0.1", 9);
    CHECK(d.send_error == net::error::not_connected);
    CHECK(d.error == net::error::not_connected);
}

}  // namespace

TEST_SUITE("bind") {
    TEST_CASE("dante: BIND over SOCKS5 and SOCKS4, the peer checked and its bytes kept") {
        const std::string server = lptest::server("LP_DANTE");
        expect_bind_works("socks5h://" + server);
        expect_bind_works("socks4://" + server);
        expect_bind_works("socks5h://" + server, "0.0.0.0");  // any peer
    }

    TEST_CASE("dante: a peer other than the one asked for is refused by dante itself") {
        // dante checks the peer against DST.ADDR (as SOCKS4 asks of a server)
        // and answers the second reply with a refusal; the core's own check,
        // for servers that do not, is in the unit tests.
        const std::string server = lptest::server("LP_DANTE");
        for (const char* scheme : {"socks5h://", "socks4://"}) {
            INFO(scheme);
            bind_outcome out =
                bind_and_connect(lptest::proxy(scheme + server), "127.0.0.2", "127.0.0.1");
            REQUIRE(!out.bind_error);
            CHECK(out.accept_error);
            CHECK((out.accept_error == error::not_allowed ||
                   out.accept_error == error::socks4_rejected));
        }
    }

    TEST_CASE("through a chain the last hop binds") {
        std::vector<leakproof::proxy> chain = {
            lptest::proxy("socks5h://" + lptest::server("LP_MICROSOCKS")),
            lptest::proxy("socks5h://" + lptest::server("LP_DANTE"))};
        bind_outcome out = bind_and_connect(chain, "127.0.0.1");
        REQUIRE_MESSAGE(!out.bind_error, out.bind_error.message());
        REQUIRE_MESSAGE(!out.accept_error, out.accept_error.message());
        CHECK(out.received == "from the peer\n");
    }

    TEST_CASE("microsocks and ssh -D do not support BIND, and say so") {
        expect_bind_error("socks5h://" + lptest::server("LP_MICROSOCKS"),
                          error::bind_not_supported);
        expect_bind_error("socks5h://" + lptest::server("LP_SSH_SOCKS"), error::bind_not_supported);
        expect_bind_error("socks4://" + lptest::server("LP_SSH_SOCKS"), error::bind_not_supported);
        CHECK(make_error_code(error::bind_not_supported).message() ==
              "proxy does not support BIND");
    }

    TEST_CASE("waiting for the peer times out, and the socket is closed") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        leakproof::bind_announcement announced;
        leakproof::error_code bind_ec, accept_ec;
        bool bound = false, accepted = false;
        leakproof::async_bind(socket, lptest::proxy("socks5h://" + lptest::server("LP_DANTE")),
                              "127.0.0.1", 0,
                              [&](leakproof::error_code ec, leakproof::bind_announcement a) {
                                  bind_ec = ec;
                                  announced = std::move(a);
                                  bound = true;
                              });
        run_until(io, [&] { return bound; });
        REQUIRE(!bind_ec);
        leakproof::connect_options options;
        options.timeout = 300ms;
        const auto start = std::chrono::steady_clock::now();
        leakproof::async_accept_bound(socket, std::move(announced), options,
                                      [&](leakproof::error_code ec, net::ip::tcp::endpoint) {
                                          accept_ec = ec;
                                          accepted = true;
                                      });
        run_until(io, [&] { return accepted; });
        CHECK(accept_ec == error::timeout);
        CHECK(std::chrono::steady_clock::now() - start < 5s);
        CHECK_FALSE(socket.is_open());
    }

    TEST_CASE("an announcement from another socket, or none, is refused from a posted call") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        leakproof::error_code accept_ec;
        bool accepted = false;
        leakproof::async_accept_bound(socket, leakproof::bind_announcement{},
                                      [&](leakproof::error_code ec, net::ip::tcp::endpoint) {
                                          accept_ec = ec;
                                          accepted = true;
                                      });
        CHECK_FALSE(accepted);  // never inside the initiating call
        run_until(io, [&] { return accepted; });
        CHECK(accept_ec == net::error::invalid_argument);
    }

    TEST_CASE("use_awaitable: bind, tell the peer, accept") {
        net::io_context io;
        net::ip::tcp::socket socket(io);
        net::ip::tcp::socket peer(io);
        const auto chain = lptest::proxy("socks4://" + lptest::server("LP_DANTE"));
        std::string got;
        leakproof::error_code failure;
        bool finished = false;
        net::co_spawn(
            io,
            [&]() -> net::awaitable<void> {
                auto announced = co_await leakproof::async_bind(socket, chain, "127.0.0.1", 0,
                                                                net::use_awaitable);
                co_await peer.async_connect(announced.endpoint, net::use_awaitable);
                co_await net::async_write(peer, net::buffer(std::string("hi")), net::use_awaitable);
                auto who = co_await leakproof::async_accept_bound(socket, std::move(announced),
                                                                  net::use_awaitable);
                CHECK(who == peer.local_endpoint());
                got.resize(2);
                co_await net::async_read(socket, net::buffer(got), net::use_awaitable);
            },
            [&](std::exception_ptr e) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const lptest::system_error& err) {
                        failure = err.code();
                    }
                }
                finished = true;
            });
        run_until(io, [&] { return finished; });
        CHECK_MESSAGE(!failure, failure.message());
        CHECK(got == "hi");
    }
}

TEST_SUITE("udp") {
    TEST_CASE("dante: datagrams to an address and to a name only the proxy knows") {
        expect_udp_works("socks5h://" + lptest::server("LP_DANTE"));
    }

    TEST_CASE("shadowsocks-libev (ss-local -u, ss-server -u): the same") {
        expect_udp_works("socks5h://" + lptest::server("LP_SHADOWSOCKS"));
    }

    TEST_CASE("dante: many datagrams on one association, the payload gathered from buffers") {
        udp_echo echo;
        udp_client client;
        REQUIRE(!client.open(lptest::proxy("socks5h://" + lptest::server("LP_DANTE"))));
        for (int i = 0; i < 100; ++i) {
            datagram d = client.round_trip("n" + std::to_string(i), "127.0.0.1", echo.port());
            REQUIRE_MESSAGE(!d.error, d.error.message());
            CHECK(d.payload == "echo:n" + std::to_string(i));
        }
        // Two buffers, one datagram.
        std::string a = "two ", b = "pieces";
        std::array<net::const_buffer, 2> pieces = {net::buffer(a), net::buffer(b)};
        std::array<char, 64> in{};
        std::size_t got = 0;
        bool sent = false, received = false;
        client.assoc.async_send_to(pieces, "127.0.0.1", echo.port(),
                                   [&](leakproof::error_code ec, std::size_t n) {
                                       CHECK_FALSE(ec);
                                       CHECK(n == 10);
                                       sent = true;
                                   });
        client.assoc.async_receive_from(
            net::buffer(in),
            [&](leakproof::error_code ec, std::size_t n, std::string_view, std::uint16_t) {
                CHECK_FALSE(ec);
                got = n;
                received = true;
            });
        run_until(client.io, [&] { return sent && received; });
        CHECK(std::string(in.data(), got) == "echo:two pieces");
    }

    TEST_CASE("no allocation per datagram once the association is open") {
        udp_echo echo;
        udp_client client;
        REQUIRE(!client.open(lptest::proxy("socks5h://" + lptest::server("LP_DANTE"))));
        const std::string payload = "steady";
        std::array<char, 256> in{};
        int answered = 0;
        auto round = [&] {
            bool sent = false, received = false;
            client.assoc.async_send_to(net::buffer(payload), "127.0.0.1", echo.port(),
                                       [&](leakproof::error_code, std::size_t) { sent = true; });
            client.assoc.async_receive_from(
                net::buffer(in),
                [&](leakproof::error_code ec, std::size_t, std::string_view, std::uint16_t) {
                    if (!ec) ++answered;
                    received = true;
                });
            client.io.restart();
            for (int i = 0; i < 1000 && !(sent && received); ++i) client.io.run_one_for(10ms);
        };
        for (int i = 0; i < 5; ++i) round();  // warms Asio's handler memory
        const long before = lptest::allocations.load();
        for (int i = 0; i < 50; ++i) round();
        const long after = lptest::allocations.load();
        CHECK(answered == 55);
        CHECK(after - before <= 50 * asio_allocations_per_round);
    }

    TEST_CASE("the association ends with its control connection") {
        udp_echo echo;
        udp_client client;
        REQUIRE(!client.open(lptest::proxy("socks5h://" + lptest::server("LP_DANTE"))));
        std::array<char, 64> in{};
        leakproof::error_code pending_ec;
        bool received = false;
        client.assoc.async_receive_from(net::buffer(in), [&](leakproof::error_code ec, std::size_t,
                                                             std::string_view, std::uint16_t) {
            pending_ec = ec;
            received = true;
        });
        // Our end of the control connection half-closes: dante ends the association.
        client.assoc.control_socket().shutdown(net::socket_base::shutdown_send);
        run_until(client.io, [&] { return received; });
        CHECK(pending_ec == error::udp_association_closed);
        CHECK_FALSE(client.assoc.is_open());
        datagram later = client.round_trip("late", "127.0.0.1", echo.port());
        CHECK(later.send_error == error::udp_association_closed);
        CHECK(later.error == error::udp_association_closed);
    }

    TEST_CASE("microsocks and ssh -D do not support UDP ASSOCIATE, and say so") {
        expect_udp_error(lptest::proxy("socks5h://" + lptest::server("LP_MICROSOCKS")),
                         error::udp_not_supported);
        expect_udp_error(lptest::proxy("socks5h://" + lptest::server("LP_SSH_SOCKS")),
                         error::udp_not_supported);
        CHECK(make_error_code(error::udp_not_supported).message() ==
              "proxy does not support UDP ASSOCIATE");
    }

    TEST_CASE("a chain of two proxies, or none, is refused before any I/O") {
        std::vector<leakproof::proxy> two = {
            lptest::proxy("socks5h://" + lptest::server("LP_DANTE")),
            lptest::proxy("socks5h://" + lptest::server("LP_DANTE"))};
        expect_udp_error(two, error::udp_chain_not_supported);
        expect_udp_error(std::span<const leakproof::proxy>{}, error::no_proxy);
    }

    TEST_CASE("a destination the header cannot carry is refused, the association goes on") {
        udp_echo echo;
        udp_client client;
        REQUIRE(!client.open(lptest::proxy("socks5h://" + lptest::server("LP_DANTE"))));
        leakproof::error_code ec;
        bool sent = false;
        client.assoc.async_send_to(net::buffer(std::string("x")), std::string(256, 'n'), 53,
                                   [&](leakproof::error_code e, std::size_t) {
                                       ec = e;
                                       sent = true;
                                   });
        CHECK_FALSE(sent);
        run_until(client.io, [&] { return sent; });
        CHECK(ec == error::hostname_too_long);
        datagram d = client.round_trip("still", "127.0.0.1", echo.port());
        CHECK(d.payload == "echo:still");
    }
}
