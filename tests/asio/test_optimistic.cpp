// optimistic_stream: the program's first bytes behind the request, the reply
// read by the first read, never given to the program; every refusal arriving
// after the program wrote completes that read with the error a plain connect
// gets. Against the project's test proxy (which reads early data, and can
// hold a refusal back until it has some: the late- faults), dante and
// microsocks (which of them read early data: doc/leakproof.1 says).
#include "support.hpp"

namespace {

using namespace std::chrono_literals;

// Echoes every connection's bytes back until the peer closes; on its own
// thread, on 127.0.0.1.
class echo_server {
public:
    static echo_server& instance() {
        static echo_server e;
        return e;
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    ~echo_server() {
        io_.stop();
        thread_.join();
    }

private:
    echo_server() : acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }

    struct session : std::enable_shared_from_this<session> {
        explicit session(net::ip::tcp::socket s) : socket(std::move(s)) {}
        void read() {
            socket.async_read_some(net::buffer(data), [self = shared_from_this()](
                                                          leakproof::error_code ec, std::size_t n) {
                if (!ec) self->write(n);
            });
        }
        void write(std::size_t n) {
            net::async_write(socket, net::buffer(data, n),
                             [self = shared_from_this()](leakproof::error_code ec, std::size_t) {
                                 if (!ec) self->read();
                             });
        }
        net::ip::tcp::socket socket;
        std::array<char, 4096> data{};
    };

    void accept() {
        acceptor_.async_accept([this](leakproof::error_code ec, net::ip::tcp::socket s) {
            if (ec) return;
            std::make_shared<session>(std::move(s))->read();
            accept();
        });
    }

    net::io_context io_;
    net::ip::tcp::acceptor acceptor_;
    std::thread thread_;
};

struct exchange {
    leakproof::error_code connect_error;
    bool reply_pending_after_connect = false;
    leakproof::error_code write_error;
    bool read_done = false;
    leakproof::error_code read_error;
    std::string echoed;
    leakproof::error_code second_write_error;  // after the read: the refusal again, or none
    bool open_after = false;
};

// Connects, writes `message` at once, then reads as many bytes back, for at
// most `bound` after the connect.
exchange run_exchange(const std::string& url, const std::string& host, std::uint16_t port,
                      const std::string& message = "ping",
                      std::chrono::steady_clock::duration bound = 20s) {
    net::io_context io;
    leakproof::optimistic_stream<> stream(io);
    exchange out;
    std::string in(message.size(), '\0');
    bool connected = false;
    stream.async_connect(lptest::proxy(url), host, port, {}, [&](leakproof::error_code ec) {
        connected = true;
        out.connect_error = ec;
        out.reply_pending_after_connect = stream.reply_pending();
        if (ec) return;
        net::async_write(stream, net::buffer(message), [&](leakproof::error_code wec, std::size_t) {
            out.write_error = wec;
            net::async_read(stream, net::buffer(in), [&](leakproof::error_code rec, std::size_t n) {
                out.read_done = true;
                out.read_error = rec;
                out.echoed = in.substr(0, n);
                net::async_write(stream, net::buffer(message),
                                 [&](leakproof::error_code w2, std::size_t) {
                                     out.second_write_error = w2;
                                     out.open_after = stream.is_open();
                                 });
            });
        });
    });
    // `bound` counts from the connect: a loaded machine may take a while to get there.
    const auto give_up = std::chrono::steady_clock::now() + 20s;
    while (!connected && !io.stopped() && std::chrono::steady_clock::now() < give_up)
        io.run_one_for(give_up - std::chrono::steady_clock::now());
    io.run_for(bound);
    CHECK(connected);
    return out;
}

std::string fault_server() {
    return lptest::server("LP_FAULT");
}

// What a plain connect to the same refusal (sent at once) fails with.
leakproof::error_code plain_error(const std::string& url, const std::string& name) {
    return lptest::fetch(lptest::proxy(url), name, echo_server::instance().port()).error;
}

}  // namespace

