// A reply with a wrong version byte says what answered instead of a SOCKS
// server when its first bytes are an HTTP response, an SSH banner or a TLS
// record — from the bytes the handshake asked for, never one more.
#include <doctest/doctest.h>

#include <cerrno>
#include <string>

#include "exchange.hpp"
#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "leakproof/proxy.hpp"

using namespace leakproof;
using namespace lp_test;

namespace {

// What real servers sent to a SOCKS greeting or request (measured: node's
// http module, OpenSSH 9.2's sshd, GnuTLS 3.7's gnutls-serv), with more of
// their answer behind so that a read past the reply would show.
const bytes http_answer = text("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
const bytes ssh_answer = text("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
const bytes tls_alert = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0A};
const bytes tls_handshake = {0x16, 0x03, 0x03, 0x00, 0x7A, 0x02, 0x00, 0x00, 0x76, 0x03, 0x03};

struct answer_case {
    const char* what;
    bytes answer;
    error expected;
};

const answer_case answers[] = {
    {"HTTP", http_answer, error::answered_http},
    {"SSH", ssh_answer, error::answered_ssh},
    {"TLS alert", tls_alert, error::answered_tls},
    {"TLS handshake", tls_handshake, error::answered_tls},
};

const bytes request_bytes =
    bytes{0x05, 0x01, 0x00, 0x03, 11} + text("example.com") + bytes{0x00, 0x50};

request socks5_by_name() {
    request r;
    r.target = address::host_name("example.com");
    r.port = 80;
    return r;
}

request socks4(socks_version v) {
    request r;
    r.version = v;
    r.target =
        v == socks_version::v4 ? address::ipv4({192, 0, 2, 15}) : address::host_name("example.com");
    r.port = 80;
    return r;
}

bytes socks4_request(socks_version v) {
    return v == socks_version::v4 ? bytes{0x04, 0x01, 0x00, 0x50, 192, 0, 2, 15, 0x00}
                                  : bytes{0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1, 0x00} +
                                        text("example.com") + bytes{0x00};
}

struct outcome {
    std::error_code error;
    std::size_t taken;
};

// Plays one send and the server's answer, `chunk` bytes at a time.
outcome play_one(request req, const bytes& sends, const bytes& answer, std::size_t chunk) {
    client_handshake hs{req};
    const std::size_t taken = play(hs, {{sends, answer}}, chunk);
    CHECK(hs.failed());
    return {hs.error(), taken};
}

}  // namespace

TEST_CASE("a SOCKS5 method reply from another server says which, from its two bytes") {
    auto pipelined = socks5_by_name();
    pipelined.options.pipeline = true;
    auto pipelined_auth = pipelined;
    pipelined_auth.user = "u";
    pipelined_auth.password = "p";
    auto with_auth = pipelined_auth;
    with_auth.options.pipeline = false;
    const struct {
        const char* name;
        request req;
        bytes sends;
    } shapes[] = {
        {"no auth", socks5_by_name(), {0x05, 0x01, 0x00}},
        {"with credentials", with_auth, {0x05, 0x02, 0x00, 0x02}},
        {"pipelined", pipelined, bytes{0x05, 0x01, 0x00} + request_bytes},
        {"pipelined with credentials", pipelined_auth,
         bytes{0x05, 0x01, 0x02} + bytes{0x01, 0x01, 'u', 0x01, 'p'} + request_bytes},
    };
    for (const auto& shape : shapes) {
        for (const auto& a : answers) {
            for (std::size_t chunk : {SIZE_MAX, std::size_t{1}}) {
                CAPTURE(shape.name);
                CAPTURE(a.what);
                CAPTURE(chunk);
                const outcome o = play_one(shape.req, shape.sends, a.answer, chunk);
                CHECK(o.error == a.expected);
                CHECK(o.taken == 2);  // the method reply's size: nothing more is read
            }
        }
    }
}

TEST_CASE("a SOCKS4 or SOCKS4a reply from another server says which, from its eight bytes") {
    for (auto v : {socks_version::v4, socks_version::v4a}) {
        for (const auto& a : answers) {
            for (std::size_t chunk : {SIZE_MAX, std::size_t{1}, std::size_t{3}}) {
                CAPTURE(int(v));
                CAPTURE(a.what);
                CAPTURE(chunk);
                const outcome o = play_one(socks4(v), socks4_request(v), a.answer, chunk);
                CHECK(o.error == a.expected);
                CHECK(o.taken <= 8);  // a SOCKS4 reply's size
                CHECK(o.taken >= 2);
            }
        }
    }
}

TEST_CASE("a SOCKS5 reply head from another server, after a valid method reply") {
    auto pipelined = socks5_by_name();
    pipelined.options.pipeline = true;
    for (const auto& a : answers) {
        for (std::size_t chunk : {SIZE_MAX, std::size_t{1}}) {
            CAPTURE(a.what);
            CAPTURE(chunk);
            client_handshake hs{socks5_by_name()};
            const std::size_t taken =
                play(hs, {{{0x05, 0x01, 0x00}, {0x05, 0x00}}, {request_bytes, a.answer}}, chunk);
            CHECK(hs.error() == a.expected);
            CHECK(taken <= 2 + 5);
            client_handshake piped{pipelined};
            play(piped, {{bytes{0x05, 0x01, 0x00} + request_bytes, bytes{0x05, 0x00} + a.answer}},
                 chunk);
            CHECK(piped.error() == a.expected);
        }
    }
}

TEST_CASE("a wrong version that matches nothing known is still bad_version") {
    const bytes not_known[] = {
        {0x04, 0x00},               // SOCKS4's version where SOCKS5's belongs
        {'H', 'X', 'T', 'P', '/'},  // 'H' alone is not HTTP
        {'S', 'S', 'L', '-', '2'},  // nor "SS" followed by something else, where seen
        {0x15, 0x01, 0x00, 0x02},   // 0x15 without a TLS major version
        {0x16, 0x00},
        {'<', 'h', 't', 'm', 'l'},
    };
    for (const auto& b : not_known) {
        CAPTURE(hex(b));
        const outcome s4 =
            play_one(socks4(socks_version::v4a), socks4_request(socks_version::v4a), b, SIZE_MAX);
        CHECK(s4.error == error::bad_version);
    }
    // Two bytes only for a SOCKS5 method reply: "SS" alone is an SSH banner's start.
    CHECK(play_one(socks5_by_name(), {0x05, 0x01, 0x00}, {'H', 'X'}, SIZE_MAX).error ==
          error::bad_version);
    CHECK(play_one(socks5_by_name(), {0x05, 0x01, 0x00}, {0x04, 0x00}, SIZE_MAX).error ==
          error::bad_version);
    CHECK(play_one(socks5_by_name(), {0x05, 0x01, 0x00}, {0x15, 0x01}, SIZE_MAX).error ==
          error::bad_version);
}

TEST_CASE("a first byte that cannot begin a known answer fails at once") {
    client_handshake hs{socks4(socks_version::v4)};
    hs.sent();
    CHECK(hs.feed(bytes{0x05}) == 1);
    CHECK(hs.error() == error::bad_version);
}

TEST_CASE("a first byte that may begin one waits for the second, and a close keeps bad_version") {
    for (std::uint8_t first :
         {std::uint8_t{'H'}, std::uint8_t{'S'}, std::uint8_t{0x15}, std::uint8_t{0x16}}) {
        CAPTURE(int(first));
        client_handshake hs{socks4(socks_version::v4)};
        hs.sent();
        CHECK(hs.feed(bytes{first}) == 1);
        CHECK_FALSE(hs.failed());
        CHECK(hs.next().kind == action_kind::receive);
        CHECK(hs.next().space.size() == 7);  // the rest of the reply, no more
        hs.closed();
        CHECK(hs.error() == error::bad_version);
    }
    // A valid first byte then a close is a close, as before.
    client_handshake valid{socks4(socks_version::v4)};
    valid.sent();
    valid.feed(bytes{0x00});
    valid.closed();
    CHECK(valid.error() == error::proxy_closed);
}

TEST_CASE("the new codes: protocol_error, EPROTO, messages, and the sentence naming the proxy") {
    for (error e : {error::answered_http, error::answered_ssh, error::answered_tls}) {
        const std::error_code ec = e;
        CHECK(ec == std::errc::protocol_error);
        CHECK(to_errno(ec) == EPROTO);
        CHECK(answered_other_protocol(ec));
        CHECK(ec.message() == message_of(e));
    }
    CHECK_FALSE(answered_other_protocol(error::bad_version));
    CHECK_FALSE(answered_other_protocol({}));
    CHECK_FALSE(answered_other_protocol(std::make_error_code(std::errc::protocol_error)));
    CHECK(std::string(message_of(error::answered_http)) ==
          "proxy: answered like an HTTP server, not SOCKS");
    CHECK(std::string(message_of(error::answered_ssh)) ==
          "proxy: answered like an SSH server, not SOCKS");
    CHECK(std::string(message_of(error::answered_tls)) ==
          "proxy: answered like a TLS server, not SOCKS");

    proxy p;
    REQUIRE_FALSE(parse_proxy_url("socks5h://user:secret@127.0.0.1:8080", p));
    char out[128];
    REQUIRE(format_not_socks(error::answered_http, p, out, sizeof out) > 0);
    CHECK(std::string(out) == "proxy 127.0.0.1:8080 answered like an HTTP server, not SOCKS");
    REQUIRE_FALSE(parse_proxy_url("socks4a://[::1]:22", p));
    REQUIRE(format_not_socks(error::answered_ssh, p, out, sizeof out) > 0);
    CHECK(std::string(out) == "proxy [::1]:22 answered like an SSH server, not SOCKS");
    out[0] = 'x';
    CHECK(format_not_socks(error::bad_version, p, out, sizeof out) == 0);
    CHECK(out[0] == 'x');
    // Cut, never overflowed.
    char tiny[10];
    CHECK(format_not_socks(error::answered_tls, p, tiny, sizeof tiny) == 9);
    CHECK(std::string(tiny) == "proxy [::");
}
