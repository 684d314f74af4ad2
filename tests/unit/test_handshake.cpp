// Byte-exact vectors for every message of the core, and the framing rules:
// every strict prefix of a reply means "need more", feeding one byte at a time
// gives the same result, and nothing after the reply is consumed.
#include <doctest/doctest.h>

#include "exchange.hpp"
#include "leakproof/handshake.hpp"

using namespace leakproof;
using namespace lp_test;

namespace {

request connect_to(socks_version v, address target, std::uint16_t port) {
    request r;
    r.version = v;
    r.target = target;
    r.port = port;
    return r;
}

const address example_com = address::host_name("example.com");
const bytes example_com_field = bytes{11} + text("example.com");
const bytes ok_reply_ipv4 = {0x05, 0x00, 0x00, 0x01, 192, 0, 2, 1, 0x1F, 0x90};

// A full conversation and what the handshake must conclude from it.
struct vector_case {
    const char* name;
    request req;
    std::vector<round> rounds;
    address::kind bound_type;
    std::uint16_t bound_port;
};

std::vector<vector_case> all_vectors() {
    std::vector<vector_case> v;

    v.push_back(
        {"SOCKS4 CONNECT 192.0.2.15:443",
         connect_to(socks_version::v4, address::ipv4({192, 0, 2, 15}), 443),
         {{{0x04, 0x01, 0x01, 0xBB, 192, 0, 2, 15, 0x00}, {0x00, 0x5A, 0x01, 0xBB, 192, 0, 2, 15}}},
         address::kind::ipv4,
         443});

    auto s4a = connect_to(socks_version::v4a, example_com, 80);
    s4a.user = "alice";
    v.push_back({"SOCKS4a CONNECT by name with a user id",
                 s4a,
                 {{bytes{0x04, 0x01, 0x00, 0x50, 0, 0, 0, 1} + text("alice") + bytes{0} +
                       text("example.com") + bytes{0},
                   {0x00, 0x5A, 0x00, 0x00, 0, 0, 0, 0}}},
                 address::kind::ipv4,
                 0});

    v.push_back(
        {"SOCKS5 no-auth CONNECT by name",
         connect_to(socks_version::v5, example_com, 80),
         {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
          {bytes{0x05, 0x01, 0x00, 0x03} + example_com_field + bytes{0x00, 0x50}, ok_reply_ipv4}},
         address::kind::ipv4,
         8080});

    auto s5up = connect_to(socks_version::v5, address::ipv4({198, 51, 100, 7}), 22);
    s5up.user = "alice";
    s5up.password = "s3cret";
    v.push_back({"SOCKS5 username/password CONNECT to IPv4 (RFC 1929)",
                 s5up,
                 {{{0x05, 0x02, 0x00, 0x02}, {0x05, 0x02}},
                  {bytes{0x01, 0x05} + text("alice") + bytes{0x06} + text("s3cret"), {0x01, 0x00}},
                  {{0x05, 0x01, 0x00, 0x01, 198, 51, 100, 7, 0x00, 0x16}, ok_reply_ipv4}},
                 address::kind::ipv4,
                 8080});

    auto s5up_noauth = s5up;
    v.push_back({"SOCKS5 with credentials, proxy picks no-auth",
                 s5up_noauth,
                 {{{0x05, 0x02, 0x00, 0x02}, {0x05, 0x00}},
                  {{0x05, 0x01, 0x00, 0x01, 198, 51, 100, 7, 0x00, 0x16}, ok_reply_ipv4}},
                 address::kind::ipv4,
                 8080});

    auto pipelined = s5up;
    pipelined.options.pipeline = true;
    v.push_back({"SOCKS5 pipelined: greeting, RFC 1929 and request in one send",
                 pipelined,
                 {{bytes{0x05, 0x01, 0x02} + bytes{0x01, 0x05} + text("alice") + bytes{0x06} +
                       text("s3cret") + bytes{0x05, 0x01, 0x00, 0x01, 198, 51, 100, 7, 0x00, 0x16},
                   bytes{0x05, 0x02} + bytes{0x01, 0x00} + ok_reply_ipv4}},
                 address::kind::ipv4,
                 8080});

    v.push_back({"SOCKS5 pipelined with credentials, Tor 0.4.9: no method reply, only RFC 1929's",
                 pipelined,
                 {{bytes{0x05, 0x01, 0x02} + bytes{0x01, 0x05} + text("alice") + bytes{0x06} +
                       text("s3cret") + bytes{0x05, 0x01, 0x00, 0x01, 198, 51, 100, 7, 0x00, 0x16},
                   bytes{0x01, 0x00} + ok_reply_ipv4}},
                 address::kind::ipv4,
                 8080});

    auto pipelined_noauth = connect_to(socks_version::v5, example_com, 443);
    pipelined_noauth.options.pipeline = true;
    v.push_back(
        {"SOCKS5 pipelined without credentials",
         pipelined_noauth,
         {{bytes{0x05, 0x01, 0x00, 0x05, 0x01, 0x00, 0x03} + example_com_field + bytes{0x01, 0xBB},
           bytes{0x05, 0x00} + ok_reply_ipv4}},
         address::kind::ipv4,
         8080});

    std::array<std::uint8_t, 16> v6{0x20, 0x01, 0x0d, 0xb8};
    v6[15] = 1;
    v.push_back(
        {"SOCKS5 CONNECT to IPv6, IPv6 BND.ADDR",
         connect_to(socks_version::v5, address::ipv6(v6), 443),
         {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
          {bytes{0x05, 0x01, 0x00, 0x04} + bytes(v6.begin(), v6.end()) + bytes{0x01, 0xBB},
           bytes{0x05, 0x00, 0x00, 0x04} + bytes(v6.begin(), v6.end()) + bytes{0x04, 0x00}}},
         address::kind::ipv6,
         1024});

    v.push_back({"SOCKS5 reply with a domain BND.ADDR",
                 connect_to(socks_version::v5, example_com, 80),
                 {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0x01, 0x00, 0x03} + example_com_field + bytes{0x00, 0x50},
                   bytes{0x05, 0x00, 0x00, 0x03, 5} + text("proxy") + bytes{0x00, 0x50}}},
                 address::kind::name,
                 80});

    v.push_back({"SOCKS5 reply with an empty domain BND.ADDR",
                 connect_to(socks_version::v5, example_com, 80),
                 {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0x01, 0x00, 0x03} + example_com_field + bytes{0x00, 0x50},
                   {0x05, 0x00, 0x00, 0x03, 0x00, 0x00, 0x50}}},
                 address::kind::name,
                 80});

    auto resolve5 = connect_to(socks_version::v5, address::host_name("torproject.org"), 0);
    resolve5.cmd = command::resolve;
    v.push_back({"Tor RESOLVE over SOCKS5",
                 resolve5,
                 {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0xF0, 0x00, 0x03, 14} + text("torproject.org") + bytes{0x00, 0x00},
                   {0x05, 0x00, 0x00, 0x01, 203, 0, 113, 9, 0x00, 0x00}}},
                 address::kind::ipv4,
                 0});

    auto resolve4a = connect_to(socks_version::v4a, address::host_name("torproject.org"), 0);
    resolve4a.cmd = command::resolve;
    v.push_back(
        {"Tor RESOLVE over SOCKS4a",
         resolve4a,
         {{bytes{0x04, 0xF0, 0x00, 0x00, 0, 0, 0, 1, 0x00} + text("torproject.org") + bytes{0x00},
           {0x00, 0x5A, 0x00, 0x00, 203, 0, 113, 9}}},
         address::kind::ipv4,
         0});

    auto ptr = connect_to(socks_version::v5, address::ipv4({203, 0, 113, 9}), 0);
    ptr.cmd = command::resolve_ptr;
    v.push_back({"Tor RESOLVE_PTR over SOCKS5",
                 ptr,
                 {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {{0x05, 0xF1, 0x00, 0x01, 203, 0, 113, 9, 0x00, 0x00},
                   bytes{0x05, 0x00, 0x00, 0x03, 14} + text("torproject.org") + bytes{0x00, 0x00}}},
                 address::kind::name,
                 0});
    return v;
}

}  // namespace