TEST_SUITE("optimistic") {
    TEST_CASE("test proxy: the first bytes ride behind the request, the reply never reaches them") {
        const std::uint16_t port = echo_server::instance().port();
        for (std::string url : {"socks5h://", "socks5h://u:p@", "socks4a://", "socks4a://id@"}) {
            url += fault_server() + "?optimistic=1";
            INFO(url);
            auto out = run_exchange(url, lptest::only_proxy_name, port);
            CHECK_MESSAGE(!out.connect_error, out.connect_error.message());
            CHECK(out.reply_pending_after_connect);  // connected before the reply came
            CHECK(!out.write_error);
            CHECK_MESSAGE(!out.read_error, out.read_error.message());
            CHECK(out.echoed == "ping");  // exactly the echo: not a byte of the reply
            CHECK(!out.second_write_error);
        }
        // A reply that names its bound address with a name, in one write with
        // data behind it: the read takes the reply's bytes and no more.
        auto out =
            run_exchange("socks5h://" + fault_server() + "?optimistic=1", "domainreply.fault",
                         lptest::destination::instance().v4_port(), std::string(5, 'x'));
        CHECK_MESSAGE(!out.read_error, out.read_error.message());
        CHECK(out.echoed == "HELLO");
    }

    TEST_CASE("without ?optimistic=1 the stream is an ordinary connected socket") {
        auto out = run_exchange("socks5h://" + fault_server() + "?pipeline=1",
                                lptest::only_proxy_name, echo_server::instance().port());
        CHECK(!out.connect_error);
        CHECK_FALSE(out.reply_pending_after_connect);
        CHECK(out.echoed == "ping");
        out = run_exchange("socks5h://" + fault_server() + "?optimistic=1&pipeline=0", "rep5.fault",
                           echo_server::instance().port());
        CHECK(out.reply_pending_after_connect);  // optimistic implies the one-write handshake
        CHECK(out.read_error == leakproof::error::connection_refused);
    }

    TEST_CASE("each refusal arriving after the program wrote fails the read, then every write") {
        const std::string socks5 = "socks5h://" + fault_server(),
                          socks4 = "socks4a://" + fault_server();
        std::vector<std::pair<std::string, std::string>> cases;
        for (int rep : {1, 2, 3, 4, 5, 6, 7, 8, 9, 0xF0, 0xF2, 0xF6, 0xF7})
            cases.push_back({socks5, "rep" + std::to_string(rep)});
        for (const char* fault : {"refuse", "tor-f2", "close", "garbage", "badatyp"})
            cases.push_back({socks5, fault});
        for (int cd : {91, 92, 93, 94}) cases.push_back({socks4, "rep" + std::to_string(cd)});
        for (const char* fault : {"refuse", "close", "garbage"}) cases.push_back({socks4, fault});
        for (const auto& [url, fault] : cases) {
            INFO(url << " " << fault);
            const leakproof::error_code expected = plain_error(url, fault + ".fault");
            REQUIRE(expected);
            auto out = run_exchange(url + "?optimistic=1", "late-" + fault + ".fault",
                                    echo_server::instance().port());
            CHECK(!out.connect_error);
            CHECK(out.reply_pending_after_connect);
            CHECK(!out.write_error);  // the byte the proxy waited for went out
            CHECK_MESSAGE(out.read_error == expected, out.read_error.message()
                                                          << " instead of " << expected.message());
            CHECK(out.echoed.empty());
            CHECK(out.second_write_error == expected);
            CHECK_FALSE(out.open_after);
        }
    }
}

TEST_SUITE("optimistic-servers") {
    // Which real servers read the bytes behind a request (doc/leakproof.1).
    TEST_CASE("dante reads early data") {
        auto out = run_exchange("socks5h://" + lptest::server("LP_DANTE") + "?optimistic=1",
                                "127.0.0.1", echo_server::instance().port());
        CHECK(!out.connect_error);
        CHECK_MESSAGE(!out.read_error, out.read_error.message());
        CHECK(out.echoed == "ping");
    }

    // microsocks reads the request into a buffer and drops what came with
    // it (the echo never comes), or, when the bytes arrive with the request,
    // refuses it (REP 1: the read fails with it). Which segment the early
    // bytes land in decides. Never a wrong byte, though.
    TEST_CASE("microsocks drops early data") {
        auto out = run_exchange("socks5h://" + lptest::server("LP_MICROSOCKS") + "?optimistic=1",
                                "127.0.0.1", echo_server::instance().port(), "ping", 3s);
        const std::string read = out.read_done ? "ended: " + out.read_error.message() : "waits";
        MESSAGE("microsocks: the read " << read << ", echoed '" << out.echoed << "'");
        CHECK(!out.connect_error);
        CHECK(!out.write_error);
        if (out.read_done && !out.read_error) CHECK(out.echoed == "ping");
        if (out.read_error) CHECK(out.echoed.empty());
    }
}