TEST_CASE("every vector: exact bytes, whole replies") {
    for (const auto& vc : all_vectors()) {
        CAPTURE(vc.name);
        client_handshake hs{vc.req};
        play(hs, vc.rounds);
        REQUIRE(hs.finished());
        CHECK(hs.result().bound.type == vc.bound_type);
        CHECK(hs.result().port == vc.bound_port);
        CHECK(hs.next().kind == action_kind::done);
    }
}

TEST_CASE("every vector: one byte at a time gives the same result") {
    for (const auto& vc : all_vectors()) {
        CAPTURE(vc.name);
        client_handshake whole{vc.req};
        client_handshake bytewise{vc.req};
        play(whole, vc.rounds);
        play(bytewise, vc.rounds, 1);
        REQUIRE(bytewise.finished());
        check_same_result(bytewise, whole);
    }
}

TEST_CASE("every vector: each strict prefix of each answer means 'need more'") {
    for (const auto& vc : all_vectors()) {
        CAPTURE(vc.name);
        for (std::size_t r = 0; r < vc.rounds.size(); ++r) {
            const bytes& answer = vc.rounds[r].proxy_answers;
            for (std::size_t cut = 0; cut < answer.size(); ++cut) {
                client_handshake hs{vc.req};
                std::vector<round> rounds(vc.rounds.begin(), vc.rounds.begin() + long(r));
                rounds.push_back(
                    {vc.rounds[r].client_sends, bytes(answer.begin(), answer.begin() + long(cut))});
                play(hs, rounds);
                CAPTURE(cut);
                const auto act = hs.next();
                CHECK(act.kind == action_kind::receive);
                CHECK(act.space.size() > 0);
            }
        }
    }
}

TEST_CASE("every vector: bytes after the final reply stay unread") {
    const bytes application_data = text("HTTP/1.1 200 OK\r\n");
    for (const auto& vc : all_vectors()) {
        CAPTURE(vc.name);
        auto rounds = vc.rounds;
        std::size_t reply_bytes = 0;
        for (const auto& r : rounds) reply_bytes += r.proxy_answers.size();
        rounds.back().proxy_answers = rounds.back().proxy_answers + application_data;
        client_handshake hs{vc.req};
        CHECK(play(hs, rounds) == reply_bytes);
        CHECK(hs.finished());
        CHECK(hs.feed(application_data) == 0);
    }
}

TEST_CASE("bound address contents") {
    SUBCASE("domain BND.ADDR is returned as a name") {
        client_handshake hs{connect_to(socks_version::v5, example_com, 80)};
        play(hs, {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0x01, 0x00, 0x03} + example_com_field + bytes{0x00, 0x50},
                   bytes{0x05, 0x00, 0x00, 0x03, 5} + text("proxy") + bytes{0x00, 0x50}}});
        REQUIRE(hs.finished());
        CHECK(hs.result().bound.name == "proxy");
    }
    SUBCASE("RESOLVE answer") {
        auto req = connect_to(socks_version::v5, address::host_name("a.test"), 0);
        req.cmd = command::resolve;
        client_handshake hs{req};
        play(hs, {{{0x05, 0x01, 0x00}, {0x05, 0x00}},
                  {bytes{0x05, 0xF0, 0x00, 0x03, 6} + text("a.test") + bytes{0, 0},
                   {0x05, 0x00, 0x00, 0x01, 10, 1, 2, 3, 0, 0}}});
        REQUIRE(hs.finished());
        CHECK(hs.result().bound.ip[0] == 10);
        CHECK(hs.result().bound.ip[3] == 3);
    }
}

TEST_CASE("a SOCKS5 request with a 255-byte name fits and is framed by its length byte") {
    const std::string name(255, 'n');
    auto req = connect_to(socks_version::v5, address::host_name(name), 443);
    req.user = std::string_view(name);
    req.password = std::string_view(name);
    req.options.pipeline = true;
    client_handshake hs{req};
    auto act = hs.next();
    REQUIRE(act.kind == action_kind::send);
    CHECK(act.bytes.size() == 3 + (3 + 255 + 255) + (4 + 1 + 255 + 2));
    CHECK(act.bytes.size() <= client_handshake::buffer_size);
}

TEST_CASE("every vector in a buffer of exactly buffer_size(req) bytes") {
    for (const auto& vc : all_vectors()) {
        CAPTURE(vc.name);
        client_handshake roomy{vc.req};
        std::vector<std::uint8_t> buffer(handshake_machine::buffer_size(vc.req));
        handshake_machine tight{vc.req, buffer};
        play(roomy, vc.rounds);
        play(tight, vc.rounds, 1);
        REQUIRE(tight.finished());
        check_same_result(tight, roomy);
    }
}

TEST_CASE("buffer_size is what the request sends at once, or the reply it keeps") {
    auto req = connect_to(socks_version::v5, example_com, 443);
    CHECK(handshake_machine::buffer_size(req) == 4 + 16 + 2);  // an IPv6 reply
    req.user = "u";
    req.password = "p";
    req.options.pipeline = true;
    CHECK(handshake_machine::buffer_size(req) == 3 + 5 + (4 + 1 + 11 + 2));
    req.cmd = command::resolve_ptr;
    req.target = address::ipv4({192, 0, 2, 1});
    CHECK(handshake_machine::buffer_size(req) == 4 + 1 + 255 + 2);  // the name it asked for
    const std::string big(255, 'n');
    req = connect_to(socks_version::v5, address::host_name(big), 443);
    req.user = big;
    req.password = big;
    req.options.pipeline = true;
    CHECK(handshake_machine::buffer_size(req) == max_handshake_buffer);
    req = connect_to(socks_version::v4a, example_com, 443);
    req.user = "someone";
    CHECK(handshake_machine::buffer_size(req) == 8 + 7 + 1 + 11 + 1);
}

TEST_CASE("a small buffer reads a long BND.ADDR name to its end and drops it") {
    const auto req = connect_to(socks_version::v5, address::ipv4({192, 0, 2, 1}), 80);
    std::vector<std::uint8_t> buffer(handshake_machine::buffer_size(req));
    const std::string name(200, 'p');
    const bytes reply = bytes{0x05, 0x00, 0x00, 0x03, 200} + text(name) + bytes{0x1F, 0x90};
    const std::vector<round> rounds = {
        {{0x05, 0x01, 0x00}, {0x05, 0x00}},
        {{0x05, 0x01, 0x00, 0x01, 192, 0, 2, 1, 0x00, 0x50}, reply + text("HTTP/1.1")}};
    for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, SIZE_MAX}) {
        CAPTURE(chunk);
        handshake_machine hs{req, buffer};
        CHECK(play(hs, rounds, chunk) == 2 + reply.size());  // not a byte of HTTP
        REQUIRE(hs.finished());
        CHECK(hs.result().bound.type == address::kind::name);
        CHECK(hs.result().bound.name.empty());
        CHECK(hs.result().port == 8080);
    }
}

TEST_CASE("a buffer smaller than buffer_size(req) is refused before any byte") {
    const auto req = connect_to(socks_version::v5, example_com, 80);
    std::vector<std::uint8_t> buffer(handshake_machine::buffer_size(req) - 1);
    handshake_machine hs{req, buffer};
    const auto act = hs.next();
    CHECK(act.kind == action_kind::failed);
    CHECK(act.error == std::errc::no_buffer_space);
}

TEST_CASE("address::parse recognises literals only") {
    CHECK(address::parse("192.0.2.1").type == address::kind::ipv4);
    CHECK(address::parse("2001:db8::1").type == address::kind::ipv6);
    CHECK(address::parse("::ffff:192.0.2.1").type == address::kind::ipv6);
    CHECK(address::parse("example.com").type == address::kind::name);
    CHECK(address::parse("192.0.2").type == address::kind::name);  // never guessed
    CHECK(address::parse("1.2.3.4.example").type == address::kind::name);
    const auto a = address::parse("192.0.2.77");
    CHECK(a.ip[0] == 192);
    CHECK(a.ip[3] == 77);
}

TEST_CASE("optimistic: one write, and request_sent() once it is written") {
    auto req = connect_to(socks_version::v5, example_com, 443);
    req.user = "u";
    req.password = "p";
    req.options.optimistic = true;  // without pipeline: implied
    CHECK(handshake_machine::buffer_size(req) == 3 + 5 + (4 + 1 + 11 + 2));
    client_handshake hs{req};
    CHECK_FALSE(hs.request_sent());
    auto act = hs.next();
    REQUIRE(act.kind == action_kind::send);
    CHECK(act.bytes.size() == 3 + 5 + (4 + 1 + 11 + 2));
    hs.sent();
    CHECK(hs.request_sent());
    const bytes replies = {0x05, 0x02, 0x01, 0x00, 0x05, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0, 80};
    const bytes early = {'G', 'E', 'T'};  // the server's answer to the early data
    const bytes stream = replies + early;
    // Exactly the replies' bytes are taken: the answer stays for the application.
    std::size_t at = 0;
    while (!hs.finished() && !hs.failed() && at < stream.size())
        at += hs.feed(std::span{stream}.subspan(at, 1));
    REQUIRE(hs.finished());
    CHECK(at == replies.size());
    CHECK(hs.request_sent());
}

TEST_CASE("request_sent(): not before the last send of a sequential handshake") {
    auto req = connect_to(socks_version::v5, example_com, 443);
    client_handshake hs{req};
    hs.sent();  // greeting
    CHECK_FALSE(hs.request_sent());
    CHECK(hs.feed(bytes{0x05, 0x00}) == 2);
    CHECK_FALSE(hs.request_sent());
    REQUIRE(hs.next().kind == action_kind::send);
    hs.sent();  // request
    CHECK(hs.request_sent());
    auto v4 = connect_to(socks_version::v4a, example_com, 443);
    v4.options.optimistic = true;
    client_handshake hs4{v4};
    CHECK_FALSE(hs4.request_sent());
    hs4.sent();
    CHECK(hs4.request_sent());
    CHECK(hs4.feed(bytes{0x00, 0x5B, 0, 0, 0, 0, 0, 0}) == 8);  // refused
    CHECK(hs4.failed());
    CHECK_FALSE(hs4.request_sent());
}
